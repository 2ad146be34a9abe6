"""The committed LeRobot golden fixtures (made by scripts/lerobot_goldens.py in the reference lane)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lerobot"
#: the LeRobot reference lane's interpreter (``$LEROBOT_VENV``, default ``.venv-lerobot``)
LANE = Path(os.environ.get("LEROBOT_VENV", ROOT / ".venv-lerobot")) / "bin" / "python"
#: the marks of a live-lane test module: ``lerobot``, ``slow``, skipped (saying why) without the lane
LIVE_MARKS = [
    pytest.mark.lerobot,
    pytest.mark.slow,
    pytest.mark.skipif(
        not LANE.is_file(), reason=f"no LeRobot reference lane at {LANE.parent.parent}: run make lerobot-ref"
    ),
]
ACT_CASES = ("act_1cam_meanstd", "act_2cam_minmax_prenorm", "act_quantiles", "act_legacy_v03")
#: the issue's bound on fp32 actions (raw units) through the whole path
BOUND = 1e-4


def folder(case: str) -> Path:
    """The case's LeRobot pretrained_model folder."""
    return FIXTURES / case / "pretrained_model"


def golden(case: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(inputs, outputs): raw observations (images uint8 [N, H, W, 3]) and LeRobot's actions."""
    return load_file(str(FIXTURES / case / "inputs.safetensors")), load_file(
        str(FIXTURES / case / "outputs.safetensors")
    )


def run_lane_script(script: str, *args: str, timeout: float, tail: int = 2000) -> None:
    """Run ``scripts/<script> <args>`` with the lane's Python (Hugging Face hub offline); fails the
    test with the last ``tail`` characters of its stderr unless it exits 0."""
    run = subprocess.run(
        [str(LANE), str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=timeout,
    )
    assert run.returncode == 0, run.stderr[-tail:]
