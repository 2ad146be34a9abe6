"""BaseVLA: slot and freeze validation, input checks, IO spec, family specifics."""

from __future__ import annotations

import pytest
import torch
import yaml

from vla_ros.spine import VLAS, BaseVLA, IOSpec, build_vla, load_config, merge_prefixed
from vla_ros.spine.config import MODEL_CONFIG_DIR


def _cfg(family: str) -> dict:
    return load_config(MODEL_CONFIG_DIR / f"{family}_tiny.yaml")


def test_missing_slot_is_named() -> None:
    cfg = _cfg("act")
    del cfg["projector"]
    with pytest.raises(TypeError, match=r"missing required slots \['projector'\]"):
        build_vla(cfg)


def test_undeclared_slot_is_named() -> None:
    cfg = _cfg("act")
    cfg["text_encoder"] = {"type": "TransformerTextEncoder"}
    with pytest.raises(TypeError, match=r"slots \['text_encoder'\] are not used by this family"):
        build_vla(cfg)


def test_unknown_slot_gets_a_suggestion() -> None:
    cfg = _cfg("act")
    cfg["vison_backbone"] = cfg.pop("vision_backbone")
    with pytest.raises(TypeError) as err:
        build_vla(cfg)
    msg = str(err.value)
    assert "'vison_backbone'" in msg and "did you mean 'vision_backbone'" in msg
    assert "missing required slots ['vision_backbone']" in msg


def test_bad_family_declarations_are_rejected() -> None:
    class Overlap(BaseVLA):
        REQUIRED_SLOTS = ("vla_head",)
        OPTIONAL_SLOTS = ("vla_head",)

    class Unknown(BaseVLA):
        REQUIRED_SLOTS = ("action_head",)

    io = _cfg("act")["io"]
    with pytest.raises(TypeError, match=r"\['vla_head'\] both REQUIRED and OPTIONAL"):
        Overlap(io, vla_head={"type": "MLPActionHead"})
    with pytest.raises(TypeError, match=r"unknown slots \['action_head'\]"):
        Unknown(io)


def test_freeze_errors_name_the_slot() -> None:
    with pytest.raises(TypeError, match=r"unknown slots \['vision'\]"):
        build_vla("act_tiny", {"freeze": {"vision": True}})
    with pytest.raises(TypeError, match=r"\['llm_backbone'\] that this ACT model does not have"):
        build_vla("act_tiny", {"freeze": {"llm_backbone": True}})
    model = build_vla("flow_matching_tiny", {"freeze": {"llm_backbone": True, "vla_head": False}})
    assert model.frozen_slots == {"llm_backbone"}


def test_merge_prefixed_rejects_duplicates() -> None:
    t = torch.zeros(1)
    assert set(merge_prefixed({"a": {"w": t}, "b": {"w": t}})) == {"a.w", "b.w"}
    with pytest.raises(ValueError, match=r"duplicate weight key 'a\.w'"):
        merge_prefixed({"a": {"w": t}}, base={"a.w": t})


def test_input_errors_name_input_and_shape() -> None:
    model = build_vla("flow_matching_tiny").eval()
    obs = model.example_inputs(1)
    with pytest.raises(KeyError, match="'tokens' is missing"):
        model.predict_action({k: v for k, v in obs.items() if k != "tokens"})
    with pytest.raises(ValueError, match=r"'images' has shape \(1, 1, 2, 3, 16, 16\)"):
        model.predict_action({**obs, "images": torch.rand(1, 1, 2, 3, 16, 16)})
    with pytest.raises(ValueError, match="noise has shape"):
        model.predict_action(obs, noise=torch.zeros(1, 3, 7))
    with pytest.raises(KeyError, match="actions"):
        model.train()({k: v for k, v in obs.items() if k != "noise"})


def test_io_spec_round_trips_through_yaml() -> None:
    for family in VLAS.list():
        spec = build_vla(f"{family}_tiny").io_spec()
        again = IOSpec.from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict())))
        assert again == spec
        assert spec.extra["action_low"] == -3.0


def test_text_requirements_are_checked() -> None:
    with pytest.raises(ValueError, match="takes no instruction"):
        build_vla("act_tiny", {"io": {"text_max_len": 8}})
    with pytest.raises(ValueError, match="needs instructions"):
        build_vla("tokens_tiny", {"io": {"text_max_len": 0}})


def test_tokens_binning_is_uniform_within_bounds() -> None:
    model = build_vla("tokens_tiny")
    a = torch.tensor([-3.0, -10.0, 0.0, 2.99, 3.0, 10.0, -2.98]).reshape(1, 1, 7).expand(1, 4, 7)
    bins = model.actions_to_bins(a)
    assert bins[0, :7].tolist() == [0, 0, 128, 255, 255, 255, 0]
    centres = model.bins_to_actions(bins)
    width = 6.0 / 256
    assert torch.all((centres - a.clamp(-3, 3)).abs() <= width / 2 + 1e-6)
    assert torch.equal(model.actions_to_bins(centres), bins)  # centres map back to their bin
    with pytest.raises(ValueError, match="action_low"):
        build_vla("tokens_tiny", {"io": {"extra": {"action_low": [0.0, 1.0]}}})


def test_hierarchical_two_graphs_compose_to_predict_action() -> None:
    model = build_vla("hierarchical_tiny").eval()
    spec = model.io_spec()
    assert spec.extra["graphs"]["slow"]["rate_hz"] == 8.0
    assert spec.extra["graphs"]["fast"]["rate_hz"] == 50.0
    obs = model.example_inputs(2)
    with torch.no_grad():
        latent = model.export_slow(obs)
        assert latent["latent"].shape == (2, 32)
        fast = model.export_fast(latent, obs)
        assert torch.equal(fast, model.predict_action(obs))
        # the fast system reacts to a new observation without re-running the slow one
        newer = model.example_inputs(2, seed=9)
        moved = model.export_fast(latent, {**obs, "state": newer["state"]})
    assert not torch.equal(moved, fast)


def test_parameter_counts_tiny_and_small() -> None:
    for family in VLAS.list():
        tiny = build_vla(f"{family}_tiny").parameter_counts()
        assert tiny["total"] == sum(v for k, v in tiny.items() if k != "total")
        assert tiny["total"] < 1_000_000, family
        small = build_vla(f"{family}_small").parameter_counts()["total"]
        assert 10_000_000 <= small <= 100_000_000, (family, small)
