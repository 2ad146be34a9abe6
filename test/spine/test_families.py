"""Per-family checks: every family built from its tiny YAML meets the same contract."""

from __future__ import annotations

import pytest
import torch
from spine_helpers import FAMILIES, fixed_batch

from vla_ros.spine import SLOT_NAMES, VLAS, BaseVLA, build_vla, load_config, load_weights, save_weights
from vla_ros.spine.config import MODEL_CONFIG_DIR


def _build(family: str, seed: int = 0, **overrides) -> BaseVLA:
    torch.manual_seed(seed)
    return build_vla(MODEL_CONFIG_DIR / f"{family}_tiny.yaml", overrides or None)


def _noise_for(model: BaseVLA, obs: dict, seed: int = 3) -> torch.Tensor | None:
    if not model.io_spec().needs_noise:
        return None
    g = torch.Generator().manual_seed(seed)
    return torch.randn(obs["state"].shape[0], model.io.horizon, model.io.action_dim, generator=g)


def test_all_six_families_registered_with_yaml() -> None:
    for family in FAMILIES:
        assert family in VLAS.list()
        for size in ("tiny", "small"):
            cfg = load_config(MODEL_CONFIG_DIR / f"{family}_{size}.yaml")
            assert cfg["type"] == family


@pytest.mark.parametrize("family", FAMILIES)
def test_builds_from_yaml_with_io_spec_from_config(family: str) -> None:
    cfg = load_config(MODEL_CONFIG_DIR / f"{family}_tiny.yaml")
    model = _build(family)
    spec = model.io_spec()
    assert list(spec.camera_names) == cfg["io"]["camera_names"]
    assert list(spec.image_size) == cfg["io"]["image_size"]
    assert (spec.state_dim, spec.action_dim, spec.horizon) == (
        cfg["io"]["state_dim"],
        cfg["io"]["action_dim"],
        cfg["io"]["horizon"],
    )
    assert spec.dt == cfg["io"]["dt"]
    assert spec.extra["family"] == family
    assert spec.extra["export_layout"] == model.export_layout
    inputs = model.example_inputs(2)
    assert list(inputs) == spec.input_names
    for name, shape in spec.input_shapes(2).items():
        assert tuple(inputs[name].shape) == shape, name
    assert model.config_name == f"{family}_tiny"


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_finite_and_gradient_on_every_trainable_parameter(family: str) -> None:
    model = _build(family).train()
    out = model(fixed_batch(model, 2))
    assert torch.isfinite(out["loss"]) and out["loss"].ndim == 0
    out["loss"].backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    zero = [n for n, p in model.named_parameters() if p.requires_grad and not p.grad.any()]
    assert zero == []
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert bad == []


