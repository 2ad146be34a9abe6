"""Card and inference-stack checks on real card folders written by ``vla_ros.export.export_policy``.

Engines cannot be built on a CPU machine, so engine cards are made the way
``vla_ros.export.api.add_tensorrt_engines`` makes them (engine file next to each ONNX graph, hashed
by ``PolicyCard.add_file``, build record in ``export.tensorrt``) with the build record of another
machine; the verdicts are compared with the runtime's own rules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from vla_ros.doctor import card_checks as cc
from vla_ros.doctor import inference as inf
from vla_ros.doctor import ros_env
from vla_ros.doctor.result import DoctorContext, Status

PolicyCard = pytest.importorskip("vla_ros.contract.card").PolicyCard
CardError = pytest.importorskip("vla_ros.contract.errors").CardError
engine_compat_problems = pytest.importorskip("vla_ros.runtime.trt_engine").engine_compat_problems
rebuild_command = pytest.importorskip("vla_ros.runtime.trt_backend").rebuild_command

CTX = DoctorContext(env={})
REPO = Path(__file__).resolve().parents[2]
ORIN = {"tensorrt_version": "10.3.0", "compute_capability": "8.7", "gpu_name": "Orin"}


def add_engine(card_dir: Path, precision: str = "fp16", record: dict[str, Any] | None = None) -> PolicyCard:
    """Give an exported card TensorRT engine(s) as ``add_tensorrt_engines`` records them, built
    on another machine (``record`` overrides the build record; ``None`` values drop keys)."""
    card = PolicyCard.load(card_dir)
    built = {
        **ORIN,
        "machine": "aarch64",
        "precision": precision,
        "version_compatible": False,
        "hardware_compatibility": "none",
        "workspace_gb": 2.0,
        "build_seconds": 12.5,
    }
    built.update(record or {})
    built = {k: v for k, v in built.items() if v is not None}
    for onnx_role, engine_role in (
        ("onnx", "engine"),
        ("onnx_prefix", "engine_prefix"),
        ("onnx_step", "engine_step"),
    ):
        if card.has(onnx_role):
            dst = card.path(onnx_role).with_suffix(".engine")
            dst.write_bytes(f"serialized {engine_role} built elsewhere".encode() * 50)
            card.add_file(engine_role, dst.name)
    card.export["tensorrt"] = built
    card.export["precision"] = precision
    card.provenance["tensorrt"] = {
        k: built.get(k) for k in ("tensorrt_version", "compute_capability", "gpu_name")
    }
    card.save()
    return PolicyCard.load(card_dir)


def here(trt: str | None, cc_: str | None) -> dict[str, Any]:
    """A TensorRT probe result and compute capability, as the doctor measures them."""
    return {"trt_probe": {"version": trt} if trt else None, "machine_cc": cc_}


def engine_check(card_dir: Path, trt: str | None, cc_: str | None, probe: dict | None = None):
    m = here(trt, cc_)
    return inf.check_engine(CTX, cc.load_card(card_dir), probe or m["trt_probe"], m["machine_cc"])


# ---------------------------------------------------------------------------------------- card


def test_exported_card_passes(card_copy) -> None:
    d = card_copy("act")
    loaded = cc.load_card(d)
    assert loaded.card is not None and loaded.error is None
    schema = cc.check_card_schema(CTX, loaded)
    assert schema.status is Status.PASS and schema.message.startswith("act_tiny@"), schema
    assert schema.details["policy_id"] == PolicyCard.load(d).policy_id
    files = cc.check_card_files(CTX, loaded)
    assert files.status is Status.PASS, files
    assert set(files.details["files"]) == {"onnx", "safetensors"}
    assert cc.check_card_files(CTX, None).status is Status.SKIP
    assert cc.check_card_schema(CTX, None).status is Status.SKIP


def test_missing_and_corrupt_files(card_copy) -> None:
    d = card_copy("act")
    (d / "model.onnx").write_bytes(b"replaced")
    bad = cc.check_card_files(CTX, cc.load_card(d))
    assert bad.status is Status.FAIL and "model.onnx" in bad.message and "SHA-256" in bad.message
    assert bad.details["hash_mismatch"] == ["model.onnx"]
    assert "corrupt or was replaced" in bad.details["errors"]["model.onnx"]  # PolicyCard.path's text
    assert PolicyCard.load(d).export_command() in bad.fix
    (d / "model.onnx").unlink()
    gone = cc.check_card_files(CTX, cc.load_card(d))
    assert gone.status is Status.FAIL and "missing" in gone.message and "onnx: model.onnx" in gone.message


def test_corrupt_engine_only_asks_for_an_engine_rebuild(card_copy) -> None:
    d = card_copy("act")
    card = add_engine(d)
    assert cc.check_card_files(CTX, cc.load_card(d)).status is Status.PASS
    (d / "model.engine").write_bytes(b"truncated")
    res = cc.check_card_files(CTX, cc.load_card(d))
    assert res.status is Status.FAIL and res.details["hash_mismatch"] == ["model.engine"]
    assert rebuild_command(card) in res.fix and "--backends tensorrt" in res.fix


def test_card_that_does_not_load_fails_with_the_loaders_message(card_copy, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    loaded = cc.load_card(empty)
    with pytest.raises(CardError) as exc:
        PolicyCard.load(empty)
    assert loaded.card is None and loaded.error == str(exc.value)
    schema = cc.check_card_schema(CTX, loaded)
    assert schema.status is Status.FAIL and schema.message == str(exc.value)
    assert "vla-ros export" in schema.fix and str(empty) in schema.fix
    # the other card checks say why they cannot run instead of repeating the failure
    for res in (
        cc.check_card_files(CTX, loaded),
        cc.check_card_timing(CTX, loaded, 0.1, "test"),
        cc.check_control_rate(CTX, loaded, 100.0),
        inf.check_engine(CTX, loaded, None, None),
    ):
        assert res.status is Status.SKIP and "card.schema" in res.message, res


def test_schema_violation_and_hand_edit(card_copy) -> None:
    d = card_copy("act")
    data = yaml.safe_load((d / "card.yaml").read_text())
    data["state_joints"] = data["state_joints"][:1]
    data.pop("policy_id")
    (d / "card.yaml").write_text(yaml.safe_dump(data))
    res = cc.check_card_schema(CTX, cc.load_card(d))
    assert res.status is Status.FAIL and "state_joints" in res.message
    d2 = card_copy("split")
    data = yaml.safe_load((d2 / "card.yaml").read_text())
    data["normalization"]["action"]["std"][0] = 2.0  # changes the policy's numbers, id left as is
    (d2 / "card.yaml").write_text(yaml.safe_dump(data))
    edited = cc.check_card_schema(CTX, cc.load_card(d2))
    assert edited.status is Status.FAIL and "edited by hand" in edited.message


def test_chunk_timing(card_copy) -> None:
    loaded = cc.load_card(card_copy("act"))  # act_tiny: horizon 8 x dt 0.02 s = 160 ms chunk
    assert cc.check_card_timing(CTX, loaded).status is Status.SKIP
    assert cc.check_card_timing(CTX, loaded, 0.050, "test").status is Status.PASS
    assert cc.check_card_timing(CTX, loaded, 0.100, "test").status is Status.WARN
    late = cc.check_card_timing(CTX, loaded, 0.200, "test")
    assert late.status is Status.FAIL and "200 ms" in late.message and "160 ms" in late.message


def test_latency_recorded_in_card(card_copy) -> None:
    d = card_copy("act")
    card = PolicyCard.load(d)
    card.provenance["bench"] = {"onnxruntime": {"latency_ms": {"p50": 50.0, "p99": 170}}}
    card.save()
    res = cc.check_card_timing(CTX, cc.load_card(d))
    assert res.status is Status.FAIL  # 170 ms p99 > 160 ms chunk
    assert res.details["latency_source"] == "provenance.bench.onnxruntime.latency_ms.p99"


def test_control_rate(card_copy) -> None:
    loaded = cc.load_card(card_copy("act"))  # dt 0.02 s: 50 fps
    assert cc.check_control_rate(CTX, loaded, None).status is Status.SKIP
    assert cc.check_control_rate(CTX, loaded, 100.0).status is Status.PASS
    low = cc.check_control_rate(CTX, loaded, 30.0)
    assert low.status is Status.WARN and "50" in low.fix


# -------------------------------------------------------------------------------------- engine


def test_version_and_hardware_compatible_engine_runs_on_a_newer_machine(card_copy) -> None:
    # built on an Orin (TensorRT 10.3, sm 8.7) version-compatible for Ampere+; this box: 10.7, sm 8.9
    d = card_copy("act")
    card = add_engine(d, record={"version_compatible": True, "hardware_compatibility": "ampere_plus"})
    res = engine_check(d, "10.7.0", "8.9")
    assert (
        engine_compat_problems(
            card.export["tensorrt"], {"tensorrt_version": "10.7.0", "compute_capability": "8.9"}
        )
        == []
    )
    assert res.status is Status.PASS, res
    assert "version-compatible" in res.message and "ampere_plus" in res.message
    # TensorRT 9 cannot run a 10.3 version-compatible engine; a Turing GPU cannot run ampere_plus
    old = engine_check(d, "9.3.0", "8.9")
    assert old.status is Status.FAIL and "10.3.0" in old.message and "9.3.0" in old.message
    turing = engine_check(d, "10.7.0", "7.5")
    assert turing.status is Status.FAIL and "ampere_plus" in turing.message and "7.5" in turing.message
    assert turing.fix == f"rebuild the engine on this machine: {rebuild_command(card)}"
    assert "--trt-version-compatible --trt-hardware-compat ampere_plus" in turing.fix


def test_plain_engine_on_another_machine_fails_with_the_runtime_rebuild_command(card_copy) -> None:
    d = card_copy("act")
    card = add_engine(d)
    res = engine_check(d, "10.7.0", "8.9")
    assert res.status is Status.FAIL
    assert "10.3.0" in res.message and "10.7.0" in res.message and "8.9" in res.message
    assert res.fix == f"rebuild the engine on this machine: {rebuild_command(card)}"
    assert f"vla-ros export {d} --backends tensorrt --precision fp16" in res.fix
    assert "trtexec" not in res.fix
    assert engine_check(d, "10.3.0", "8.7").status is Status.PASS
    assert engine_check(d, "10.3.0.26", "8.7").status is Status.PASS  # build number on one side only


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"version_compatible": True},
        {"hardware_compatibility": "ampere_plus"},
        {"hardware_compatibility": "same_compute_capability"},
        {"version_compatible": True, "hardware_compatibility": "ampere_plus"},
    ],
)
def test_engine_verdict_is_the_runtimes(card_copy, record: dict[str, Any]) -> None:
    d = card_copy("act")
    card = add_engine(d, record=record)
    for trt in ("10.3.0", "10.3.1", "10.7.0", "9.3.0"):
        for cap in ("8.7", "8.9", "7.2", "9.0"):
            runtime_says = engine_compat_problems(
                card.export["tensorrt"], {"tensorrt_version": trt, "compute_capability": cap}
            )
            res = engine_check(d, trt, cap)
            assert (res.status is Status.FAIL) == bool(runtime_says), (trt, cap, res.message, runtime_says)
            assert res.status in (Status.PASS, Status.FAIL)
            assert res.details["problems"] == runtime_says


def test_split_card_engines(card_copy) -> None:
    d = card_copy("split")
    card = add_engine(d, precision="fp16", record={"version_compatible": True})
    assert set(inf.engine_roles(card)) == {"engine_prefix", "engine_step"}
    res = engine_check(d, "10.7.0", "8.9")
    assert res.status is Status.FAIL and "8.9" in res.message
    assert res.fix == f"rebuild the engine on this machine: {rebuild_command(card)}"
    assert "model.onnx" not in res.fix and "--trt-version-compatible" in res.fix
    assert res.details["engines"] == {"engine_prefix": "prefix.engine", "engine_step": "step.engine"}
    assert engine_check(d, "10.4.0", "8.7").status is Status.PASS


def test_engine_deserialize_result(card_copy) -> None:
    d = card_copy("act")
    add_engine(d)
    engine = str(d / "model.engine")
    failed = engine_check(
        d,
        "10.3.0",
        "8.7",
        probe={
            "version": "10.3.0",
            "engines": {engine: {"deserialized": False, "log": ["version tag mismatch"]}},
        },
    )
    assert failed.status is Status.FAIL and "version tag mismatch" in failed.message
    assert "--backends tensorrt" in failed.fix
    ok = engine_check(
        d,
        "10.3.0",
        "8.7",
        probe={"version": "10.3.0", "engines": {engine: {"deserialized": True, "log": []}}},
    )
    assert ok.status is Status.PASS and "deserialize" in ok.message


def test_engine_cannot_be_judged_without_tensorrt_or_gpu(card_copy) -> None:
    d = card_copy("act")
    add_engine(d)
    for trt, cap, missing in (
        (None, None, "TensorRT or CUDA GPU"),
        ("10.3.0", None, "CUDA GPU"),
        (None, "8.7", "TensorRT"),
    ):
        res = engine_check(d, trt, cap)
        assert res.status is Status.SKIP and "10.3.0" in res.message and "8.7" in res.message
        assert f"no {missing} on this machine" in res.message


def test_engine_without_build_record_fails_like_the_runtime(card_copy) -> None:
    d = card_copy("act")
    card = add_engine(d)
    del card.export["tensorrt"]
    card.save()
    res = engine_check(d, "10.3.0", "8.7")
    assert res.status is Status.FAIL and "export.tensorrt" in res.message
    assert rebuild_command(card) in res.fix


def test_card_without_engine_or_without_card(card_copy) -> None:
    assert engine_check(card_copy("act"), "10.3.0", "8.7").status is Status.SKIP
    assert inf.check_engine(CTX, None, None, None).status is Status.SKIP


# ------------------------------------------------------------------------------ this machine


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


def test_cli_checks_an_exported_card(card_copy) -> None:
    d = card_copy("act")
    argv = [sys.executable, "-m", "vla_ros.doctor.cli", "--json", "--no-gpu", "--only", "card"]
    argv += ["--only", "inference", "--card", str(d), "--control-rate", "100"]
    good = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    by_id = {c["id"]: c for c in json.loads(good.stdout)["checks"]}
    ids = list(by_id)
    assert ids.index("card.schema") < ids.index("card.files")
    assert by_id["card.schema"]["status"] == "PASS" and by_id["card.files"]["status"] == "PASS"
    assert by_id["card.control_rate"]["status"] == "PASS"
    assert by_id["inference.engine"]["status"] == "SKIP"
    (d / "model.safetensors").write_bytes(b"not the weights")
    bad = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    by_id = {c["id"]: c for c in json.loads(bad.stdout)["checks"]}
    assert bad.returncode == 1 and by_id["card.files"]["status"] == "FAIL"
    assert "model.safetensors" in by_id["card.files"]["message"]


def test_live_inference_latency_p99_against_the_chunk(card_copy) -> None:
    from vla_ros.doctor.live import LiveObservation, TopicSample
    from vla_ros.doctor.report import DoctorOptions, run_checks

    # 98 chunks at 50 ms, 2 at 200 ms: the median fits the 160 ms chunk, the p99 does not
    lat = [50_000_000] * 98 + [200_000_000] * 2
    obs = LiveObservation(5.0, topics={"/vla/action_chunk": TopicSample("/vla/action_chunk")})
    obs.topics["/vla/action_chunk"].inference_latency_ns = lat
    p99_s, where = obs.inference_latency_s()
    assert p99_s == pytest.approx(0.200) and "p99 of 100 chunks" in where
    opts = DoctorOptions(card=card_copy("act"), groups=("card",))
    by_id = {r.id: r for r in run_checks(CTX, opts, live_obs=obs)}
    timing = by_id["card.timing"]
    assert timing.status is Status.FAIL, timing
    assert timing.details["latency_source"] == where and timing.details["latency_s"] == p99_s
