"""The bundled demo policy: a real, small card that does the reach task in the pure closed loop.

The closed loop is the simulated arm + renderer + the card on ONNX Runtime + the executor's
ChunkController on simulated time (vla_ros.sim.loop); no ROS, no training (the committed card).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vla_ros.contract.card import PolicyCard
from vla_ros.runtime import load_runtime
from vla_ros.sim.cards import BUNDLED_CARD
from vla_ros.sim.loop import HoldPolicy, LoopConfig, RuntimePolicy, evaluate, evaluation_targets
from vla_ros.sim.robot import SimArmConfig
from vla_ros.sim.task import ReachTask
from vla_ros.util.params import SpecIndex, read_params_file

ARM = SimArmConfig()


@pytest.fixture(scope="module")
def runtime():
    return load_runtime(BUNDLED_CARD, backend="onnxruntime", threads=1)


def _demo_sections(repo_root: Path) -> dict[str, dict]:
    """The sections of config/demo.yaml as rcl reads them (nested maps: dotted names)."""
    return {
        str(k).rsplit("/", 1)[-1]: v for k, v in read_params_file(repo_root / "config" / "demo.yaml").items()
    }


def test_the_bundled_card_is_small_real_and_matches_the_sim(runtime) -> None:
    card = runtime.card
    size = sum(f.stat().st_size for f in BUNDLED_CARD.iterdir() if f.is_file())
    assert size < 5 * 2**20, f"bundled card is {size / 2**20:.1f} MiB; keep it a few MB"
    assert card.family == "act"
    assert card.state_joints == list(ARM.joint_names) == card.action_joints
    assert tuple(card.io.camera_names) == ("front", "wrist") and tuple(card.io.image_size) == (64, 64)
    assert card.io.action_mode == "delta" and card.postprocess["delta_to_absolute"] is False
    assert card.has("onnx") and card.has("safetensors")
    training = card.provenance["training"]  # how it was made, and its offline figure
    assert training["script"] == "vla_ros/sim/train_bundled.py"
    loop = training["closed_loop"]
    assert loop["policy_mean_final_distance"] < 0.25 * loop["hold_still_mean_final_distance"]
    assert (BUNDLED_CARD / "README.md").read_text().count(card.name) >= 1
    # trained weights, not an initialization: the provenance has no "random initialization"
    assert "weights" not in card.provenance


def test_demo_yaml_uses_the_bundled_card_and_the_sim_matches_it(repo_root: Path, runtime) -> None:
    from vla_ros.sim.cards import resolve_card

    sections = _demo_sections(repo_root)
    assert resolve_card(sections["policy_node"]["card"]) == BUNDLED_CARD
    sim, executor = sections["sim_node"], sections["executor_node"]
    card = runtime.card
    assert sim["joint_names"] == card.state_joints == executor["joint_names"]
    assert sim["cameras"] == list(card.io.camera_names)
    assert [sim["image_height"], sim["image_width"]] == list(card.io.image_size)
    assert executor["armed_on_start"] is True and sim["command_topic"] == "vla/joint_command"
    # the pure loop runs what the node graph runs
    loop = LoopConfig()
    assert loop.image_size == (sim["image_height"], sim["image_width"])
    assert loop.camera_period_s == pytest.approx(1.0 / sim["camera_rate_hz"])
    assert loop.control_period_s == pytest.approx(1.0 / executor["control_rate_hz"])
    assert [loop.max_jump] == executor["max_jump"]
    assert sim["initial_positions"] == list(ARM.initial)


def test_demo_yaml_sets_only_declared_parameters(repo_root: Path) -> None:
    from vla_ros.executor import params as executor_params
    from vla_ros.nodes import policy_node, sim_node

    declared = {
        "sim_node": sim_node.SPECS,
        "policy_node": policy_node.PARAMS,
        "executor_node": executor_params.SPECS,
    }
    sections = _demo_sections(repo_root)
    assert set(sections) == set(declared)
    for node, params in sections.items():
        unknown = sorted(k for k in params if k not in SpecIndex(declared[node]))
        assert not unknown, f"config/demo.yaml [{node}] sets undeclared parameters {unknown}"


def test_policy_beats_holding_still_in_the_pure_closed_loop(runtime) -> None:
    """6 held-out targets, 3 s episodes from the default pose: the card reaches, holding does not."""
    task = ReachTask()
    cfg = LoopConfig(duration_s=3.0)
    targets = evaluation_targets(6, seed=99, task=task)
    policy = RuntimePolicy(runtime)
    assert policy.action_mode == "delta"
    learned = evaluate(lambda _t: policy, targets, task=task, config=cfg)
    io = runtime.card.io
    hold = evaluate(lambda _t: HoldPolicy(io.horizon, io.action_dim, io.dt), targets, task=task, config=cfg)
    assert hold.mean_final_distance > 0.3 and hold.success_rate == 0.0
    assert learned.mean_final_distance < 0.2 * hold.mean_final_distance, (
        learned.mean_final_distance,
        hold.mean_final_distance,
    )
    assert learned.success_rate >= 5 / 6
    for ep in learned.episodes:  # every episode ends much closer than it started
        assert ep.final_distance < 0.3 * ep.initial_distance
        assert ep.chunks > 0 and ep.commands > 0


def test_the_target_is_seen_in_the_image_not_guessed(runtime) -> None:
    """Same state, two targets: the chunks point to different places (the policy uses its eyes)."""
    from vla_ros.runtime import Observation
    from vla_ros.sim.render import render

    q = np.asarray(ARM.initial)
    chunks = []
    targets = [np.array([-0.35, 0.55]), np.array([0.4, 0.5])]
    for target in targets:
        images = {c: render(q, 64, 64, camera=c, target=tuple(target)) for c in ("front", "wrist")}
        chunks.append(runtime.infer(Observation(images=images, state=q)))
    for chunk, target in zip(chunks, targets):  # each close to what the expert does for its target
        expert = ReachTask().expert_chunk(q, target, runtime.card.io.horizon, runtime.card.io.dt)
        assert np.linalg.norm(chunk - expert) < 0.25 * np.linalg.norm(expert)
    assert abs(chunks[0][-1, 0] - chunks[1][-1, 0]) > 0.2  # joint 1 turns toward the seen target


def test_runtime_policy_follows_the_cards_delta_to_absolute(runtime) -> None:
    """A card whose runtime adds the state publishes absolute chunks (the executor must not add it)."""
    card = PolicyCard.load(BUNDLED_CARD)
    card.postprocess = {"delta_to_absolute": True}
    converted = load_runtime(card, backend="onnxruntime", threads=1)
    assert RuntimePolicy(converted).action_mode == "absolute"
    assert RuntimePolicy(runtime).action_mode == "delta"
