"""The live lane for Diffusion Policy: LeRobot itself (the 3.12 reference venv) regenerates the
goldens now; they equal the committed ones and vla_ros reproduces the fresh ones. Marked
``lerobot``; skipped (saying why) when the lane is not installed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
from diffusion_helpers import DIFFUSION_CASES, spine_obs
from lerobot_fixtures import BOUND, FIXTURES
from safetensors.torch import load_file

from vla_ros.spine.checkpoints import build_lerobot_policy, read_lerobot_folder

ROOT = Path(__file__).resolve().parents[2]
LANE = Path(os.environ.get("LEROBOT_VENV", ROOT / ".venv-lerobot")) / "bin" / "python"

pytestmark = [
    pytest.mark.lerobot,
    pytest.mark.slow,
    pytest.mark.skipif(
        not LANE.is_file(), reason=f"no LeRobot reference lane at {LANE.parent.parent}: run make lerobot-ref"
    ),
]


@pytest.mark.parametrize("case", DIFFUSION_CASES)
def test_live_lerobot_diffusion_goldens_match_vla_ros(case: str, tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    script = ROOT / "scripts" / "lerobot_goldens_diffusion.py"
    run = subprocess.run(
        [str(LANE), str(script), "--out", str(tmp_path), "--only", case],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    fresh = load_file(tmp_path / case / "outputs.safetensors")
    committed = load_file(FIXTURES / case / "outputs.safetensors")
    assert fresh.keys() == committed.keys()
    for key in fresh:
        assert (fresh[key] - committed[key]).abs().max().item() <= 1e-6, key
    inputs = load_file(tmp_path / case / "inputs.safetensors")
    ckpt = read_lerobot_folder(tmp_path / case / "pretrained_model")
    model = build_lerobot_policy(ckpt)
    unnorm = ckpt.normalizer("action").unnormalize
    for i in range(fresh["action"].shape[0]):
        step_noise = inputs["step_noise"][i][:, None] if "step_noise" in inputs else None
        with torch.no_grad():
            chunk = model.predict_action_chunk(
                spine_obs(ckpt, inputs, i), inputs["noise"][i][None], step_noise=step_noise
            )[0]
        assert (unnorm(chunk) - fresh["action"][i]).abs().max().item() <= BOUND
