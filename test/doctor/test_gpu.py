"""GPU and Jetson checks on fake system roots (nv_tegra_release, device tree, tools on PATH)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from vla_ros.doctor import gpu
from vla_ros.doctor.result import DoctorContext, Status

ORIN_RELEASE = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
    "DATE: Wed Jan  8 01:49:37 UTC 2025\n# KERNEL_VARIANT: oot\n"
)
ORIN_COMPAT = "nvidia,p3737-0000+p3701-0005\x00nvidia,p3701-0005\x00nvidia,tegra234\x00"


def _jetson_root(
    root: Path,
    release: str = ORIN_RELEASE,
    compat: str = ORIN_COMPAT,
    model: str = "NVIDIA Jetson AGX Orin Developer Kit",
) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text(release)
    dt = root / "proc" / "device-tree"
    dt.mkdir(parents=True)
    (dt / "model").write_bytes(model.encode() + b"\x00")
    (dt / "compatible").write_bytes(compat.encode())
    (root / "etc" / "nvpmodel.conf").write_text(
        "< POWER_MODEL ID=0 NAME=MAXN >\nCPU_ONLINE CORE_0 1\n< POWER_MODEL ID=1 NAME=MODE_15W >\n"
    )
    return root


def _tool(bindir: Path, name: str, output: str, rc: int = 0) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    p = bindir / name
    p.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {rc}\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)


def test_orin_identity(tmp_path: Path) -> None:
    ctx = DoctorContext(env={}, root=_jetson_root(tmp_path))
    info = gpu.jetson_info(ctx)
    assert info["l4t"] == "36.4.3" and info["jetpack"] == "6.2"
    assert info["soc"] == "tegra234" and info["compute_capability"] == "8.7"
    assert info["model"] == "NVIDIA Jetson AGX Orin Developer Kit"
    res = gpu.check_jetson(ctx, info)
    assert res.status is Status.PASS and "JetPack 6.2" in res.message


@pytest.mark.parametrize(
    ("l4t", "jp"),
    [
        ("32.7.4", "4.6.4"),
        ("35.4.1", "5.1.2"),
        ("35.5.0", "5.1.3"),
        ("36.3.0", "6.0"),
        ("36.4.0", "6.1"),
        ("38.2.0", "7.0"),
        ("31.1.0", None),
    ],
)
def test_jetpack_map(l4t: str, jp: str | None) -> None:
    assert gpu.jetpack_for(l4t) == jp


def test_inconsistent_jetson_warns(tmp_path: Path) -> None:
    xavier = "nvidia,p2972-0000\x00nvidia,tegra194\x00"
    ctx = DoctorContext(env={}, root=_jetson_root(tmp_path, compat=xavier))
    res = gpu.check_jetson(ctx, gpu.jetson_info(ctx))
    assert res.status is Status.WARN and "does not support tegra194" in res.message


def test_not_a_jetson(tmp_path: Path) -> None:
    ctx = DoctorContext(env={}, root=tmp_path)
    assert gpu.jetson_info(ctx) is None
    assert gpu.check_jetson(ctx, None).status is Status.SKIP
    assert gpu.check_power(ctx, None).status is Status.SKIP


def test_power_mode_and_clocks(tmp_path: Path) -> None:
    root = _jetson_root(tmp_path / "root")
    bindir = tmp_path / "bin"
    _tool(bindir, "nvpmodel", "NV Power Mode: MODE_15W\n1")
    _tool(
        bindir,
        "jetson_clocks",
        "SOC family:tegra234  Machine:Orin\n"
        "cpu0: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=729600\n"
        "cpu1: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=1200000\n"
        "GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=306000000",
    )
    ctx = DoctorContext(env={"PATH": f"{bindir}:/usr/bin:/bin"}, root=root)
    info = gpu.jetson_info(ctx)
    res = gpu.check_power(ctx, info)
    assert res.status is Status.WARN
    assert "MODE_15W" in res.message and "sudo nvpmodel -m 0" in res.fix
    assert "sudo jetson_clocks" in res.fix
    _tool(bindir, "nvpmodel", "NV Power Mode: MAXN\n0")
    _tool(
        bindir,
        "jetson_clocks",
        "cpu0: Online=1 Governor=schedutil MinFreq=2201600 "
        "MaxFreq=2201600 CurrentFreq=2201600\nGPU MinFreq=1300500000 MaxFreq=1300500000 "
        "CurrentFreq=1300500000",
    )
    ok = gpu.check_power(ctx, info)
    assert ok.status is Status.PASS and ok.details["jetson_clocks"]["locked"]
    _tool(bindir, "jetson_clocks", "need root", rc=1)
    assert "needs sudo" in gpu.check_power(ctx, info).details["jetson_clocks"]


def test_cuda_without_driver_does_not_import_torch(tmp_path: Path) -> None:
    ctx = DoctorContext(env={}, root=tmp_path)
    res = gpu.check_cuda(ctx, None, None, torch_version="2.5.0+cpu")
    assert res.status is Status.WARN and "CPU" in res.message
    assert gpu.check_cuda(ctx, None, None, None, "GPU checks skipped (--no-gpu)").status is Status.SKIP


@pytest.mark.slow
def test_cuda_driver_present_but_torch_sees_no_gpu(tmp_path: Path) -> None:
    """A machine with an NVIDIA driver, probed with this interpreter's real torch."""
    pytest.importorskip("torch")
    (tmp_path / "proc" / "driver" / "nvidia").mkdir(parents=True)
    (tmp_path / "proc" / "driver" / "nvidia" / "version").write_text("NVRM version: 550.54\n")
    ctx = DoctorContext(env=dict(os.environ), root=tmp_path, python=sys.executable)
    probe = gpu.probe_torch(ctx)
    assert "torch" in probe, probe
    res = gpu.check_cuda(ctx, probe, None, probe["torch"])
    if probe.get("available"):
        assert res.status is Status.PASS and res.details["devices"]
    else:
        assert res.status is Status.FAIL and "torch" in res.fix
