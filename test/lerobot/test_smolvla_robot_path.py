"""A reduced LeRobot SmolVLA card drives the real policy_node -> executor_node graph (with the
simulated arm) from an instruction published on ``vla/instruction``, and ``vla-ros eval``
replays a rosbag (with its instruction topic) through it.

The checkpoint is LeRobot's ``smolvla_2cam`` golden made sim-arm shaped: its cameras renamed to
the arm's (``top`` -> ``front``; names only, the weights do not depend on them), the arm's joint
names written into the features, and a token limit of 8 so that the instructions used here are
cut; the once-per-instruction note that says so is how the tests see that the instruction
reached the tokenizer on the robot path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from flow_helpers import NOTE, SIM_JOINTS, assert_card_drives_robot, sim_arm_copy
from lerobot_fixtures import FIXTURES

from vla_ros.cli import main
from vla_ros.export import PolicyCard
from vla_ros.runtime import Observation, load_runtime

MAX_TOKENS = 8


def sim_arm_folder(dest: Path) -> Path:
    """smolvla_2cam as a sim-arm checkpoint folder at ``dest`` (see the module docstring)."""
    cfg = sim_arm_copy("smolvla_2cam", dest, MAX_TOKENS, vlm_model_name=str(FIXTURES / "smolvla_vlm_tiny"))
    pre = json.loads((dest / "policy_preprocessor.json").read_text())
    for step in pre["steps"]:
        if step["registry_name"] == "tokenizer_processor":
            step["config"].update(max_length=MAX_TOKENS, tokenizer_name=cfg["vlm_model_name"])
    (dest / "policy_preprocessor.json").write_text(json.dumps(pre))
    return dest


@pytest.fixture(scope="module")
def sim_card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("smolvla_sim_arm")
    d = sim_arm_folder(root / "pretrained_model")
    assert main(["export", str(d), "--out", str(root / "card"), "--fps", "20", "--quiet"]) == 0
    return root / "card"


def test_sim_arm_card_is_the_arms_and_reads_instructions(sim_card: Path) -> None:
    card = PolicyCard.load(sim_card)
    assert card.io.camera_names == ("front", "wrist") and card.io.image_size == (48, 64)
    assert card.state_joints == SIM_JOINTS and card.action_joints == SIM_JOINTS
    assert card.io.text_max_len == MAX_TOKENS and card.io.dt == pytest.approx(0.05)
    rt = load_runtime(sim_card, backend="onnxruntime")
    rng = np.random.default_rng(0)
    images = {c: rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for c in card.io.camera_names}
    noise = rng.standard_normal(card.io.noise_shape).astype(np.float32)
    state = np.zeros(6, np.float32)
    a = rt.infer(Observation(images=images, state=state, instruction="pick up the cube"), noise=noise)
    b = rt.infer(Observation(images=images, state=state, instruction="fold the towel"), noise=noise)
    assert a.shape == (10, 6) and np.abs(a - b).max() > 1e-2  # the instruction is an input


@pytest.mark.ros
@pytest.mark.slow
def test_smolvla_card_drives_policy_and_executor(ros, sim_card: Path, tmp_path: Path) -> None:
    assert_card_drives_robot(ros, sim_card, tmp_path, image_size=(64, 48), horizon=10)


@pytest.mark.slow
def test_eval_replays_a_bag_with_the_smolvla_card(
    sim_card: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from vla_ros.eval.simbag import INSTRUCTION as BAG_INSTRUCTION
    from vla_ros.eval.simbag import write_sim_bag

    bag = write_sim_bag(tmp_path / "bag", episodes=1, duration_s=2.5)
    out = tmp_path / "metrics.json"
    with caplog.at_level(logging.WARNING):
        assert main(["eval", str(bag), "--card", str(sim_card), "--json", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["chunks"]["accepted"] > 5
    assert len(metrics["chunks"]["mae_by_step"]) == 10  # the card's horizon (chunk_size)
    # the bag's instruction topic reached the tokenizer (cut to 8 tokens, said once)
    notes = [r.getMessage() for r in caplog.records if NOTE in r.getMessage()]
    assert len(notes) == 1 and BAG_INSTRUCTION in notes[0]
