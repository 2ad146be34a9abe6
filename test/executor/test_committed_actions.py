"""ExecutorCore.committed: what ~/committed_actions carries, with the right values (integer ns)."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.executor import params as ep
from vla_ros.executor.core import ExecutorCore
from vla_ros.executor.health import executor_health

MS = 1_000_000


def _core(**params) -> ExecutorCore:
    values = {s.name: s.default for s in ep.SPECS}
    values.update({"joint_names": ["a", "b"], "control_rate_hz": 100.0, "allow_unlimited": True}, **params)
    core = ExecutorCore(values)
    core.adopt(("a", "b"))
    return core


def test_committed_is_the_plan_on_the_control_grid_from_history_to_the_chunk_end():
    """Chunk at 0: a = 0.1 x t[s], b = -a, 20 actions x 50 ms (last at 950 ms). Ticking at 500 ms
    with history 0.1 s and horizon 1 s: points 400 .. 950 ms every 10 ms (the chunk's end)."""
    core = _core(committed_history_s=0.1, committed_horizon_s=1.0)
    t = np.arange(20) * 0.05
    core.add_chunk(
        stamp_ns=0, dt_ns=50 * MS, joint_names=["b", "a"], actions=np.stack([-0.1 * t, 0.1 * t], 1)
    )
    core.update_state(500 * MS, ["a", "b"], [0.05, -0.05])
    core.tick(500 * MS)
    c = core.committed(500 * MS)
    assert (c.start_ns, c.dt_ns, c.joint_names) == (400 * MS, 10 * MS, ("a", "b"))
    assert c.actions.shape == (56, 2) and c.end_ns == 950 * MS
    times = (400 + 10 * np.arange(56)) * 1e-3
    np.testing.assert_allclose(c.actions[:, 0], 0.1 * times, rtol=0, atol=1e-15)
    np.testing.assert_allclose(c.actions[:, 1], -0.1 * times, rtol=0, atol=1e-15)
    short = _core(committed_history_s=0.0, committed_horizon_s=0.2)
    short.add_chunk(
        stamp_ns=0, dt_ns=50 * MS, joint_names=["b", "a"], actions=np.stack([-0.1 * t, 0.1 * t], 1)
    )
    c = short.committed(500 * MS)
    assert (c.start_ns, c.end_ns, c.actions.shape[0]) == (500 * MS, 700 * MS, 21)


def test_committed_in_rtc_includes_a_pending_takeover():
    """rtc: chunk B (stamp 100 ms, continues A for 3 actions up to 300 ms, then 0.5) arrives at
    250 ms; the committed plan is A's until 300 ms, B's after."""
    core = _core(mode="rtc", committed_history_s=0.0, committed_horizon_s=0.5)
    a = 0.01 * np.arange(20)
    core.add_chunk(stamp_ns=0, dt_ns=100 * MS, joint_names=["a", "b"], actions=np.stack([a, a], 1))
    core.update_state(250 * MS, ["a", "b"], [0.025, 0.025])
    core.tick(250 * MS)
    b = np.array([0.01, 0.02, 0.03] + [0.5] * 10)
    core.add_chunk(stamp_ns=100 * MS, dt_ns=100 * MS, joint_names=["a", "b"], actions=np.stack([b, b], 1))
    c = core.committed(250 * MS)
    assert c.start_ns == 250 * MS
    by_ms = {250 + 10 * i: v for i, v in enumerate(c.actions[:, 0])}
    assert by_ms[300] == pytest.approx(0.03, abs=1e-15)
    assert by_ms[290] == pytest.approx(0.029, abs=1e-15)  # A (B's prefix continues it)
    # the hand-over to 0.5 at 400 ms: cubic Hermite from (0.03, A's 0.1 rad/s) to (0.5, 0 rad/s),
    # at u = 1/2: (0.03 + 0.5) / 2 + 0.1 s x 0.1 rad/s / 8
    assert by_ms[350] == pytest.approx((0.03 + 0.5) / 2 + 0.1 * 0.1 / 8, abs=1e-15)
    assert by_ms[400] == pytest.approx(0.5, abs=1e-15)


def test_committed_none_without_a_plan_and_counters_on_diagnostics():
    core = _core()
    assert core.committed(0) is None
    core.tick(1000 * MS)
    with pytest.raises(Exception, match="all its actions in the past"):
        core.add_chunk(stamp_ns=0, dt_ns=100 * MS, joint_names=["a", "b"], actions=np.zeros((5, 2)))
    values = executor_health(core, None, dry_run=False, published=0, faults={}).values
    assert values["expired_chunks"] == "1" and values["rtc_prefix_mismatches"] == "0"
