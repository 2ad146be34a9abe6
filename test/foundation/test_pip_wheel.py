"""The pip-installable part (setup.cfg): a wheel installed into a fresh environment finds the
built-in model configs (`vla-ros export act_tiny`) and the bundled cards, away from the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: no PYTHONPATH (./env.sh puts the checkout and the colcon install on it), no ament prefixes
CLEAN = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH", "VIRTUAL_ENV")}


@pytest.mark.slow
def test_an_installed_wheel_finds_the_model_configs_and_bundled_cards(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    (wheel,) = wheels.glob("vla_ros-*.whl")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        cwd=tmp_path,  # away from the checkout: pip would take its vla_ros for installed
        env=CLEAN,
    )
    probe = (
        "import vla_ros, vla_ros.spine.config as c, vla_ros.contract.card as k; "
        "print(vla_ros.__file__); print(c.resolve_config_path('act_tiny')); print(k.bundled_card_names())"
    )
    out = subprocess.run(
        [python, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()
    assert out[0].startswith(str(env_dir)), out  # the installed copy, not the checkout
    assert out[1] == str(env_dir / "share" / "vla_ros" / "config" / "models" / "act_tiny.yaml"), out
    assert "sim_reach_act" in out[2] and "sim_switching_targets_flow" in out[2], out
