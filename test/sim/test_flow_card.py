"""The bundled flow-matching card for the switching-targets task: small, real, conditioned (RTC)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vla_ros.contract.card import PolicyCard
from vla_ros.contract.observation import Observation
from vla_ros.runtime import load_runtime
from vla_ros.sim.loop import HoldPolicy, RuntimePolicy, evaluation_episodes, run_episode
from vla_ros.sim.render import render
from vla_ros.sim.robot import SimArmConfig
from vla_ros.sim.study import study_config
from vla_ros.sim.task import SwitchingTargetsTask
from vla_ros.sim.train_flow import DEFAULT_OUT, RTC_MAX_DELAY

TASK = SwitchingTargetsTask()
ARM = SimArmConfig()


@pytest.fixture(scope="module")
def runtime():
    return load_runtime(DEFAULT_OUT, backend="onnxruntime", threads=1)


def test_the_card_is_small_and_matches_the_sim_and_the_task() -> None:
    files = [p for p in Path(DEFAULT_OUT).iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 10 * 1024 * 1024
    card = PolicyCard.load(DEFAULT_OUT)
    io = card.io
    assert card.family == "flow_matching" and card.layout == "split"
    assert list(io.camera_names) == ["front", "wrist"] and tuple(io.image_size) == (64, 64)
    assert list(card.state_joints) == list(ARM.joint_names) == list(card.action_joints)
    assert (io.horizon, io.dt, io.action_mode) == (20, 0.05, "delta")
    assert io.extra["rtc"] == {"mode": "conditioned", "max_delay": RTC_MAX_DELAY}
    training = card.provenance["training"]
    assert training["rtc_conditioning"] is True and training["closed_loop"]["policy_success_rate"] >= 0.9


def test_a_chunk_continues_the_committed_actions_it_is_given(runtime) -> None:
    (ep,) = evaluation_episodes(1, TASK, seed=3)
    q = np.asarray(ARM.initial)
    images = {c: render(q, 64, 64, camera=c, target=tuple(ep.target)) for c in ("front", "wrist")}
    committed = (q[None, :] + np.linspace(0.0, 0.12, 7)[:, None] * [1, -1, 1, 0.5, 0, -0.5]).astype(
        np.float32
    )
    obs = Observation(images=images, state=q.astype(np.float32), stamp_ns=1, committed_actions=committed)
    chunk = runtime.infer(obs, noise=np.random.default_rng(0).standard_normal((20, 6)).astype(np.float32))
    # delta actions: the first d are the committed ones (minus the state), up to float32 rounding
    np.testing.assert_allclose(chunk[:7] + q[None, :], committed, atol=1e-4)
    free = runtime.infer(
        Observation(images=images, state=q.astype(np.float32), stamp_ns=1),
        noise=np.random.default_rng(0).standard_normal((20, 6)).astype(np.float32),
    )
    assert np.abs(free[:7] + q[None, :] - committed).max() > 1e-2  # not by chance


def test_the_card_switches_targets_in_the_closed_loop_and_holding_still_does_not(runtime) -> None:
    policy = RuntimePolicy(runtime, seed=0)
    cfg = study_config("rtc", 0.2, TASK.deadline_s, record=False)
    episodes = evaluation_episodes(2, TASK, seed=77)
    reached = [
        len(run_episode(policy, ep, task=TASK, config=cfg).task_episode.reached_at_s) for ep in episodes
    ]
    assert sum(reached) >= 5  # of 6 targets (the recorded held-out figure is >= 90% success)
    hold = HoldPolicy(20, 6, 0.05)
    assert all(
        not run_episode(hold, TASK.episode(ep.targets), task=TASK, config=cfg).task_episode.reached_at_s
        for ep in episodes
    )
