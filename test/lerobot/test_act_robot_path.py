"""A LeRobot ACT checkpoint, exported to a card, drives the real policy_node -> executor_node graph
(with the simulated arm) and ``vla-ros eval`` replays a rosbag with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lerobot_fixtures import folder
from robot_path import assert_in_limits, bringup, write_bringup_params

from vla_ros.cli import main
from vla_ros.export import PolicyCard

SIM_JOINTS = [f"joint_{i}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def sim_card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """act_sim_arm exported with the arm's joint names written into its config.json features."""
    root = tmp_path_factory.mktemp("sim_arm")
    d = root / "pretrained_model"
    shutil.copytree(folder("act_sim_arm"), d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["input_features"]["observation.state"]["names"] = SIM_JOINTS
    cfg["output_features"]["action"]["names"] = SIM_JOINTS
    (d / "config.json").write_text(json.dumps(cfg))
    assert main(["export", str(d), "--out", str(root / "card"), "--fps", "20", "--quiet"]) == 0
    return root / "card"


@pytest.mark.ros
def test_lerobot_act_card_drives_policy_and_executor(ros, sim_card: Path, tmp_path: Path) -> None:
    from sensor_msgs.msg import JointState

    from vla_ros.msg import ActionChunk

    arm = write_bringup_params(tmp_path / "bringup.yaml", sim_card, image_width=64, image_height=48)
    chunks = ros.subscribe("/vla/action_chunk", ActionChunk)
    commands = ros.subscribe("/vla/joint_command", JointState)
    with bringup(tmp_path / "bringup.yaml", duration_s=60) as run:
        chunk = chunks.wait_for(1, timeout=40)[0]
        command = commands.wait_for(1, timeout=20)[0]
    out = run.output
    assert run.returncode == 0, out
    card = PolicyCard.load(sim_card)
    assert chunk.policy_id == card.policy_id
    assert (chunk.horizon, chunk.action_dim) == (10, 6)
    assert list(chunk.joint_names) == SIM_JOINTS
    assert list(command.name) == SIM_JOINTS
    assert_in_limits(commands.messages, arm)  # every command the executor published


def test_eval_replays_a_bag_with_the_lerobot_card(sim_card: Path, tmp_path: Path, capsys) -> None:
    from vla_ros.eval.simbag import write_sim_bag

    bag = write_sim_bag(tmp_path / "bag", episodes=1, duration_s=1.5)
    out = tmp_path / "metrics.json"
    assert main(["eval", str(bag), "--card", str(sim_card), "--json", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["chunks"]["accepted"] > 5
    assert len(metrics["chunks"]["mae_by_step"]) == 10  # the card's horizon (chunk_size)
