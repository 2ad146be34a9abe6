"""Inputs that lie (issue 12, section 4 and the joint-state groups of section 8), on the pure cores:
the policy's ObservationAssembler and the executor's JointStateTracker.

Duplicated joint names, stamps of 0, stamps an hour off the node clock, a ROS clock standing still
(liveness on a steady clock), stray name lists and drivers restarting with another name order.
"""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.control.controller import state_fault
from vla_ros.control.state import JointStateTracker, StateError
from vla_ros.perception import (
    MissingJointError,
    ObservationAssembler,
    ObservationError,
    ObservationRejected,
    StalenessLimits,
)

MS = 1_000_000
S = 1_000 * MS
HOUR = 3600 * S
T = 1_700_000_000 * S  # a wall-clock node time (2023-11-14 22:13:20 UTC)
LIMITS = StalenessLimits(image_ns=100 * MS, state_ns=50 * MS, future_ns=10 * MS)
JOINTS = ("j1", "j2", "j3")


class SteadyClock:
    """A steady clock the test moves by hand (the node passes time.monotonic_ns)."""

    def __init__(self, t: int = 5 * S) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def _assembler(**kw) -> ObservationAssembler:
    kw.setdefault("limits", LIMITS)
    return ObservationAssembler(("wrist", "top"), JOINTS, **kw)


def _images(a: ObservationAssembler, t: int) -> None:
    a.push_image("wrist", t, "w")
    a.push_image("top", t, "t")


def _rejected(a: ObservationAssembler, now: int) -> ObservationRejected:
    with pytest.raises(ObservationRejected) as err:
        a.assemble(now_ns=now)
    return err.value


# ---- duplicated names -----------------------------------------------------------------------


def test_assembler_rejects_a_duplicated_joint_and_keeps_nothing() -> None:
    a = _assembler()
    _images(a, T)
    with pytest.raises(ObservationError) as err:
        a.push_joint_state(T, ("j1", "j2", "j2", "j3"), [1.0, 2.0, 22.0, 3.0])
    assert err.value.cause == "joint_states:duplicate"
    assert "joint(s) ['j2'] more than once" in str(err.value)
    assert [e.cause for e in _rejected(a, T).errors] == ["joint_states:missing"]
    a.push_joint_state(T, JOINTS, [1.0, 2.0, 3.0])  # the same publisher, fixed
    np.testing.assert_array_equal(a.assemble(now_ns=T).state, [[1.0, 2.0, 3.0]])


def test_tracker_rejects_a_duplicated_joint_and_keeps_its_value() -> None:
    tr = JointStateTracker(("j1", "j2"), timeout_ns=500 * MS)
    tr.update(T, ("j1", "j2"), [1.0, 2.0])
    with pytest.raises(StateError) as err:
        tr.update(T + MS, ("j2", "j1", "j2"), [20.0, 10.0, 21.0])
    assert err.value.cause == "state_duplicate" and "['j2'] more than once" in str(err.value)
    np.testing.assert_array_equal(tr.current(T + MS), [1.0, 2.0])  # first or last: neither


# ---- stamps of 0 ------------------------------------------------------------------------------


def test_assembler_unstamped_inputs_are_one_error_naming_the_driver() -> None:
    a = _assembler()
    _images(a, 0)
    a.push_joint_state(0, JOINTS, [1.0, 2.0, 3.0])
    (err,) = _rejected(a, T).errors
    assert err.cause == "unstamped"
    assert str(err).startswith(
        "camera 'wrist', camera 'top', joint_states: the driver does not stamp its messages "
        "(header.stamp is 0)"
    )


def test_stamp_0_at_the_start_of_a_sim_clock_is_not_a_lie() -> None:
    a = _assembler()
    _images(a, 0)
    a.push_joint_state(0, JOINTS, [1.0, 2.0, 3.0])
    assert a.assemble(now_ns=20 * MS).stamp_ns == 0


def test_tracker_unstamped_is_its_own_fault_not_missing_joints() -> None:
    tr = JointStateTracker(("j1", "j2"), timeout_ns=500 * MS)
    tr.update(0, ("j1", "j2"), [1.0, 2.0])
    missing = tr.missing(T)
    assert missing == ["j1", "j2"] and tr.current(T) is None
    fault = state_fault(missing, tr.seen_any)
    assert fault.cause == "state_unstamped"
    assert fault.message.startswith(
        "the driver does not stamp its joint_states (header.stamp is 0) for joint(s) ['j1', 'j2']"
    )


# ---- stamps from another clock ----------------------------------------------------------------