@pytest.mark.parametrize("family", FAMILIES)
def test_thirty_steps_on_fixed_batch_lower_the_loss(family: str) -> None:
    model = _build(family).train()
    batch = fixed_batch(model, 4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("family", FAMILIES)
def test_predict_action_shape_dtype_determinism(family: str) -> None:
    model = _build(family).eval()
    obs = model.example_inputs(2)
    noise = _noise_for(model, obs)
    with torch.no_grad():
        a1 = model.predict_action(obs, noise=noise)
        a2 = model.predict_action(obs, noise=noise)
    assert a1.shape == (2, model.io.horizon, model.io.action_dim)
    assert a1.dtype == torch.float32
    assert torch.isfinite(a1).all()
    assert torch.equal(a1, a2)
    if noise is not None:
        with torch.no_grad():  # noise may also come in the obs dict, as in an exported graph
            a3 = model.predict_action({**obs, "noise": noise})
            a4 = model.predict_action(obs, noise=noise + 1.0)
        assert torch.equal(a1, a3)
        assert not torch.equal(a1, a4)
    # the output depends on the observation
    other = model.example_inputs(2, seed=5)
    with torch.no_grad():
        b = model.predict_action({**obs, "images": other["images"], "state": other["state"]}, noise=noise)
    assert not torch.equal(a1, b)


@pytest.mark.parametrize("family", FAMILIES)
def test_split_layout_equals_predict_action(family: str) -> None:
    model = _build(family).eval()
    obs = model.example_inputs(2)
    noise = _noise_for(model, obs)
    if model.num_export_steps == 0:
        with pytest.raises(NotImplementedError, match="has no split layout"):
            model.export_prefix(obs)
        return
    with torch.no_grad():
        ref = model.predict_action(obs, noise=noise)
        prefix = model.export_prefix(obs)
        assert all(isinstance(v, torch.Tensor) for v in prefix.values())
        x = noise if noise is not None else torch.zeros_like(ref)
        for i in range(model.num_export_steps):
            # a tensor step index (as an exported step graph receives it) gives the same step
            x = model.export_step(prefix, x, torch.tensor(i) if i % 2 else i)
    assert torch.equal(x, ref)
    assert torch.equal(model.run_split(obs, noise), ref)


@pytest.mark.parametrize("family", FAMILIES)
def test_freeze_flags_freeze_exactly_those_parameters(family: str) -> None:
    model = _build(family, freeze={"vision_backbone": True}).train()
    assert model.frozen_slots == {"vision_backbone"}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    expected = {f"vision_backbone.{n}" for n, _ in model.vision_backbone.named_parameters()}
    assert frozen == expected and frozen
    assert not model.vision_backbone.training  # frozen slots stay in eval mode
    before = {k: v.clone() for k, v in model.vision_backbone.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(fixed_batch(model, 2))["loss"]
    loss.backward()
    opt.step()
    after = model.vision_backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # incl. BatchNorm statistics
    changed = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is not None]
    assert changed
    model.set_frozen("vision_backbone", False)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_each_slot_freezes_exactly_its_own_parameters(family: str) -> None:
    present = [s for s in SLOT_NAMES if getattr(_build(family), s, None) is not None]
    assert present
    for slot in present:
        model = _build(family, freeze={slot: True})
        frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
        owned = {f"{slot}.{n}" for n, _ in getattr(model, slot).named_parameters()}
        assert frozen == owned, f"{family}: freezing {slot} froze {sorted(frozen ^ owned)[:5]} wrongly"


def _rename(sd: dict, mapping: dict[str, str]) -> dict:
    out = {}
    for k, v in sd.items():
        for mp, cp in mapping.items():
            if k.startswith(mp + "."):
                k = cp + k[len(mp) :]
                break
        out[k] = v
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_checkpoint_with_renamed_prefixes_loads_back_exactly(family: str, tmp_path) -> None:
    src = _build(family, seed=0).eval()
    mapping = {s: f"ckpt.{s.split('_')[0]}_renamed" for s in src.present_slots()}
    path = save_weights(_rename(src.state_dict(), mapping), tmp_path / "w.safetensors")
    obs = src.example_inputs(2)
    noise = _noise_for(src, obs)
    with torch.no_grad():
        ref = src.predict_action(obs, noise=noise)

    dst = _build(family, seed=1).eval()
    with torch.no_grad():
        assert not torch.equal(dst.predict_action(obs, noise=noise), ref)
    report = load_weights(dst, path, name_mapping=mapping)
    assert report.ok and len(report.loaded) == len(src.state_dict())
    with torch.no_grad():
        assert torch.equal(dst.predict_action(obs, noise=noise), ref)

    # the same through the config's `pretrained` entry
    torch.manual_seed(2)
    cfg = load_config(MODEL_CONFIG_DIR / f"{family}_tiny.yaml")
    cfg["pretrained"] = {"path": str(path), "name_mapping": mapping}
    via_cfg = build_vla(cfg).eval()
    with torch.no_grad():
        assert torch.equal(via_cfg.predict_action(obs, noise=noise), ref)


@pytest.mark.parametrize("family", FAMILIES)
def test_prepare_inference_weights_keeps_outputs(family: str) -> None:
    model = _build(family)
    obs = model.example_inputs(2)
    noise = _noise_for(model, obs)
    model.train()
    model(fixed_batch(model, 4))  # move any BatchNorm statistics off their init
    model.eval()
    with torch.no_grad():
        ref = model.predict_action(obs, noise=noise)
        flat = model.prepare_inference_weights()
        out = model.predict_action(obs, noise=noise)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert set(flat) == set(model.state_dict())
    prefixes = {k.split(".")[0] for k in flat}
    assert set(model.present_slots()) <= prefixes
