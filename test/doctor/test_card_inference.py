"""Card and inference-stack checks on real card folders written by the export code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from vla_ros.doctor import card_checks as cc
from vla_ros.doctor import inference as inf
from vla_ros.doctor import ros_env
from vla_ros.doctor.result import DoctorContext, Status

PolicyCard = pytest.importorskip("vla_ros.export.card").PolicyCard
Normalization = pytest.importorskip("vla_ros.export.card").Normalization
IOSpec = pytest.importorskip("vla_ros.spine.io").IOSpec

CTX = DoctorContext(env={})


def make_card(
    root: Path, horizon: int = 10, dt: float = 0.05, engine: bool = False, provenance: dict | None = None
) -> Path:
    """A real card folder: card.yaml written by PolicyCard with hashed files."""
    root.mkdir(parents=True)
    io = IOSpec(
        camera_names=("front",), image_size=(32, 32), state_dim=2, action_dim=2, horizon=horizon, dt=dt
    )
    card = PolicyCard(
        name="tiny",
        family="act",
        io=io,
        state_joints=["j1", "j2"],
        action_joints=["j1", "j2"],
        normalization=Normalization.identity(2, 2),
        export={"layout": "monolithic", "precision": "fp16"},
        provenance=provenance or {},
        root=root,
    )
    (root / "model.onnx").write_bytes(b"onnx bytes " * 100)
    card.add_file("onnx", "model.onnx")
    if engine:
        (root / "model.engine").write_bytes(b"engine bytes " * 100)
        card.add_file("engine", "model.engine")
    card.save()
    return root


def test_good_card(tmp_path: Path) -> None:
    d = make_card(tmp_path / "card")
    files = cc.check_card_files(CTX, d)
    assert files.status is Status.PASS, files
    schema = cc.check_card_schema(CTX, d)
    assert schema.status is Status.PASS and "tiny@" in schema.message


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    d = make_card(tmp_path / "card")
    (d / "model.onnx").write_bytes(b"replaced")
    bad = cc.check_card_files(CTX, d)
    assert bad.status is Status.FAIL and "model.onnx" in bad.message and "SHA-256" in bad.message
    (d / "model.onnx").unlink()
    gone = cc.check_card_files(CTX, d)
    assert gone.status is Status.FAIL and "missing" in gone.message
    assert cc.check_card_files(CTX, tmp_path / "nowhere").status is Status.FAIL
    assert cc.check_card_files(CTX, None).status is Status.SKIP


def test_schema_violation(tmp_path: Path) -> None:
    d = make_card(tmp_path / "card")
    data = yaml.safe_load((d / "card.yaml").read_text())
    data["state_joints"] = ["j1"]
    data.pop("policy_id")
    (d / "card.yaml").write_text(yaml.safe_dump(data))
    res = cc.check_card_schema(CTX, d)
    assert res.status is Status.FAIL and "state_joints" in res.message


def test_chunk_timing(tmp_path: Path) -> None:
    d = make_card(tmp_path / "card", horizon=10, dt=0.05)  # 500 ms chunk
    assert cc.check_card_timing(CTX, d).status is Status.SKIP
    assert cc.check_card_timing(CTX, d, 0.100, "test").status is Status.PASS
    assert cc.check_card_timing(CTX, d, 0.300, "test").status is Status.WARN
    late = cc.check_card_timing(CTX, d, 0.600, "test")
    assert late.status is Status.FAIL and "600 ms" in late.message and "500 ms" in late.message


def test_latency_recorded_in_card(tmp_path: Path) -> None:
    d = make_card(
        tmp_path / "card",
        horizon=4,
        dt=0.02,
        provenance={"bench": {"onnxruntime": {"latency_ms": {"p50": 50.0, "p99": 90}}}},
    )
    res = cc.check_card_timing(CTX, d)
    assert res.status is Status.FAIL  # 90 ms p99 > 80 ms chunk
    assert res.details["latency_source"].endswith("latency_ms.p99")


def test_control_rate(tmp_path: Path) -> None:
    d = make_card(tmp_path / "card", dt=0.02)  # 50 fps
    assert cc.check_control_rate(CTX, d, None).status is Status.SKIP
    assert cc.check_control_rate(CTX, d, 100.0).status is Status.PASS
    low = cc.check_control_rate(CTX, d, 30.0)
    assert low.status is Status.WARN and "50" in low.fix


def test_engine_provenance_mismatch_gives_rebuild_command(tmp_path: Path) -> None:
    d = make_card(
        tmp_path / "card",
        engine=True,
        provenance={"tensorrt": {"version": "10.3.0", "compute_capability": "8.7"}},
    )
    card = yaml.safe_load((d / "card.yaml").read_text())
    card["provenance"] = {"tensorrt_version": "10.3.0", "compute_capability": "8.7"}
    probe = {"version": "10.7.0"}
    res = inf.check_engine(CTX, d, card, probe, "8.9")
    assert res.status is Status.FAIL
    assert "10.3.0" in res.message and "10.7.0" in res.message and "8.9" in res.message
    assert f"--onnx={d / 'model.onnx'}" in res.fix and "--fp16" in res.fix
    same = inf.check_engine(CTX, d, card, {"version": "10.3.0"}, "sm_87")
    assert same.status is Status.PASS
    failed = inf.check_engine(
        CTX, d, card, {"version": "10.3.0", "deserialized": False, "log": ["version tag mismatch"]}, "8.7"
    )
    assert failed.status is Status.FAIL and "version tag mismatch" in failed.message


def test_engine_without_tensorrt_here(tmp_path: Path) -> None:
    d = make_card(tmp_path / "card", engine=True)
    card = yaml.safe_load((d / "card.yaml").read_text())
    assert inf.check_engine(CTX, d, card, None, None).status is Status.WARN  # no provenance
    card["provenance"] = {"tensorrt_version": "10.3.0", "compute_capability": [8, 7]}
    res = inf.check_engine(CTX, d, card, None, None)
    assert res.status is Status.SKIP and "8.7" in res.message
    no_engine = make_card(tmp_path / "card2")
    data = yaml.safe_load((no_engine / "card.yaml").read_text())
    assert inf.check_engine(CTX, no_engine, data, None, None).status is Status.SKIP


def test_onnxruntime_and_tensorrt_on_this_machine() -> None:
    ctx = DoctorContext(env=dict(os.environ), python=sys.executable)
    probe = ros_env.probe_python(ctx)
    ort = inf.check_onnxruntime(ctx, probe["onnxruntime"], gpu_expected=False)
    assert ort.status is Status.PASS and "CPUExecutionProvider" in ort.details["providers"]
    gpu_box = inf.check_onnxruntime(
        ctx, {"ok": True, "version": "1.2", "providers": ["CPUExecutionProvider"]}, True
    )
    assert gpu_box.status is Status.WARN and "onnxruntime-gpu" in gpu_box.fix
    assert inf.check_onnxruntime(ctx, None, False).status is Status.WARN
    if not probe["installed"]["tensorrt"]:
        assert inf.check_tensorrt(ctx, None, gpu_expected=False).status is Status.SKIP
        assert inf.check_tensorrt(ctx, None, gpu_expected=True).status is Status.WARN
    else:
        res = inf.check_tensorrt(ctx, inf.probe_tensorrt(ctx), True)
        assert res.status is Status.PASS, res
