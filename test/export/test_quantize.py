"""--precision int8: static QDQ int8 ONNX graphs for CPUs, calibrated and parity-gated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from vla_ros.contract.errors import ExportError, ParityError
from vla_ros.export import PolicyCard, export_policy, onnx_export
from vla_ros.export.parity import TRACE_LABEL
from vla_ros.runtime import Observation, load_runtime


def _quantized_ops(path: Path) -> set[str]:
    qdq = ("QuantizeLinear", "DequantizeLinear")
    return {n.op_type for n in onnx.load(str(path)).graph.node if n.op_type in qdq}


def _observation(card: PolicyCard, seed: int) -> Observation:
    rng = np.random.default_rng(seed)
    h, w = card.io.image_size
    images = {c: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for c in card.io.camera_names}
    return Observation(images=images, state=rng.standard_normal(card.io.state_dim), instruction="pick")


@pytest.fixture(scope="module")
def act_int8(tmp_path_factory: pytest.TempPathFactory) -> PolicyCard:
    return export_policy("act_tiny", tmp_path_factory.mktemp("act_int8"), precision="int8")


def test_int8_card_names_both_graphs_and_records_how(act_int8: PolicyCard) -> None:
    card = PolicyCard.load(act_int8.root)  # round-trips through card.yaml
    assert card.export["precision"] == "int8"
    assert card.files["onnx"] == "model.int8.onnx" and card.files["onnx_fp32"] == "model.onnx"
    assert _quantized_ops(card.path("onnx")) == {"QuantizeLinear", "DequantizeLinear"}
    assert not _quantized_ops(card.path("onnx_fp32"))
    q = card.export["quantization"]
    assert q["calibration"].startswith("synthetic (16 samples") and "Conv" in q["op_types"]
    p = card.parity
    assert p["precision"] == "int8" and p["bound"] == onnx_export.PARITY_BOUNDS["int8"]
    assert 0 < p["max_abs_err"] <= p["bound"]  # int8 is approximate, within the stated bound
    assert p["onnxruntime_fp32"]["max_abs_err"] <= 1e-4  # the fp32 graph is still exact
    # the trace input and 7 random valid inputs the synthetic calibration (seeds 1..16) never saw
    assert p["onnxruntime"]["inputs"] == [TRACE_LABEL] + [
        f"random seed {s} (batch 1)" for s in range(10_001, 10_008)
    ]
    assert 0.9 < p["cosine_min"] == p["onnxruntime"]["graphs"]["actions"]["cosine"] < 1.0


def test_int8_and_fp32_graphs_of_one_card_agree_within_the_bound(act_int8: PolicyCard) -> None:
    int8 = load_runtime(act_int8.root, backend="onnxruntime")
    fp32 = load_runtime(act_int8.root, backend="onnxruntime", graphs="fp32")
    torch_rt = load_runtime(act_int8.root, backend="torch")
    assert int8.info()["graphs"] == "int8" and fp32.info()["graphs"] == "fp32"
    std = np.asarray(act_int8.normalization.action.std, dtype=np.float32)
    for seed in range(3):
        obs = _observation(act_int8, seed)
        a8, a32, at = int8.infer(obs), fp32.infer(obs), torch_rt.infer(obs)
        np.testing.assert_allclose(a32, at, atol=1e-4)
        err = np.abs(a8 - at) / std  # back in normalized action units, as the gate measures
        assert 0 < err.max() <= onnx_export.PARITY_BOUNDS["int8"], err.max()


def test_split_layout_calibrates_the_step_graph_inside_the_loop(tmp_path: Path) -> None:
    card = export_policy("flow_matching_tiny", tmp_path / "fm", precision="int8")
    assert card.layout == "split"
    assert {"onnx_prefix_fp32", "onnx_step_fp32"} <= set(card.files)
    for role in ("onnx_prefix", "onnx_step"):
        assert card.files[role].endswith(".int8.onnx") and _quantized_ops(card.path(role))
    per = card.parity["onnxruntime"]["per_output"]
    assert card.parity["onnxruntime"]["gate"] == "actions"
    assert card.parity["max_abs_err"] == per["actions"] <= onnx_export.PARITY_BOUNDS["int8"]
    actions = load_runtime(card.root, backend="onnxruntime").infer(_observation(card, 0))
    assert actions.shape == card.io.chunk_shape and np.isfinite(actions).all()


def test_calibration_from_observations(tmp_path: Path, act_int8: PolicyCard) -> None:
    io = act_int8.io
    rng = np.random.default_rng(0)
    n = 6
    arrays = {f"images/{c}": rng.integers(0, 256, (n, 60, 80, 3), dtype=np.uint8) for c in io.camera_names}
    arrays["state"] = rng.standard_normal((n, io.state_dim)).astype(np.float32)
    arrays["instruction"] = np.array(["pick the cube"] * n)
    npz = tmp_path / "obs.npz"
    np.savez(npz, **arrays)
    card = export_policy("act_tiny", tmp_path / "card", precision="int8", calibration=npz)
    assert card.export["quantization"]["calibration"] == "obs.npz (6 observations)"
    assert card.parity["max_abs_err"] <= onnx_export.PARITY_BOUNDS["int8"]

    del arrays["state"]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ExportError, match=r"lacks \['state'\]"):
        export_policy("act_tiny", tmp_path / "bad", precision="int8", calibration=tmp_path / "bad.npz")
    # refused before anything is written: the card already in --out stays
    with pytest.raises(ExportError, match="does not exist"):
        export_policy("act_tiny", tmp_path / "card", precision="int8", calibration=tmp_path / "none.npz")
    with pytest.raises(ExportError, match="--calibration-samples 0 must be >= 1"):
        export_policy("act_tiny", tmp_path / "card", precision="int8", calibration_samples=0)
    assert PolicyCard.load(tmp_path / "card").policy_id == card.policy_id


def test_int8_gate_refuses_and_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(onnx_export.PARITY_BOUNDS, "int8", 1e-7)  # stricter than int8 can be
    with pytest.raises(
        ParityError, match=r"int8 parity failed: .* > 1e-07 .*--calibration.*--precision fp32"
    ):
        export_policy("act_tiny", tmp_path / "strict", precision="int8")
    assert not (tmp_path / "strict" / "card.yaml").exists()  # no card from a failed export


def test_int8_is_for_onnx_on_cpus_only(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="int8 ONNX graphs for onnxruntime on a CPU"):
        export_policy("act_tiny", tmp_path / "a", backends="onnx,tensorrt", precision="int8")
    with pytest.raises(ExportError, match="supports the monolithic and split layouts"):
        export_policy("hierarchical_tiny", tmp_path / "b", precision="int8")


def test_tensorrt_engines_are_not_built_from_an_int8_card(act_int8: PolicyCard) -> None:
    from vla_ros.export.api import add_tensorrt_engines

    with pytest.raises(ExportError, match=r"int8 card for onnxruntime on a CPU.*--precision fp16"):
        add_tensorrt_engines(PolicyCard.load(act_int8.root), "fp16", {})
