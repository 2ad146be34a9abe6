"""The live lane for SmolVLA: LeRobot (the 3.12 reference venv) regenerates the goldens now, they
equal the committed ones, and vla_ros matches them. Marked ``lerobot``; skipped without the lane."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
from lerobot_fixtures import BOUND, FIXTURES
from safetensors.torch import load_file
from test_smolvla_model import obs_of

from vla_ros.spine.checkpoints import build_lerobot_policy, read_lerobot_folder

ROOT = Path(__file__).resolve().parents[2]
LANE = Path(os.environ.get("LEROBOT_VENV", ROOT / ".venv-lerobot")) / "bin" / "python"
CASE = "smolvla_2cam"

pytestmark = [
    pytest.mark.lerobot,
    pytest.mark.slow,
    pytest.mark.skipif(
        not LANE.is_file(), reason=f"no LeRobot reference lane at {LANE.parent.parent}: run make lerobot-ref"
    ),
]


def test_live_lerobot_smolvla_goldens_match_vla_ros(tmp_path: Path) -> None:
    script = ROOT / "scripts" / "lerobot_goldens_smolvla.py"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [str(LANE), str(script), "--out", str(tmp_path), "--only", CASE],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    fresh = load_file(str(tmp_path / CASE / "outputs.safetensors"))
    committed = load_file(str(FIXTURES / CASE / "outputs.safetensors"))
    assert (fresh["action"] - committed["action"]).abs().max().item() <= 1e-6
    assert torch.equal(fresh["tokens"], committed["tokens"])
    ckpt = read_lerobot_folder(tmp_path / CASE / "pretrained_model")
    model = build_lerobot_policy(ckpt)
    inputs = load_file(str(tmp_path / CASE / "inputs.safetensors"))
    with torch.no_grad():
        normalized = model.predict_action(obs_of(ckpt, model, inputs, CASE), noise=inputs["noise"])
    got = ckpt.normalizer("action").unnormalize(normalized)
    assert (got - fresh["action"]).abs().max().item() <= BOUND
