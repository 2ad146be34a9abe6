"""Every available backend gives the same actions; bad files and outputs raise specific errors."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import torch
from support.export_testlib import TinyPolicy, copy_card, exported_card, family_cases

from vla_ros.contract.card import Normalization, Stats
from vla_ros.contract.errors import (
    BackendUnavailableError,
    CardError,
    ModelFileError,
    NonFiniteOutputError,
    ObservationError,
    VlaRosError,
)
from vla_ros.export import PolicyCard, export_policy
from vla_ros.export.onnx_export import PARITY_BOUNDS
from vla_ros.runtime import Observation, load_runtime
from vla_ros.runtime.base import PolicyRuntime, synthetic_observation
from vla_ros.runtime.trt_engine import tensorrt_unavailable_reason


def _backends(card: PolicyCard) -> list[tuple[str, dict]]:
    out = [("onnxruntime", {}), ("torch", {})]
    if torch.cuda.is_available():
        out += [("torch", {"device": "cuda"}), ("torch", {"device": "cuda", "cuda_graph": True})]
    if tensorrt_unavailable_reason() is None and (card.has("engine") or card.has("engine_step")):
        out.append(("tensorrt", {}))
    return out


@pytest.mark.parametrize(("family", "layout"), family_cases())
def test_all_backends_agree(family, layout):
    card = PolicyCard.load(exported_card(f"{family}_tiny", layout))
    rng = np.random.default_rng(3)
    # camera images at a native size other than the card's: preprocessing resizes
    obs = Observation(
        images={c: rng.integers(0, 256, (48, 40, 3), dtype=np.uint8) for c in card.io.camera_names},
        state=rng.normal(size=card.io.state_dim),
        instruction="pick up the red cube",
    )
    noise = rng.standard_normal(card.io.noise_shape).astype(np.float32)
    results = {}
    for name, opts in _backends(card):
        rt = load_runtime(card.root, name, **opts)
        assert isinstance(rt, PolicyRuntime)
        assert rt.card.policy_id == card.policy_id
        a = rt.infer(obs, noise=noise)
        assert a.shape == card.io.chunk_shape and a.dtype == np.float32
        assert np.all(np.isfinite(a))
        results[f"{name}{opts}"] = a
    ref = results.pop("onnxruntime{}")
    bound = PARITY_BOUNDS[card.precision] * max(card.normalization.action.std)
    for key, a in results.items():
        assert np.max(np.abs(a - ref)) <= bound, key
    assert np.abs(ref).max() > 0


def test_noise_makes_it_deterministic_and_seeded_otherwise():
    card = PolicyCard.load(exported_card("flow_matching_tiny"))
    rt = load_runtime(card, "onnxruntime", seed=5)
    obs = synthetic_observation(card)
    noise = np.ones(card.io.output_shape, np.float32)
    assert np.array_equal(rt.infer(obs, noise=noise), rt.infer(obs, noise=noise))
    a, b = rt.infer(obs), rt.infer(obs)
    assert not np.allclose(a, b)  # fresh noise each call
    a2 = load_runtime(card, "onnxruntime", seed=5).infer(obs)
    assert np.array_equal(a, a2)  # ... from a seeded generator
    with pytest.raises(ObservationError, match="noise has shape"):
        rt.infer(obs, noise=np.zeros(3))


def test_warmup_and_stats():
    card = PolicyCard.load(exported_card("act_tiny"))
    rt = load_runtime(card, "onnxruntime", threads=1)
    rt.warmup(2)
    assert rt.stats()["total"] == {"count": 0}
    for _ in range(5):
        rt.infer(synthetic_observation(card))
    st = rt.stats()
    assert st["backend"] == "onnxruntime" and st["intra_op_threads"] == 1
    assert st["providers"] == ["CPUExecutionProvider"]
    assert st["model"]["count"] == 5
    assert 0 < st["model"]["p50_ms"] <= st["model"]["max_ms"]
    assert st["total"]["p50_ms"] >= st["model"]["p50_ms"] * 0.5


def test_provider_fallback_is_logged(caplog):
    card = PolicyCard.load(exported_card("act_tiny"))
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA provider is available here, nothing falls back")
    with caplog.at_level(logging.WARNING, logger="vla_ros.runtime.ort_backend"):
        rt = load_runtime(card, "ort", providers="cuda,cpu")
    assert "falling back" in caplog.text and "CUDAExecutionProvider" in caplog.text
    assert rt.info()["provider_fallback_from"] == ["CUDAExecutionProvider"]
    assert rt.infer(synthetic_observation(card)).shape == card.io.chunk_shape


def test_unavailable_backends_say_why():
    card = PolicyCard.load(exported_card("act_tiny"))
    with pytest.raises(BackendUnavailableError, match="unknown runtime backend 'tflite'"):
        load_runtime(card, "tflite")
    with pytest.raises(BackendUnavailableError, match=r"does not take option\(s\) \['cuda_graph'\]"):
        load_runtime(card, "onnxruntime", cuda_graph=True)
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="CUDA is not available"):
            load_runtime(card, "torch", device="cuda")
    with pytest.raises(BackendUnavailableError, match="cuda_graph=True needs a CUDA device"):
        load_runtime(card, "torch", cuda_graph=True)


def test_corrupt_missing_and_mismatched_model_files(tmp_path):
    act = copy_card(exported_card("act_tiny"), tmp_path / "act")
    card = PolicyCard.load(act)
    onnx = act / card.files["onnx"]
    # corrupt: hash mismatch is caught before onnxruntime reads it
    onnx.write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="corrupt or was replaced"):
        load_runtime(act, "onnxruntime")
    # corrupt, with a matching hash (e.g. written by hand): onnxruntime's refusal is wrapped
    card.hashes.pop(card.files["onnx"])
    with pytest.raises(ModelFileError, match="onnxruntime cannot load onnx file"):
        load_runtime(card, "onnxruntime")
    # another card's model: shapes and names disagree with this card
    other = PolicyCard.load(exported_card("flow_matching_tiny", "monolithic"))
    shutil.copy(other.path("onnx"), onnx)
    with pytest.raises(ModelFileError, match="disagree"):
        load_runtime(card, "onnxruntime")
    onnx.unlink()
    with pytest.raises(ModelFileError, match="is missing"):
        load_runtime(act, "onnxruntime")
    (act / card.files["safetensors"]).unlink()
    with pytest.raises(ModelFileError, match=r"safetensors file .* is missing"):
        load_runtime(act, "torch")


def test_card_without_model_config_cannot_use_torch(tmp_path):
    card = PolicyCard.load(copy_card(exported_card("act_tiny"), tmp_path / "c"))
    card.model_config = None
    with pytest.raises(CardError, match=r"no model_config.*onnxruntime"):
        load_runtime(card, "torch")


def test_errors_share_one_base():
    for err in (BackendUnavailableError, CardError, ModelFileError, NonFiniteOutputError, ObservationError):
        assert issubclass(err, VlaRosError)


def test_nan_outputs_are_refused(tmp_path):
    torch.manual_seed(0)
    model = TinyPolicy(needs_noise=True)
    card = export_policy(model, tmp_path, layout="split")
    model.poison = True  # the same weights, now producing NaN
    for layout in ("split", "monolithic"):
        rt = load_runtime(card, "torch", model=model, layout=layout)
        with pytest.raises(NonFiniteOutputError, match="NaN/Inf"):
            rt.infer(synthetic_observation(card))


def test_delta_actions_and_history_end_to_end(tmp_path):
    torch.manual_seed(0)
    model = TinyPolicy(action_mode="delta", obs_history=2, state_dim=3, action_dim=2)
    norm = Normalization(Stats([0.0, 1.0, 2.0], [1.0, 1.0, 2.0]), Stats([0.0, 0.0], [0.1, 0.2]))
    card = export_policy(
        model,
        tmp_path,
        layout="monolithic",
        state_joints=["x", "y", "z"],
        action_joints=["z", "x"],
        normalization=norm,
    )
    assert card.postprocess["delta_to_absolute"] is True
    rt = load_runtime(tmp_path, "onnxruntime")
    rng = np.random.default_rng(0)
    imgs = {"front": rng.integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)}
    state = np.array([[0.0, 0.0, 0.0], [5.0, 6.0, 7.0]])
    noise = np.zeros((5, 2), np.float32)
    out = rt.infer(Observation(images=imgs, state=state), noise=noise)
    feeds = rt.pre(Observation(images=imgs, state=state))
    feeds["noise"] = noise[None]
    raw = rt.run_model(feeds)[0] * np.array([0.1, 0.2], np.float32)
    assert np.allclose(out, raw + np.array([7.0, 5.0]), atol=1e-5)  # z and x of the newest state
    # torch agrees on the same observation
    t = load_runtime(tmp_path, "torch", model=model).infer(Observation(images=imgs, state=state), noise=noise)
    assert np.allclose(out, t, atol=1e-4)


def test_backend_failures_become_inference_errors(tmp_path):
    from vla_ros.contract.errors import InferenceError

    class Broken(TinyPolicy):
        def export_step(self, prefix, x, step_index):
            raise RuntimeError("kernel exploded")

    model = TinyPolicy()
    card = export_policy(model, tmp_path, layout="split")
    broken = Broken()
    broken.load_state_dict(model.state_dict())
    rt = load_runtime(card, "torch", model=broken)
    with pytest.raises(InferenceError, match=r"torch backend failed.*kernel exploded"):
        rt.infer(synthetic_observation(card))
