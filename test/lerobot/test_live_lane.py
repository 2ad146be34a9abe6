"""The live lane: LeRobot itself (the 3.12 reference venv) regenerates the goldens now, and vla_ros
matches them. Marked ``lerobot``; skipped (saying why) when the lane is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from lerobot_fixtures import BOUND, FIXTURES, LIVE_MARKS, run_lane_script
from safetensors.torch import load_file

from vla_ros.spine.checkpoints import build_lerobot_policy, read_lerobot_folder

CASES = ("act_1cam_meanstd", "act_2cam_minmax_prenorm", "act_quantiles", "act_sim_arm")

pytestmark = LIVE_MARKS


@pytest.mark.parametrize("case", CASES)
def test_live_lerobot_goldens_match_vla_ros(case: str, tmp_path: Path) -> None:
    from test_act_model import whole_path

    run_lane_script("lerobot_goldens.py", "--out", str(tmp_path), "--only", case, timeout=240)
    fresh = load_file(str(tmp_path / case / "outputs.safetensors"))["action"]
    committed = load_file(str(FIXTURES / case / "outputs.safetensors"))["action"]
    assert (fresh - committed).abs().max().item() <= 1e-6  # the lane reproduces the committed goldens
    ckpt = read_lerobot_folder(tmp_path / case / "pretrained_model")
    inputs = load_file(str(tmp_path / case / "inputs.safetensors"))
    got = whole_path(ckpt, build_lerobot_policy(ckpt), inputs)
    assert (got - fresh).abs().max().item() <= BOUND
