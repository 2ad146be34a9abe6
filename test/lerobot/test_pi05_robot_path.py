"""A reduced LeRobot pi0.5 card drives the real policy_node -> executor_node graph (with the
simulated arm) from an instruction published on ``vla/instruction``; the prompt, which carries
the discretized normalized state, is tokenized by the policy node per observation.

The checkpoint is LeRobot's ``pi05_2cam`` golden made sim-arm shaped: ``top`` -> ``front``
(names only), the arm's joint names in the features, 6 actions instead of 4 (pi0.5 samples
``max_action_dim`` = 32 and cuts, so the weights do not change; the two new action dimensions
get the statistics of the first two), and a token limit of 10 so that the prompt of the
instruction used here is cut: the once-per-task note that says so is how the test sees that
the instruction reached the tokenizer on the robot path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from flow_helpers import SIM_JOINTS, assert_card_drives_robot, sim_arm_copy
from lerobot_fixtures import FIXTURES
from safetensors.torch import load_file, save_file

from vla_ros.cli import main
from vla_ros.export import PolicyCard
from vla_ros.runtime import Observation, load_runtime

MAX_TOKENS = 10


def sim_arm_folder(dest: Path) -> Path:
    """pi05_2cam as a sim-arm checkpoint folder at ``dest`` (see the module docstring)."""
    sim_arm_copy("pi05_2cam", dest, MAX_TOKENS, action_dim=6)
    for name in ("policy_preprocessor.json", "policy_postprocessor.json"):
        f = dest / name
        data = json.loads(f.read_text())
        for step in data["steps"]:
            feats = (step.get("config") or {}).get("features") or {}
            if "action" in feats:
                feats["action"]["shape"] = [6]
            if step["registry_name"] == "tokenizer_processor":
                step["config"]["max_length"] = MAX_TOKENS
        f.write_text(json.dumps(data))
    for f in dest.glob("policy_*processor_step_*.safetensors"):
        stats = load_file(str(f))
        for k, v in stats.items():
            if k.startswith("action.") and v.numel() == 4:
                stats[k] = torch.cat([v, v[:2]])
        save_file(stats, str(f))
    return dest


@pytest.fixture(scope="module")
def sim_card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pi05_sim_arm")
    d = sim_arm_folder(root / "pretrained_model")
    tok = ["--tokenizer", str(FIXTURES / "google" / "paligemma-3b-pt-224")]
    assert main(["export", str(d), "--out", str(root / "card"), "--fps", "20", *tok, "--quiet"]) == 0
    return root / "card"


def test_sim_arm_card_reads_instruction_and_state(sim_card: Path) -> None:
    card = PolicyCard.load(sim_card)
    assert card.io.camera_names == ("front", "wrist") and card.io.image_size == (72, 40)
    assert card.state_joints == SIM_JOINTS and card.action_joints == SIM_JOINTS
    assert card.io.tokenizer == "pi05:tokenizer.json" and card.io.text_max_len == MAX_TOKENS
    rt = load_runtime(sim_card, backend="onnxruntime")
    rng = np.random.default_rng(0)
    images = {c: rng.integers(0, 256, (72, 40, 3), dtype=np.uint8) for c in card.io.camera_names}
    noise = rng.standard_normal(card.io.noise_shape).astype(np.float32)
    mid = np.asarray(card.normalization.state.mean, dtype=np.float32)
    a = rt.infer(Observation(images=images, state=mid, instruction="pick"), noise=noise)
    b = rt.infer(Observation(images=images, state=mid, instruction="fold"), noise=noise)
    # the same instruction and images, another state: only the prompt's state bins differ
    moved = mid + np.asarray(card.normalization.state.std, dtype=np.float32) * 0.5
    c = rt.infer(Observation(images=images, state=moved, instruction="pick"), noise=noise)
    assert a.shape == (8, 6) and np.abs(a - b).max() > 1e-2 and np.abs(a - c).max() > 1e-2


@pytest.mark.ros
@pytest.mark.slow
def test_pi05_card_drives_policy_and_executor(ros, sim_card: Path, tmp_path: Path) -> None:
    assert_card_drives_robot(ros, sim_card, tmp_path, image_size=(40, 72), horizon=8)
