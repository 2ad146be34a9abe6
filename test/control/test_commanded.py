"""What the executor commands vs what its chunk mode targets (real-time chunking's committed
actions), with the right values (integer ns).

Scenario: one joint, velocity limit 1 rad/s, control period 10 ms (a step of at most 0.01 rad
per tick), acceleration unlimited. Chunk A (stamp 0, dt 100 ms) asks for 0.05 rad per 100 ms
action from rest at 0 after a jump to 0.2 rad: the velocity limit binds, the commands lag the
targets by up to 0.2 rad. RTC must continue the commands, not the targets.
"""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.control.chunk import make_chunk
from vla_ros.control.commanded import CommandHistory
from vla_ros.control.controller import ChunkController, ControllerConfig
from vla_ros.control.rtc import takeover
from vla_ros.control.safety import JointLimits

MS = 1_000_000
PERIOD = 10 * MS
DT = 100 * MS
A = np.concatenate([[0.0], 0.2 + 0.05 * np.arange(1, 20)])


def _ctl() -> ChunkController:
    cfg = ControllerConfig(joint_names=("a",), period_ns=PERIOD, mode="rtc", state_timeout_ns=0)
    limits = JointLimits.build(["a"], lower=[-10.0], upper=[10.0], max_velocity=[1.0], max_jump=[5.0])
    ctl = ChunkController(cfg, limits, armed=True)
    ctl.update_state(0, ["a"], [0.0])
    ctl.add_chunk(stamp_ns=0, dt_ns=DT, joint_names=["a"], actions=A)
    return ctl


def test_committed_is_what_the_robot_will_be_commanded_not_the_plan():
    ctl = _ctl()
    for k in range(11):  # ticks 0..100 ms: the command ramps at the limit, 0.01 rad per tick
        ctl.update_state(k * PERIOD, ["a"], [0.0])
        ctl.tick(k * PERIOD)
    assert ctl.committed(100 * MS) == pytest.approx([0.10])  # sent at 100 ms
    assert ctl.plan(100 * MS) == pytest.approx([0.25])  # the target there: 0.15 rad ahead
    ahead = [float(ctl.committed(t * MS)[0]) for t in (110, 150, 200)]
    assert ahead == pytest.approx([0.11, 0.15, 0.20])  # still at the velocity limit
    got = []
    for t in range(110, 210, 10):
        ctl.update_state(t * MS, ["a"], [0.0])
        got.append(float(ctl.tick(t * MS).positions[0]))
    assert [got[0], got[4], got[9]] == pytest.approx(ahead)  # the commands, bit for bit


def test_committed_past_is_the_sent_command_interpolated():
    ctl = _ctl()
    for k in range(6):
        ctl.update_state(k * PERIOD, ["a"], [0.0])
        ctl.tick(k * PERIOD)
    assert ctl.committed(25 * MS) == pytest.approx([0.025])  # between 0.02 and 0.03 sent
    assert ctl.committed(60 * MS) == pytest.approx([0.06])  # next tick, through the filter


def test_rtc_takeover_against_commands_has_no_mismatch():
    """A chunk continuing the *commands* (not the plan) takes over without a cross-fade."""
    ctl = _ctl()
    for k in range(11):
        ctl.update_state(k * PERIOD, ["a"], [0.0])
        ctl.tick(k * PERIOD)
    prefix = [float(ctl.committed(t * MS)[0]) for t in (100, 200)]  # d = 2 from a 100 ms stamp
    b = np.concatenate([prefix, 0.2 + 0.01 * np.arange(1, 19)])
    _, faults = ctl.add_chunk(stamp_ns=100 * MS, dt_ns=DT, joint_names=["a"], actions=b)
    assert faults == [] and ctl.rtc_mismatches == 0


def test_takeover_accepts_a_ceil_delay_prefix_ending_before_the_next_tick():
    """d = ceil(latency / dt) (vla_ros.control.delay.steps_for) commits the actions due strictly
    before the arrival; when the next tick is the next action point, that action is the chunk's
    first free one: the chunk continues the plan and takes over at the tick (no mismatch)."""
    plan = {0: np.array([0.0]), DT: np.array([0.1]), 2 * DT: np.array([0.2]), 3 * DT: np.array([0.3])}
    chunk = make_chunk(
        stamp_ns=0, dt_ns=DT, joint_names=["a"], actions=np.array([[0.0], [0.1], [0.9], [1.0]])
    )
    take = takeover(chunk, lambda t: plan.get(t), next_tick_ns=2 * DT, tolerance=0.01)
    assert (take.blend, take.prefix, take.t_ns) == (False, 2, 2 * DT)
    assert take.start == pytest.approx([0.2])
    bad = make_chunk(stamp_ns=0, dt_ns=DT, joint_names=["a"], actions=np.array([[0.0], [0.5], [0.9], [1.0]]))
    assert takeover(bad, lambda t: plan.get(t), next_tick_ns=2 * DT, tolerance=0.01).blend


def test_command_history_values():
    h = CommandHistory(3)
    h.record(0, np.array([0.0]))
    h.record(10, np.array([1.0]))
    assert h.at(5) == pytest.approx([0.5]) and h.at(-1) is None and h.at(11) is None
    h.record(20, np.array([np.nan]))  # a hold: no chunk commanded
    assert h.at(15) is None and h.at(10) == pytest.approx([1.0])
    h.record(30, np.array([3.0]))  # capacity 3: tick 0 is gone
    assert h.at(5) is None
    h.record(5, np.array([9.0]))  # clock went back: history restarts
    assert h.last_ns == 5 and h.at(10) is None
    with pytest.raises(ValueError, match="capacity"):
        CommandHistory(0)


def test_a_committed_run_equals_committed_per_point_when_the_limit_binds() -> None:
    # ExecutorCore.committed asks ~100 grid points per call: the run steps one filter copy once
    # (O(n)), and must give exactly what committed(t) gives point by point (O(n^2))
    import numpy as np

    from vla_ros.control.controller import ChunkController, ControllerConfig
    from vla_ros.control.safety import JointLimits

    names = ("a", "b")
    limits = JointLimits.build(names, lower=[-3.0, -3.0], upper=[3.0, 3.0], max_velocity=[0.5, 0.5])
    period = 10_000_000
    ctl = ChunkController(
        ControllerConfig(joint_names=names, period_ns=period, mode="rtc"), limits, armed=True
    )
    ctl.update_state(0, names, [0.0, 0.0])
    # a chunk far ahead of the robot: the velocity limit binds for the whole horizon
    ramp = np.linspace(0.0, 2.0, 30)[:, None] * np.array([1.0, -0.5])
    ctl.add_chunk(stamp_ns=0, dt_ns=50_000_000, joint_names=names, actions=ramp)
    for k in range(1, 6):
        ctl.tick(k * period)
    last = 5 * period
    run = ctl.committed_run()
    times = [last - 3 * period, last, *(last + k * period for k in range(1, 80))]
    got = [run(t) for t in times]
    want = [ctl.committed(t) for t in times]
    for g, w in zip(got, want):
        assert (g is None) == (w is None)
        if g is not None:
            np.testing.assert_array_equal(g, w)
    ahead = np.array([g for g in got[2:] if g is not None])
    assert len(ahead) == 79
    assert np.abs(np.diff(ahead, axis=0)).max() <= 0.5 * period * 1e-9 + 1e-12  # the limit binds
    assert np.abs(ahead[-1] - ctl.plan(times[-1])).max() > 0.1  # commands lag the plan
