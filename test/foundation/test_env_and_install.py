"""The colcon install and ./env.sh, used the way a person uses them: from a shell."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the colcon install of the lane under test (install/ for Kilted, install-jazzy/ for Jazzy; env.sh sets it)
INSTALL = Path(os.environ.get("VLA_ROS_INSTALL", ROOT / "install"))
NODES = ("policy_node", "executor_node", "doctor_node", "sim_node")


def _env_sh(*cmd: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "env.sh"), *cmd],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.ros
def test_env_sh_imports_messages_and_rclpy_from_anywhere(tmp_path):
    code = "from vla_ros.msg import ActionChunk; import rclpy; print(ActionChunk.__module__)"
    proc = _env_sh("python", "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "vla_ros.msg._action_chunk"


@pytest.mark.ros
def test_install_layout():
    libdir = INSTALL / "vla_ros" / "lib" / "vla_ros"
    for name in (*NODES, "vla-ros"):
        exe = libdir / name
        assert exe.is_file() and os.access(exe, os.X_OK), f"{exe} missing or not executable"
    share = INSTALL / "vla_ros" / "share"
    assert (share / "ament_index" / "resource_index" / "packages" / "vla_ros").is_file()
    assert (share / "vla_ros" / "package.xml").is_file()
    assert (share / "vla_ros" / "msg" / "ActionChunk.msg").is_file()


@pytest.mark.ros
def test_vla_ros_cli_runs_through_env_sh():
    proc = _env_sh("vla-ros", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: vla-ros" in proc.stdout
    bad = _env_sh("vla-ros", "no-such-command")
    assert bad.returncode == 2
    assert "unknown command 'no-such-command'" in bad.stderr


def test_env_sh_without_command_explains_usage():
    proc = _env_sh()
    assert proc.returncode == 2
    assert "usage: ./env.sh CMD" in proc.stderr


def test_cli_listing_does_not_import_heavy_areas():
    code = (
        "import sys, contextlib, io\n"
        "from vla_ros.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    rc = main(['--help'])\n"
        "assert rc == 0 and 'doctor' in out.getvalue(), out.getvalue()\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False", "listing subcommands imported torch"


@pytest.mark.ros
def test_installed_package_finds_model_configs_by_name(tmp_path):
    code = (
        "import vla_ros.spine.config as c; from vla_ros.spine import VLAS;"
        "p = c.resolve_config_path('act_tiny'); print(c.__file__); print(p)"
    )
    proc = _env_sh("python", "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    module_file, config = proc.stdout.split()
    assert module_file.startswith(f"{INSTALL}/")  # the colcon-installed copy, not the checkout
    assert config.endswith("share/vla_ros/config/models/act_tiny.yaml")
