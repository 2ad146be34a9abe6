"""The safety rule over the executor's whole tick (issue 12 items 1 and 8).

Every command the controller outputs while armed is inside the position limits in force, no
farther from the previous command than one control period at the velocity limit in force, and
(when it moves) no farther from the measured position than ``max_jump``; when these cannot all
hold, nothing moves. Proved by a hypothesis property over chunks, measured states (inside and
outside the limits, lagging, with outliers) and live limit changes, plus the reported cases.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_ros.control.chunk import ChunkError
from vla_ros.control.controller import ChunkController, ControllerConfig
from vla_ros.control.ensemble import MODES
from vla_ros.control.safety import JointLimits, LimitsError

EPS = 1e-9
MS = 1_000_000


def _controller(names, period_ns, limits, **cfg) -> ChunkController:
    return ChunkController(ControllerConfig(joint_names=tuple(names), period_ns=period_ns, **cfg), limits)


def _armed_at(position: float, limits: JointLimits, horizon: int = 20, **cfg) -> ChunkController:
    """Joint 'a' at 100 Hz, measured at ``position``, armed at t=0 on a chunk (dt 0.1 s, ``horizon``
    actions) that stays at ``position``."""
    ctl = _controller(["a"], 10 * MS, limits, **cfg)
    ctl.update_state(0, ["a"], [position])
    ctl.add_chunk(stamp_ns=0, dt_ns=100 * MS, joint_names=["a"], actions=[position] * horizon)
    assert ctl.arm(0)[0]
    return ctl


# ---------------------------------------------------------------------------- the reported cases
def test_arming_is_refused_with_a_joint_outside_its_limits():
    """SO-101 'new calibration' limits, the joint measured at -3.0 (the other calibration)."""
    lim = JointLimits.build(
        ["shoulder_pan"], lower=[-1.745], upper=[1.745], max_velocity=[10.0], max_jump=[0.2]
    )
    ctl = _controller(["shoulder_pan"], 20 * MS, lim)
    ctl.update_state(0, ["shoulder_pan"], [-3.0])
    ctl.add_chunk(stamp_ns=0, dt_ns=20 * MS, joint_names=["shoulder_pan"], actions=[-3.0] * 10)
    assert ctl.tick(0) is None  # not even a preview: a clipped start would be a 1.255 rad step
    ok, msg = ctl.arm(0)
    assert not ok and not ctl.armed
    assert "'shoulder_pan' at -3 outside [-1.745, 1.745]" in msg and msg.startswith("refusing to arm")
    for k in range(1, 20):
        assert ctl.tick(k * 20 * MS) is None
    assert ctl.last_faults[0].cause == "state_outside_limits:shoulder_pan"


def test_state_leaving_the_limits_while_armed_disarms_and_never_commands_outside():
    ctl = _armed_at(0.9, JointLimits.build(["a"], lower=[-1.0], upper=[1.0], max_velocity=[1.0]))
    assert ctl.tick(0).positions[0] == 0.9
    ctl.update_state(10 * MS, ["a"], [1.2])  # drifted out (or a recalibration)
    cmd = ctl.tick(10 * MS)
    assert not ctl.armed
    assert cmd.holding and cmd.positions[0] == 0.9  # the previous command, inside the limits
    assert cmd.faults[0].cause == "state_outside_limits:a"
    assert "'a' at 1.2 outside [-1, 1]; DISARMED" in cmd.faults[0].message
    ok, msg = ctl.arm(20 * MS)
    assert not ok and "'a' at 1.2" in msg


def test_filter_never_catches_up_to_a_lagging_state_with_an_outlier():
    """Limits +-1, v 0.5 rad/s, max_jump 0.5, 100 Hz; state lags two ticks; one outlier 0.9."""
    period = 10 * MS
    lim = JointLimits.build(["a"], lower=[-1.0], upper=[1.0], max_velocity=[0.5], max_jump=[0.5])
    ctl = _armed_at(0.0, lim, horizon=30)
    history = [0.0, 0.0]
    commands = []
    for k in range(200):
        t = k * period
        measured = history[-2]
        if k % 2 == 1:
            measured = 0.9  # an outlier every other sample
        ctl.update_state(t, ["a"], [measured])
        cmd = ctl.tick(t)
        commands.append(cmd.positions[0])
        history.append(cmd.positions[0])
    steps = np.abs(np.diff([0.0, *commands]))
    assert steps.max() <= 0.5 * 0.01 + EPS
    assert commands == [0.0] * 200  # the chunk says 0.0 and an outlier never moves the command


def test_narrowing_a_limit_under_the_command_is_refused_while_armed():
    ctl = _armed_at(0.95, JointLimits.build(["a"], lower=[-1.0], upper=[1.0], max_velocity=[0.5]))
    ctl.tick(0)
    narrow = JointLimits.build(["a"], lower=[-1.0], upper=[0.2], max_velocity=[0.5])
    with pytest.raises(LimitsError, match=r"current command of joint 'a' at 0.95 outside \[-1, 0.2\]"):
        ctl.set_limits(narrow)
    assert ctl.limits.upper[0] == 1.0 and ctl.armed
    assert ctl.tick(10 * MS).positions[0] == 0.95  # no 0.75 rad jump
    # a URDF cannot be refused: it disarms instead, and nothing outside is commanded
    msg = ctl.set_limits(narrow, on_conflict="disarm")
    assert msg is not None and "DISARMED" in msg and not ctl.armed
    assert ctl.tick(20 * MS) is None  # the measured 0.95 is outside [-1, 0.2]: nothing to command
    # disarmed, limits that fit are accepted as they are
    wide = JointLimits.build(["a"], lower=[-1.0], upper=[1.0], max_velocity=[0.5])
    assert ctl.set_limits(wide) is None


def test_chunks_with_an_absurd_span_are_rejected():
    lim = JointLimits.build(["a"])
    ctl = _controller(["a"], 10 * MS, lim)
    with pytest.raises(ChunkError, match="dt 1000 s, more than max_chunk_dt 1 s") as info:
        ctl.add_chunk(stamp_ns=0, dt_ns=1000 * 10**9, joint_names=["a"], actions=[1.0, 1.0])
    assert info.value.cause == "chunk_span"
    with pytest.raises(ChunkError, match=r"covers 99.999 s \(horizon 100000 x dt 0.001 s\)") as info:
        ctl.add_chunk(stamp_ns=0, dt_ns=MS, joint_names=["a"], actions=np.ones(100_000))
    assert info.value.cause == "chunk_span"
    assert len(ctl.buffer) == 0


def test_auto_buffer_keeps_every_prediction_act_needs():
    """ACT: H=100, one chunk per step: 100 chunks overlap; the default (auto) keeps them all."""
    lim = JointLimits.build(["a"])
    period = 20 * MS
    auto = _controller(["a"], period, lim)
    small = _controller(["a"], period, lim, max_chunks=32)
    faults = []
    for s in range(120):
        chunk = np.full(100, float(s))
        auto.add_chunk(stamp_ns=s * period, dt_ns=period, joint_names=["a"], actions=chunk)
        _, f = small.add_chunk(stamp_ns=s * period, dt_ns=period, joint_names=["a"], actions=chunk)
        faults += f
    t = 119 * period
    assert len(auto.buffer.live(t)) == 100
    assert {f.cause for f in faults} == {"chunk_buffer_small"}
    assert "set max_chunks >= 100 or 0 (auto)" in faults[0].message


# ---------------------------------------------------------------------------- the property
@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 3))
    names = [f"j{i}" for i in range(n)]
    period = draw(st.sampled_from([5 * MS, 10 * MS, 20 * MS]))

    def limits():
        lower = draw(st.lists(st.floats(-3, 0), min_size=n, max_size=n))
        width = draw(st.lists(st.floats(0.05, 3), min_size=n, max_size=n))
        vmax = draw(st.lists(st.floats(0.05, 5), min_size=n, max_size=n))
        amax = draw(st.one_of(st.none(), st.lists(st.floats(0.5, 50), min_size=n, max_size=n)))
        jump = draw(st.one_of(st.none(), st.lists(st.floats(0.01, 1), min_size=n, max_size=n)))
        return JointLimits.build(
            names,
            lower=lower,
            upper=[lo + w for lo, w in zip(lower, width)],
            max_velocity=vmax,
            max_acceleration=amax,
            max_jump=jump,
        )

    lim0 = limits()
    wide = st.floats(-6, 6, allow_nan=False)
    events = []
    for _ in range(draw(st.integers(5, 60))):
        kind = draw(st.sampled_from(["tick", "tick", "tick", "chunk", "state", "outlier", "limits", "arm"]))
        if kind == "chunk":
            h = draw(st.integers(1, 12))
            dt = draw(st.sampled_from([period, 2 * period, 3 * period + 7]))
            offset = draw(st.integers(-3, 3)) * period
            values = draw(st.lists(wide, min_size=h * n, max_size=h * n))
            events.append(("chunk", offset, dt, values))
        elif kind == "state":
            events.append(("state", draw(st.integers(0, 3)), draw(st.floats(0, 1))))
        elif kind == "outlier":
            events.append(("outlier", draw(st.lists(wide, min_size=n, max_size=n))))
        elif kind == "limits":
            events.append(("limits", limits(), draw(st.sampled_from(["refuse", "disarm"]))))
        else:
            events.append((kind,))
    start = draw(st.lists(st.floats(-3.5, 3.5), min_size=n, max_size=n))
    mode = draw(st.sampled_from(MODES))
    return names, period, lim0, start, events, mode


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_every_armed_command_obeys_the_rule(case):
    names, period, lim, start, events, mode = case
    ctl = _controller(names, period, lim, mode=mode, blend_steps=2)
    t = 0
    robot = np.array(start)  # where the robot really is
    history = [robot.copy()]
    ctl.update_state(t, names, robot)
    ctl.arm(t)
    prev = robot.copy() if ctl.armed else None  # the reference of the first command after arming
    for ev in events:
        if ev[0] == "chunk":
            _, offset, dt, values = ev
            with contextlib.suppress(ChunkError):
                ctl.add_chunk(stamp_ns=max(0, t + offset), dt_ns=dt, joint_names=names, actions=values)
        elif ev[0] == "state":  # the robot reports a lagging position
            _, lag, _alpha = ev
            ctl.update_state(t, names, history[max(0, len(history) - 1 - lag)])
        elif ev[0] == "outlier":
            ctl.update_state(t, names, ev[1])
        elif ev[0] == "limits":
            with contextlib.suppress(LimitsError):
                ctl.set_limits(ev[1], on_conflict=ev[2])
        elif ev[0] == "arm":
            was = ctl.armed
            ok, _ = ctl.arm(t)
            if ok and not was:
                prev = ctl.filter.last_command.copy() if ctl.filter.last_command is not None else None
        else:
            t += period
            armed_before = ctl.armed
            cmd = ctl.tick(t)
            lim_now = ctl.limits
            if cmd is None or not (armed_before and ctl.armed):
                if not ctl.armed:
                    prev = None
                continue
            q = cmd.positions
            assert np.all(np.isfinite(q))
            assert np.all(q >= lim_now.lower) and np.all(q <= lim_now.upper), (q, lim_now)
            if prev is not None:
                assert np.all(np.abs(q - prev) <= lim_now.max_velocity * period * 1e-9 + EPS)
            measured = ctl.state.current(t)
            if not cmd.holding and measured is not None:
                assert np.all(np.abs(q - measured) <= lim_now.max_jump + EPS)
            prev = q.copy()
            robot = robot + 0.5 * (q - robot)  # the robot follows part of the way
            history.append(robot.copy())


def test_a_persistent_tracking_error_disarms_and_an_outlier_only_holds():
    lim = JointLimits.build(["a"], lower=[-2.0], upper=[2.0], max_velocity=[1.0], max_jump=[0.3])
    ctl = _armed_at(0.0, lim, horizon=30, tracking_error_timeout_ns=100 * MS)
    ctl.update_state(10 * MS, ["a"], [1.0])  # one outlier sample
    assert ctl.tick(10 * MS).holding and ctl.armed
    ctl.update_state(20 * MS, ["a"], [0.0])
    assert not ctl.tick(20 * MS).holding and ctl.armed
    for k in range(3, 20):  # the arm is pushed away and stays there
        ctl.update_state(k * 10 * MS, ["a"], [1.0])
        cmd = ctl.tick(k * 10 * MS)
        assert cmd.positions[0] == 0.0  # nothing moves
        if k < 13:
            assert ctl.armed, k
    assert not ctl.armed
    causes = [f.cause for f in ctl.tick(200 * MS).faults]
    assert "tracking_error" in causes
    ok, _ = ctl.arm(200 * MS)  # re-arming starts from where the robot is
    assert ok and ctl.tick(210 * MS).positions[0] == pytest.approx(1.0 - 0.01)
