"""The live lane for SmolVLA: LeRobot (the 3.12 reference venv) regenerates the goldens now, they
equal the committed ones, and vla_ros matches them. Marked ``lerobot``; skipped without the lane."""

from __future__ import annotations

from pathlib import Path

import torch
from lerobot_fixtures import BOUND, FIXTURES, LIVE_MARKS, run_lane_script
from safetensors.torch import load_file
from test_smolvla_model import obs_of

from vla_ros.spine.checkpoints import build_lerobot_policy, read_lerobot_folder

CASE = "smolvla_2cam"

pytestmark = LIVE_MARKS


def test_live_lerobot_smolvla_goldens_match_vla_ros(tmp_path: Path) -> None:
    run_lane_script("lerobot_goldens_smolvla.py", "--out", str(tmp_path), "--only", CASE, timeout=300)
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
