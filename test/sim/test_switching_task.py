"""The switching-targets task, its episodes, and the closed loop's schedules (pure, no ROS)."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.sim.loop import (
    NS,
    T0_NS,
    ExpertPolicy,
    HoldPolicy,
    LoopConfig,
    evaluation_episodes,
    run_episode,
)
from vla_ros.sim.render import render
from vla_ros.sim.robot import SimArmConfig
from vla_ros.sim.task import (
    TASKS,
    ReachTask,
    SwitchingTargetsTask,
    TaskEpisode,
    goal_pose,
    make_task,
)

TASK = SwitchingTargetsTask()


def test_the_registry_names_both_tasks_and_refuses_an_unknown_one() -> None:
    assert {"reach": ReachTask, "switching_targets": SwitchingTargetsTask} == TASKS
    assert make_task("switching_targets", n_targets=2).n_targets == 2
    with pytest.raises(
        ValueError, match=r"unknown sim task 'push'; choose one of \['reach', 'switching_targets'\]"
    ):
        make_task("push")


def test_targets_are_seeded_separated_reachable_and_in_the_region() -> None:
    a = TASK.sample_targets(np.random.default_rng(3))
    b = TASK.sample_targets(np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    for seed in range(30):
        pts = TASK.sample_targets(np.random.default_rng(seed))
        assert pts.shape == (3, 2)
        assert np.all(np.linalg.norm(np.diff(pts, axis=0), axis=1) >= TASK.min_separation)
        r = np.linalg.norm(pts, axis=1)
        assert np.all((r >= TASK.radius[0]) & (r <= TASK.radius[1]))
        for p in pts:
            goal_pose(p)  # raises outside the expert's reach


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n_targets": 0}, "n_targets must be >= 1, got 0"),
        ({"deadline_s": 0.0}, "deadline_s must be > 0, got 0.0"),
        ({"min_separation": 1.7}, r"min_separation 1.7 cannot be met"),
    ],
)
def test_impossible_settings_are_refused_naming_the_setting(settings, message) -> None:
    with pytest.raises(ValueError, match=message):
        SwitchingTargetsTask(**settings)


def test_an_episode_switches_on_each_reach_and_succeeds_only_within_the_deadline() -> None:
    targets = np.array([[0.0, 0.6], [0.4, 0.5], [-0.4, 0.5]])
    ep = TaskEpisode(targets, success_radius=0.05, deadline_s=2.0)
    far, on = goal_pose(targets[1]), goal_pose(targets[0])
    assert not ep.update(far, 0.5) and ep.index == 0 and ep.reached_at_s == []
    assert ep.update(on, 0.7)  # reached target 0: target 1 shown now
    np.testing.assert_array_equal(ep.target, targets[1])
    assert ep.update(goal_pose(targets[1]), 1.2)
    assert not ep.update(goal_pose(targets[2]), 1.9)  # the last one: nothing left to show
    assert ep.done and ep.success and ep.time_to_success_s == 1.9 and ep.reached_at_s == [0.7, 1.2, 1.9]
    np.testing.assert_array_equal(ep.target, targets[2])  # the last target stays shown
    late = TaskEpisode(targets[:1], success_radius=0.05, deadline_s=2.0)
    late.update(on, 2.5)
    assert late.done and not late.success and late.time_to_success_s is None
    with pytest.raises(ValueError, match=r"targets must be \[K >= 1, 2\] points, got shape \(3,\)"):
        TaskEpisode(np.zeros(3), 0.05, None)


def test_the_expert_reaches_every_target_in_turn_and_the_cameras_show_the_current_one() -> None:
    (ep,) = evaluation_episodes(1, TASK, seed=2)
    seen: list[tuple[float, np.ndarray, np.ndarray]] = []

    def on_obs(obs, _chunk) -> None:
        seen.append(((obs.stamp_ns - T0_NS) / NS, obs.state.copy(), obs.images["front"]))

    cfg = LoopConfig(duration_s=TASK.deadline_s, schedule="one_in_flight", execution_horizon=3, mode="latest")
    out = run_episode(
        ExpertPolicy(TASK, ep, 20, 0.05),
        ep,
        task=TASK,
        config=replace(cfg, stop_on_success=True),
        on_observation=on_obs,
    )
    assert out.success and len(ep.reached_at_s) == 3 and np.all(np.diff(ep.reached_at_s) > 0)
    assert out.time_to_success_s == ep.reached_at_s[-1] <= TASK.deadline_s
    assert out.reached_at_s == ep.reached_at_s[0]
    # stops at success: the last tick is the one that reached the last target
    assert out.ticks == round(ep.reached_at_s[-1] / cfg.control_period_s)
    # every frame draws the target shown at its time (the first until it is reached, then the next)
    for t, state, img in seen:
        k = int(np.searchsorted(ep.reached_at_s, t, side="right"))
        np.testing.assert_array_equal(img, render(state, 64, 64, camera="front", target=tuple(ep.targets[k])))
    assert {int(np.searchsorted(ep.reached_at_s, t, side="right")) for t, _, _ in seen} == {0, 1, 2}
    hold = run_episode(HoldPolicy(20, 6, 0.05), TASK.episode(ep.targets), task=TASK, config=cfg)
    assert not hold.success and hold.task_episode.reached_at_s == []


def replace(cfg: LoopConfig, **changes) -> LoopConfig:
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def _stamps(cfg: LoopConfig) -> list[float]:
    stamps: list[float] = []
    ep = TASK.episode(np.array([[0.0, 0.6]]))
    run_episode(
        ExpertPolicy(TASK, ep, 20, 0.05),
        ep,
        task=TASK,
        config=cfg,
        on_observation=lambda obs, _c: stamps.append(round((obs.stamp_ns - T0_NS) / NS, 6)),
    )
    return stamps


def test_sync_waits_for_each_chunk_and_runs_its_execution_horizon_while_async_overlaps() -> None:
    # 20 Hz actions, 300 ms latency, 10 actions executed: observe, wait 0.3 s, run 0.5 s, observe
    sync = LoopConfig(
        duration_s=2.5, latency_s=0.3, schedule="sync", execution_horizon=10, mode="latest", record=True
    )
    assert _stamps(sync) == [0.0, 0.8, 1.6, 2.4]
    # one in flight, at least 3 actions apart: the next observation when the chunk is in
    assert _stamps(replace(sync, schedule="one_in_flight", execution_horizon=3))[:4] == [0.0, 0.3, 0.6, 0.9]
    # zero latency: 3 actions (0.15 s) apart, at the next camera frame (30 Hz): 0.1667 -> tick 0.17
    zero = replace(sync, schedule="one_in_flight", latency_s=0.0, execution_horizon=3)
    assert _stamps(zero)[:3] == [0.0, 0.17, 0.34]
    # every frame (the default): 30 Hz whatever the latency
    assert len(_stamps(replace(sync, schedule="every_frame"))) == 76
    # synchronous: the robot holds (the command does not change) while the policy infers
    ep = TASK.episode(np.array([[0.0, 0.6]]))
    out = run_episode(ExpertPolicy(TASK, ep, 20, 0.05), ep, task=TASK, config=sync)
    cmds = np.stack(out.commands_log)
    assert out.boundaries == [30, 110, 190]  # chunks join 0.3 s after 0.0, 0.8, 1.6 s
    np.testing.assert_array_equal(cmds[1:30], np.repeat(cmds[:1], 29, axis=0))  # nothing before the first
    held = cmds[81:110]  # the chunk of 0.3 s ended at 0.8 s: held until the next joins at 1.1 s
    np.testing.assert_array_equal(held, np.repeat(held[:1], len(held), axis=0))
    assert np.abs(cmds[40] - cmds[31]).max() > 0.05  # and it moves while a chunk runs


def test_bad_loop_settings_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"schedule 'fast' unknown; use one of \('every_frame', 'one_in_flight', 'sync'\)"
    ):
        LoopConfig(schedule="fast")
    with pytest.raises(ValueError, match="latency_s"):
        LoopConfig(latency_s=-0.1)


class _GlobalRamp:
    """Absolute chunks that all lie on one trajectory: ``base + 0.2 rad/s * t`` (agreeing chunks)."""

    action_mode = "absolute"
    dt = 0.05

    def __init__(self, base: np.ndarray) -> None:
        self.base = base
        self.seen: list[tuple[float, np.ndarray | None]] = []

    def __call__(self, obs) -> np.ndarray:
        t = (obs.stamp_ns - T0_NS) / NS
        self.seen.append((t, obs.committed_actions))
        k = np.arange(20)[:, None]
        return (self.base[None, :] + 0.2 * (t + k * self.dt)).astype(np.float32)


def test_rtc_observations_carry_the_executors_committed_actions_up_to_the_chunks_arrival() -> None:
    base = np.asarray(SimArmConfig().initial)
    policy = _GlobalRamp(base)
    ep = TASK.episode(np.array([[0.0, 0.6]]))
    cfg = LoopConfig(duration_s=1.0, latency_s=0.3, mode="rtc", schedule="one_in_flight", execution_horizon=3)
    run_episode(policy, ep, task=TASK, config=cfg)
    assert [t for t, _ in policy.seen] == pytest.approx([0.0, 0.3, 0.6, 0.9])
    assert policy.seen[0][1] is None  # nothing committed before the first chunk
    for t, committed in policy.seen[1:]:
        # d = steps_for(0.3 s, 0.05 s) = ceil(6.0) = 6 actions (the executor's and the policy
        # node's count): those due at t .. t + 0.25, before the arrival, on the ramp
        expected = base[None, :] + 0.2 * (t + np.arange(6)[:, None] * 0.05)
        if t == pytest.approx(0.3):  # the first chunk starts 0.06 rad ahead of the arm at rest:
            # what is committed is the command, limited to one 10 ms step at max_velocity
            vmax = np.asarray(SimArmConfig().max_velocity)
            expected[0] = base + np.minimum(0.06, vmax * 0.01)
        np.testing.assert_allclose(committed, expected, atol=1e-6)
    other = _GlobalRamp(base)
    run_episode(other, ep, task=TASK, config=replace(cfg, mode="latest"))
    assert all(c is None for _, c in other.seen)  # only rtc sends them


def test_the_continuation_starts_with_the_committed_actions_then_approaches_the_goal() -> None:
    q = np.asarray(SimArmConfig().initial)
    goal = goal_pose(np.array([0.3, 0.6]))
    committed = q[None, :] + np.array([[0.0], [0.02], [0.05]]) * np.ones(6)
    chunk = TASK.continuation(q, committed, goal, 20, 0.05)
    assert chunk.shape == (20, 6) and chunk.dtype == np.float32
    np.testing.assert_allclose(chunk[:3], committed - q, atol=1e-7)
    # no kink where the committed actions end: the first free step repeats the last committed one
    np.testing.assert_allclose(chunk[3] - chunk[2], committed[2] - committed[1], atol=1e-6)
    # then the expert's approach from the last committed action takes over
    path = TASK.approach(committed[-1], goal, 18, 0.05)
    assert np.abs(chunk[-1] + q - committed[-1] - path[-1]).max() < 0.01 * np.abs(path[-1]).max()
    np.testing.assert_allclose(
        TASK.continuation(q, np.zeros((0, 6)), goal, 20, 0.05), TASK.approach(q, goal, 20, 0.05)
    )
    np.testing.assert_array_equal(
        TASK.approach(q, goal, 20, 0.05), TASK.expert_chunk(q, np.array([0.3, 0.6]), 20, 0.05)
    )
    with pytest.raises(ValueError, match="20 committed actions leave nothing of a 20-action chunk"):
        TASK.continuation(q, np.zeros((20, 6)), goal, 20, 0.05)


def test_delta_chunks_that_continue_the_committed_actions_are_taken_over_without_a_cross_fade() -> None:
    """A delta chunk's base is the state at its stamp, also when it arrives late (300 ms): a chunk
    whose first d actions are the committed ones matches them exactly (0 rtc mismatches); the
    expert, which ignores them, is cross-faded in instead."""
    (ep,) = evaluation_episodes(1, TASK, seed=4)

    class Continuing(ExpertPolicy):
        def __call__(self, obs) -> np.ndarray:
            goal = goal_pose(self.target.target)
            committed = obs.committed_actions if obs.committed_actions is not None else np.zeros((0, 6))
            return TASK.continuation(obs.state, committed, goal, 20, 0.05)

    cfg = LoopConfig(duration_s=3.0, latency_s=0.3, mode="rtc", schedule="one_in_flight", execution_horizon=3)
    out = run_episode(Continuing(TASK, ep, 20, 0.05), ep, task=TASK, config=cfg)
    assert out.chunks >= 9 and out.rtc_mismatches == 0
    (ep2,) = evaluation_episodes(1, TASK, seed=4)
    plain = run_episode(ExpertPolicy(TASK, ep2, 20, 0.05), ep2, task=TASK, config=cfg)
    assert plain.rtc_mismatches >= plain.chunks - 2
