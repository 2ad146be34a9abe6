"""Distro, path and Python checks with real environments and real interpreter probes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from vla_ros.doctor import ros_env
from vla_ros.doctor.result import PROBE_MARK, DoctorContext, Status


def _prefix(root: Path, distro: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if distro:
        env_dir = root / "share" / "ros_environment" / "environment"
        env_dir.mkdir(parents=True)
        (env_dir / "1.ros_distro.dsv").write_text(f"set;ROS_DISTRO;{distro}\n")
    return root


@pytest.mark.parametrize("distro", ["humble", "jazzy", "kilted", "rolling"])
def test_supported_distros_pass(distro: str) -> None:
    res = ros_env.check_distro(DoctorContext(env={"ROS_DISTRO": distro, "ROS_VERSION": "2"}))
    assert res.status is Status.PASS and distro in res.message


@pytest.mark.parametrize("distro", ["foxy", "galactic", "iron", "noetic", "bogus"])
def test_unsupported_distros_fail(distro: str) -> None:
    res = ros_env.check_distro(DoctorContext(env={"ROS_DISTRO": distro}))
    assert res.status is Status.FAIL
    assert distro in res.message and "humble" in res.fix


def test_unset_distro_and_ros1() -> None:
    assert ros_env.check_distro(DoctorContext(env={})).status is Status.FAIL
    res = ros_env.check_distro(DoctorContext(env={"ROS_DISTRO": "jazzy", "ROS_VERSION": "1"}))
    assert res.status is Status.FAIL and "ROS 1" in res.message


def test_prefix_declaring_another_distro(tmp_path: Path) -> None:
    humble = _prefix(tmp_path / "opt_humble", "humble")
    jazzy = _prefix(tmp_path / "opt_jazzy", "jazzy")
    env = {"ROS_DISTRO": "jazzy", "AMENT_PREFIX_PATH": f"{jazzy}:{humble}"}
    res = ros_env.check_distro(DoctorContext(env=env))
    assert res.status is Status.FAIL and str(humble) in res.message
    env["AMENT_PREFIX_PATH"] = str(jazzy)
    assert ros_env.check_distro(DoctorContext(env=env)).status is Status.PASS


def test_second_distro_on_library_path(tmp_path: Path) -> None:
    ws = _prefix(tmp_path / "ws")
    env = {
        "ROS_DISTRO": "jazzy",
        "AMENT_PREFIX_PATH": str(ws),
        "LD_LIBRARY_PATH": "/opt/ros/jazzy/lib:/opt/ros/humble/lib",
        "PYTHONPATH": "/opt/ros/jazzy/lib/python3.12/site-packages",
    }
    res = ros_env.check_paths(DoctorContext(env=env))
    assert res.status is Status.FAIL
    assert "/opt/ros/humble/lib" in res.message and "LD_LIBRARY_PATH" in res.message
    env["LD_LIBRARY_PATH"] = "/opt/ros/jazzy/lib"
    assert ros_env.check_paths(DoctorContext(env=env)).status is Status.PASS


def test_missing_prefix_warns(tmp_path: Path) -> None:
    gone = tmp_path / "deleted_ws" / "install"
    env = {"ROS_DISTRO": "kilted", "AMENT_PREFIX_PATH": f"{_prefix(tmp_path / 'ok')}:{gone}"}
    res = ros_env.check_paths(DoctorContext(env=env))
    assert res.status is Status.WARN and str(gone) in res.message


def test_python_probe_on_this_interpreter() -> None:
    ctx = DoctorContext(env=dict(os.environ), python=sys.executable)
    probe = ros_env.probe_python(ctx)
    assert "error" not in probe, probe
    assert probe["modules"]["numpy"]["ok"]
    numpy_cv2 = ros_env.check_numpy_cv2(ctx, probe)
    assert numpy_cv2.status in (Status.PASS, Status.SKIP), numpy_cv2
    if probe["modules"]["rclpy"]["ok"]:
        env = dict(os.environ, ROS_DISTRO="kilted")
        res = ros_env.check_rclpy(DoctorContext(env=env, python=sys.executable), probe)
        version = res.details["rclpy_version"]
        assert (res.status is Status.PASS) == version.startswith("9."), res


def _fake_package(site: Path, name: str, body: str, dist: str | None = None, version: str = "0") -> None:
    (site / name).mkdir(parents=True, exist_ok=True)
    (site / name / "__init__.py").write_text(body)
    if dist:
        info = site / f"{dist}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")


def test_stray_rclpy_from_another_distro_fails(tmp_path: Path) -> None:
    """An rclpy from Humble (3.x) first on PYTHONPATH while ROS_DISTRO=jazzy."""
    site = tmp_path / "humble_site"
    _fake_package(site, "rclpy", "__version__ = '3.3.14'\n", dist="rclpy", version="3.3.14")
    env = dict(os.environ, PYTHONPATH=str(site), ROS_DISTRO="jazzy")
    ctx = DoctorContext(env=env, python=sys.executable)
    res = ros_env.check_rclpy(ctx, ros_env.probe_python(ctx))
    assert res.status is Status.FAIL
    assert "3.3.14" in res.message and "humble" in res.message


def test_rclpy_not_importable_fails(tmp_path: Path) -> None:
    site = tmp_path / "broken_site"
    _fake_package(site, "rclpy", "raise ImportError('librcl.so: cannot open shared object')\n")
    env = dict(os.environ, PYTHONPATH=str(site), ROS_DISTRO="humble")
    ctx = DoctorContext(env=env, python=sys.executable)
    res = ros_env.check_rclpy(ctx, ros_env.probe_python(ctx))
    assert res.status is Status.FAIL and "librcl.so" in res.message
    assert "3.10" in res.fix  # humble's Python, this interpreter is another one


def test_cv2_built_for_numpy1_fails(tmp_path: Path) -> None:
    site = tmp_path / "apt_site"
    _fake_package(site, "cv2", "raise ImportError('numpy.core.multiarray failed to import')\n")
    ctx = DoctorContext(env=dict(os.environ, PYTHONPATH=str(site)), python=sys.executable)
    res = ros_env.check_numpy_cv2(ctx, ros_env.probe_python(ctx))
    assert res.status is Status.FAIL and "numpy<2" in res.fix


def test_venv_conda_and_broken_probe() -> None:
    ctx = DoctorContext(env=dict(os.environ), python=sys.executable)
    probe = ros_env.probe_python(ctx)
    res = ros_env.check_venv(ctx, probe)
    if sys.prefix != sys.base_prefix:
        assert res.status is Status.WARN  # ROS wheels in a venv: honest WARN, never FAIL
    conda = DoctorContext(env=dict(os.environ, CONDA_PREFIX=probe["prefix"]), python=sys.executable)
    assert ros_env.check_venv(conda, probe).status is Status.WARN
    bad = DoctorContext(env=dict(os.environ), python="/nonexistent/python3")
    broken = ros_env.probe_python(bad)
    assert "error" in broken
    assert ros_env.check_rclpy(bad, broken).status is Status.FAIL


def test_probe_returns_findings_or_an_error_naming_the_probe() -> None:
    """One runner serves every probe (Python stack, torch, TensorRT): findings, crash, timeout."""
    ctx = DoctorContext(env=dict(os.environ), python=sys.executable)
    script = (
        "import json, sys; sys.stderr.write('warned'); "
        f"print({PROBE_MARK!r} + json.dumps({{'argv': sys.argv[1:]}}))"
    )
    assert ctx.probe(script, "echo probe", "a", "b") == {"argv": ["a", "b"]}
    assert ctx.probe(script, "echo probe", stderr_tail=True) == {"argv": [], "stderr_tail": "warned"}
    crash = ctx.probe("import sys; sys.exit('it broke')", "crash probe")
    assert crash == {"error": "crash probe exited 1: it broke"}
    slow = ctx.probe("import time; time.sleep(30)", "slow probe", timeout=0.5)
    assert slow == {"error": "slow probe timed out after 0.5 s"}
