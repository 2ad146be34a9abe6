"""The reach task: goal poses, the scripted expert and the pure closed loop (no ROS)."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.sim.loop import (
    ExpertPolicy,
    HoldPolicy,
    LoopConfig,
    evaluation_targets,
    run_episode,
)
from vla_ros.sim.render import DEFAULT_TARGET, render
from vla_ros.sim.robot import SimArmConfig
from vla_ros.sim.task import KAPPA_MAX, ReachTask, fingertip, goal_pose

TASK = ReachTask()
ARM = SimArmConfig()


def test_reach_shrinks_monotonically_with_the_curl_up_to_kappa_max() -> None:
    kappas = np.linspace(0.0, KAPPA_MAX, 50)
    reach = [np.linalg.norm(fingertip(np.r_[0.0, [k] * 5])) for k in kappas]
    assert np.all(np.diff(reach) < 0)
    beyond = np.linalg.norm(fingertip(np.r_[0.0, [KAPPA_MAX + 0.15] * 5]))
    assert beyond > reach[-1]  # past KAPPA_MAX the curl would be ambiguous


def test_goal_pose_puts_the_fingertip_on_every_target_within_the_joint_limits() -> None:
    rng = np.random.default_rng(0)
    targets = [TASK.sample_target(rng) for _ in range(50)] + [np.array(DEFAULT_TARGET)]
    for target in targets:
        q = goal_pose(target)
        np.testing.assert_allclose(fingertip(q), target, atol=1e-9)
        assert np.all(q >= np.array(ARM.lower)) and np.all(q <= np.array(ARM.upper)), q
        assert np.all(q[1:] == q[1])  # the posture family: one curl for joints 2..6


@pytest.mark.parametrize("target", [(0.0, 0.1), (0.9, 0.9)])
def test_unreachable_target_is_refused_with_the_reach(target) -> None:
    with pytest.raises(ValueError, match=r"the expert reaches \[0\.16\d, 1\.0\]"):
        goal_pose(target)


def test_expert_chunk_starts_at_the_state_approaches_the_goal_and_respects_max_speed() -> None:
    q = np.asarray(ARM.initial)
    target = np.array(DEFAULT_TARGET)
    chunk = TASK.expert_chunk(q, target, horizon=60, dt=0.05)
    assert chunk.shape == (60, 6) and chunk.dtype == np.float32
    np.testing.assert_array_equal(chunk[0], 0.0)
    err = goal_pose(target) - q
    # monotone approach, never overshooting
    progress = chunk / err
    assert np.all(np.diff(progress, axis=0) > 0) and np.all(progress < 1.0)
    assert progress[-1].min() > 0.9
    np.testing.assert_allclose(progress[1:], progress[1:, :1] * np.ones(6), rtol=1e-4)  # a straight line
    first_speed = np.abs(chunk[1]) / 0.05
    assert first_speed.max() <= TASK.max_speed + 1e-6
    at_goal = TASK.expert_chunk(goal_pose(target), target, horizon=10, dt=0.05)
    np.testing.assert_allclose(at_goal, 0.0, atol=1e-6)


def test_the_target_marker_is_drawn_where_the_task_puts_it() -> None:
    q = np.asarray(ARM.initial)
    target = (-0.3, 0.6)
    img = render(q, 64, 64, camera="front", target=target)
    scale = 0.8 * 64
    tx, ty = round(32 + target[0] * scale), round(32 - (target[1] - 0.5) * scale)
    assert (img[ty, tx] == 255).all()
    assert not (render(q, 64, 64, camera="front", target=None)[ty, tx] == 255).all()


def test_expert_reaches_and_holding_still_does_not_in_the_closed_loop() -> None:
    cfg = LoopConfig(duration_s=2.5)
    for target in evaluation_targets(3, seed=5):
        expert = run_episode(ExpertPolicy(TASK, target, 10, 0.05), target, config=cfg)
        assert expert.chunks == 75 and expert.commands == 251  # 30 Hz chunks (10 ms late), 100 Hz ticks
        assert expert.final_distance < 0.01 and expert.reached_at_s is not None
        hold = run_episode(HoldPolicy(10, 6, 0.05), target, config=cfg)
        assert hold.final_distance == pytest.approx(hold.initial_distance, abs=1e-9)
        assert hold.final_distance > 0.15