def test_assembler_stamps_an_hour_behind_are_one_clock_error() -> None:
    a = _assembler()
    _images(a, T - HOUR)
    a.push_joint_state(T - HOUR, JOINTS, [1.0, 2.0, 3.0])
    (err,) = _rejected(a, T).errors
    assert err.cause == "clock"
    msg = str(err)
    assert "camera 'wrist' 3600.0 s behind, camera 'top' 3600.0 s behind, joint_states 3600.0 s behind" in msg
    assert "both are wall-clock times that differ: synchronise the machines' clocks" in msg
    assert "publisher running" not in msg


def test_assembler_sim_time_stamps_on_a_wall_clock_node_name_use_sim_time() -> None:
    a = _assembler()
    _images(a, 12 * S)
    a.push_joint_state(12 * S, JOINTS, [1.0, 2.0, 3.0])
    (err,) = _rejected(a, T).errors
    assert err.cause == "clock"
    assert "the stamps read 12.0 s (a simulation/bag clock or time since boot)" in str(err)
    assert "set use_sim_time:=true on this node" in str(err)


def test_assembler_stamps_an_hour_ahead_are_a_clock_error_too() -> None:
    a = _assembler()
    _images(a, T + HOUR)
    a.push_joint_state(T + HOUR, JOINTS, [1.0, 2.0, 3.0])
    (err,) = _rejected(a, T).errors
    assert err.cause == "clock" and "joint_states 3600.0 s ahead" in str(err)


def test_assembler_messages_arriving_already_stale_are_a_clock_error() -> None:
    steady = SteadyClock()
    a = _assembler(liveness_clock=steady)
    _images(a, T)
    a.push_joint_state(T - 200 * MS, JOINTS, [1.0, 2.0, 3.0])  # arrives now, stamped 200 ms ago
    (err,) = _rejected(a, T).errors
    assert err.cause == "clock"
    assert "joint_states 0.2 s behind (already 0.200 s old on arrival)" in str(err)
    assert "the publisher's clock is behind this node's" in str(err)


def test_tracker_stamps_an_hour_off_are_a_clock_fault() -> None:
    for stamp, where in ((T - HOUR, "3600.0 s behind"), (T + HOUR, "3600.0 s ahead of")):
        tr = JointStateTracker(("j1", "j2"), timeout_ns=500 * MS)
        tr.update(stamp, ("j1", "j2"), [1.0, 2.0])
        assert tr.current(T) is None  # an hour ahead is not "fresh for an hour"
        fault = state_fault(tr.missing(T), tr.seen_any)
        assert fault.cause == "state_clock"
        head = f"joint_states stamps for joint(s) ['j1', 'j2'] are {where} the executor clock"
        assert head in fault.message
        assert "none received" not in fault.message


def test_tracker_a_future_stamp_never_locks_the_delta_history() -> None:
    tr = JointStateTracker(("j1", "j2"), timeout_ns=500 * MS)
    tr.update(T + HOUR, ("j1", "j2"), [9.0, 9.0])  # one stray message on another clock
    tr.update(T, ("j1", "j2"), [1.0, 2.0])
    tr.update(T + 10 * MS, ("j1", "j2"), [1.5, 2.5])
    np.testing.assert_array_equal(tr.at(T + 10 * MS, 5 * MS), [1.5, 2.5])
    np.testing.assert_array_equal(tr.current(T + 20 * MS), [1.5, 2.5])


# ---- liveness on a steady clock -----------------------------------------------------------------


def test_assembler_a_stopped_ros_clock_still_trips_liveness() -> None:
    steady = SteadyClock()
    a = _assembler(liveness_clock=steady)
    _images(a, T)
    a.push_joint_state(T, JOINTS, [1.0, 2.0, 3.0])
    a.assemble(now_ns=T + 5 * MS)
    steady.t += 2 * S  # /clock stopped: the node clock still reads T + 5 ms, nothing arrives
    err = _rejected(a, T + 5 * MS)
    assert sorted(e.cause for e in err.errors) == [
        "camera:top:silent",
        "camera:wrist:silent",
        "joint_states:silent",
    ]
    assert "joint_states: no message arrived for 2000.0 ms on the steady clock" in str(err)
    assert "the node clock stands still" in str(err)
    _images(a, T + 5 * MS)
    a.push_joint_state(T + 5 * MS, JOINTS, [1.0, 2.0, 3.0])
    assert a.assemble(now_ns=T + 5 * MS).stamp_ns == T + 5 * MS


def test_assembler_a_stopped_publisher_is_still_the_publisher() -> None:
    steady = SteadyClock()
    a = _assembler(liveness_clock=steady)
    _images(a, T)
    a.push_joint_state(T, JOINTS, [1.0, 2.0, 3.0])
    steady.t += 200 * MS
    _images(a, T + 200 * MS)
    err = _rejected(a, T + 200 * MS)
    (e,) = err.errors
    assert e.cause == "joint_states:stale"
    assert "200.0 ms old (limit 50.0 ms) and none arrived for 200.0 ms; is the publisher running?" in str(e)


