"""ExecutorCore.receive_chunk (a chunk from the topic: adopt its joints, refuse with a fault) and
the ~/committed_actions cadence it decides on each tick; executor/health's fault levels."""

from __future__ import annotations

import numpy as np

from vla_ros.executor import params as ep
from vla_ros.executor.core import ExecutorCore
from vla_ros.executor.health import fault_log, fault_report
from vla_ros.util.faults import Fault

MS = 1_000_000


def _values(**params):
    values = {s.name: s.default for s in ep.SPECS}
    values.update({"control_rate_hz": 100.0, "allow_unlimited": True}, **params)
    return values


def _chunk(names=("a", "b"), stamp_ns=0, n=20):
    return {
        "stamp_ns": stamp_ns,
        "dt_ns": 100 * MS,
        "joint_names": tuple(names),
        "actions": np.zeros((n, len(names)), dtype=np.float32).ravel().tolist(),
        "horizon": n,
        "action_dim": len(names),
    }


def test_the_first_chunk_adopts_its_joints_and_a_chunk_without_names_is_a_fault():
    core = ExecutorCore(_values())
    empty = core.receive_chunk(**_chunk(names=()))
    assert not empty.accepted and core.controller is None
    assert [(f.cause, f.message) for f in empty.faults] == [
        ("chunk_joints", "chunk has no joint_names; ignored")
    ]
    first = core.receive_chunk(**_chunk())
    assert first.accepted and first.faults == ()
    assert core.controller.config.joint_names == ("a", "b")
    assert first.reports[0].text.startswith("joints ['a', 'b']; limits")
    assert len(core.controller.buffer) == 1


def test_a_refused_chunk_is_a_fault_naming_the_cause_not_an_exception():
    core = ExecutorCore(_values(joint_names=["a", "b"]))
    core.adopt(("a", "b"))
    bad = _chunk()
    bad["horizon"] = 7  # 20 x 2 values do not make 7 x 2
    receipt = core.receive_chunk(**bad)
    assert not receipt.accepted and len(receipt.faults) == 1
    assert receipt.faults[0].message.startswith("rejected chunk: ")
    assert len(core.controller.buffer) == 0


def test_committed_actions_are_due_every_nth_tick_and_in_rtc_mode_after_each_chunk():
    # 100 Hz control, 25 Hz committed: every 4th tick
    core = ExecutorCore(_values(joint_names=["a", "b"], committed_rate_hz=25.0, mode="latest"))
    core.adopt(("a", "b"))
    assert core.receive_chunk(**_chunk()).accepted
    assert [core.tick(i * 10 * MS).committed_due for i in range(8)] == [False, False, False, True] * 2
    rtc = ExecutorCore(_values(joint_names=["a", "b"], committed_rate_hz=25.0, mode="rtc"))
    rtc.adopt(("a", "b"))
    assert rtc.receive_chunk(**_chunk()).accepted
    assert [rtc.tick(i * 10 * MS).committed_due for i in range(4)] == [True, False, False, True]
    never = ExecutorCore(_values(joint_names=["a", "b"], committed_rate_hz=0.0, mode="rtc"))
    never.adopt(("a", "b"))
    assert never.receive_chunk(**_chunk()).accepted
    assert not any(never.tick(i * 10 * MS).committed_due for i in range(5))


def test_fault_levels_errors_for_safety_causes_warnings_otherwise_logged_once():
    log = fault_log(_values(log_repeat_s=10.0))
    first = fault_report(log, Fault(cause="tracking_error:a", message="joint a lags"), 0)
    assert (first.level, first.cause) == ("error", "tracking_error:a") and "joint a lags" in first.text
    assert fault_report(log, Fault(cause="tracking_error:a", message="joint a lags"), 1 * MS) is None
    assert fault_report(log, Fault(cause="stale_state", message="old"), 0).level == "warning"


def test_liveness_uses_the_arrival_clock_given_with_the_first_state():
    core = ExecutorCore(_values(joint_names=["a", "b"]))
    core.adopt(("a", "b"))
    assert core.controller.state.liveness_clock is None
    first, second = (lambda: 1), (lambda: 2)
    core.update_state(0, ["a", "b"], [0.0, 0.0], arrival_clock=first)
    core.update_state(MS, ["a", "b"], [0.0, 0.0], arrival_clock=second)
    assert core.controller.state.liveness_clock is first  # set once, by the first state
