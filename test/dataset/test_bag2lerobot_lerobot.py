"""The proof: LeRobot 0.6.1's own ``LeRobotDataset`` loads what ``vla-ros bag2lerobot`` wrote from a
sim-arm bag, and every frame it returns equals the bag's messages at the stated fps (images
exactly: they are stored as PNG). Marked ``lerobot``; skipped, saying why, without the lane."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bag2lerobot_helpers import bag_truth, check_sim_frames

from vla_ros.cli import main
from vla_ros.eval.simbag import INSTRUCTION, write_sim_bag

ROOT = Path(__file__).resolve().parents[2]
LANE = Path(os.environ.get("LEROBOT_VENV", ROOT / ".venv-lerobot")) / "bin" / "python"

pytestmark = [
    pytest.mark.lerobot,
    pytest.mark.skipif(
        not LANE.is_file(), reason=f"no LeRobot reference lane at {LANE.parent.parent}: run make lerobot-ref"
    ),
]


def test_lerobot_loads_the_converted_sim_bag_with_the_bags_values(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    probe = subprocess.run([str(LANE), "-c", "import datasets, av, pandas"], capture_output=True, env=env)
    if probe.returncode:
        pytest.skip(f"the LeRobot lane at {LANE.parent.parent} lacks lerobot[dataset]: run make lerobot-ref")
    bag = write_sim_bag(tmp_path / "bag", episodes=2, duration_s=1.0, cameras=("front",))
    yaml = tmp_path / "params.yaml"
    yaml.write_text('/**/policy_node:\n  ros__parameters:\n    cameras: ["front=/camera/front/image_raw"]\n')
    out = tmp_path / "dataset"
    assert main(["bag2lerobot", str(bag), "--params", str(yaml), "--out", str(out), "--fps", "10"]) == 0
    npz = tmp_path / "frames.npz"
    run = subprocess.run(
        [str(LANE), str(Path(__file__).with_name("lerobot_load_dataset.py")), str(out), str(npz)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = np.load(npz)
    meta = json.loads(str(loaded["meta"]))
    assert (meta["num_frames"], meta["num_episodes"], meta["fps"]) == (20, 2, 10)
    assert meta["camera_keys"] == ["observation.images.front"]
    assert set(meta["tasks"]) == {INSTRUCTION}
    frames = {k: loaded[k] for k in loaded.files if k != "meta"}
    truth = bag_truth(bag, {"front": "/camera/front/image_raw"})
    assert check_sim_frames(frames, truth, fps=10) == [10, 10]
    np.testing.assert_allclose(
        meta["stats_state_mean"], frames["observation.state"].astype(np.float64).mean(axis=0)
    )