def test_tracker_a_stopped_ros_clock_still_trips_liveness() -> None:
    steady = SteadyClock()
    tr = JointStateTracker(("j1", "j2"), timeout_ns=500 * MS, liveness_clock=steady)
    tr.update(T, ("j1", "j2"), [1.0, 2.0])
    np.testing.assert_array_equal(tr.current(T), [1.0, 2.0])
    steady.t += 1 * S  # the node clock stays at T
    assert tr.current(T) is None
    fault = state_fault(tr.missing(T), tr.seen_any)
    assert fault.cause == "state_silent:j1,j2"
    assert "no joint_states for joint(s) ['j1', 'j2'] for 1.00 s on the steady clock" in fault.message
    assert "the node clock stands still" in fault.message
    tr.update(T, ("j1", "j2"), [1.0, 2.0])
    np.testing.assert_array_equal(tr.current(T), [1.0, 2.0])


def test_tracker_without_a_timeout_judges_nothing() -> None:
    tr = JointStateTracker(("j1",), timeout_ns=0, liveness_clock=SteadyClock())
    tr.update(0, ("j1",), [1.0])
    np.testing.assert_array_equal(tr.current(T), [1.0])


# ---- joint-state groups that never expire -------------------------------------------------------


def test_one_stray_message_with_an_extra_name_never_stops_the_policy() -> None:
    a = _assembler()
    for k in range(20):  # the driver at 100 Hz; one stray message with an extra joint at k=3
        t = T + k * 10 * MS
        _images(a, t)
        a.push_joint_state(t, JOINTS, [1.0, 2.0, float(k)])
        if k == 3:  # its name list sorts first: a tie broken by names would keep it for good
            a.push_joint_state(t + MS, ("aux", *JOINTS), [7.0, 7.0, 7.0, 7.0])
        obs = a.assemble(now_ns=t + 2 * MS)
        expected = [7.0, 7.0, 7.0] if k == 3 else [1.0, 2.0, float(k)]  # the freshest group wins
        np.testing.assert_array_equal(obs.state, [expected])
    assert a.counters()["joint_states"]["received"] == 21


def test_a_driver_restarting_with_another_name_order_takes_over() -> None:
    a = _assembler()
    for k in range(5):
        t = T + k * 10 * MS
        _images(a, t)
        a.push_joint_state(t, JOINTS, [1.0, 2.0, 3.0])
        a.assemble(now_ns=t)
    for k in range(5, 20):  # restarted: names in another order, new values
        t = T + k * 10 * MS
        _images(a, t)
        a.push_joint_state(t, ("j3", "j1", "j2"), [30.0, 10.0, 20.0])
        np.testing.assert_array_equal(a.assemble(now_ns=t + MS).state, [[10.0, 20.0, 30.0]])


def test_a_stale_group_covering_more_joints_does_not_shadow_live_split_groups() -> None:
    a = _assembler()
    a.push_joint_state(T, JOINTS, [9.0, 9.0, 9.0])  # once, long ago in policy terms
    for k in range(1, 10):
        t = T + k * 20 * MS
        _images(a, t)
        a.push_joint_state(t, ("j1", "j2"), [1.0, 2.0])  # arm driver
        a.push_joint_state(t, ("j3",), [3.0])  # gripper driver
    obs = a.assemble(now_ns=T + 181 * MS)
    np.testing.assert_array_equal(obs.state, [[1.0, 2.0, 3.0]])
    assert obs.stamp_ns == T + 180 * MS


def test_no_full_group_cache_locks_a_live_publisher_out() -> None:
    a = _assembler(max_joint_groups=4)
    for i in range(10):  # ten different name lists, more than the cache holds
        a.push_joint_state(T, (*JOINTS, f"junk{i}"), [0.0, 0.0, 0.0, 0.0])
    for k in range(3):
        t = T + (k + 1) * 10 * MS
        _images(a, t)
        assert a.push_joint_state(t, ("j2", "j3", "j1"), [2.0, 3.0, 1.0])
    np.testing.assert_array_equal(a.assemble(now_ns=T + 31 * MS).state, [[1.0, 2.0, 3.0]])
    assert a.counters()["joint_states"]["received"] == 13  # evicted groups still counted


def test_messages_without_needed_joints_are_not_stored_but_named() -> None:
    a = _assembler()
    _images(a, T)
    assert not a.push_joint_state(T, ("base_x", "base_y"), [0.0, 0.0])
    (err,) = _rejected(a, T).errors
    assert isinstance(err, MissingJointError)
    assert "lacks joint(s) ['j1', 'j2', 'j3']" in str(err)
    assert "received joints: ['base_x', 'base_y']" in str(err)
