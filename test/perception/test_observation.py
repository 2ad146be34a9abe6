"""Observation assembly: oldest-part stamp, staleness vs the clock, history, joint groups."""

from __future__ import annotations

import array
import threading

import numpy as np
import pytest

from vla_ros.perception import (
    FaultLog,
    MissingInputError,
    MissingJointError,
    NonFiniteInputError,
    ObservationAssembler,
    ObservationError,
    ObservationRejected,
    StaleInputError,
    StalenessLimits,
    TimedBuffer,
    ns_to_stamp,
    seconds_to_ns,
    select_history,
    stamp_to_ns,
)
from vla_ros.perception.observation import Entry

MS = 1_000_000
LIMITS = StalenessLimits(image_ns=100 * MS, state_ns=50 * MS, future_ns=10 * MS)
JOINTS = ("j1", "j2", "j3")


def _assembler(**kw) -> ObservationAssembler:
    kw.setdefault("limits", LIMITS)
    return ObservationAssembler(("wrist", "top"), JOINTS, **kw)


def _feed(a: ObservationAssembler, t: int, state=(1.0, 2.0, 3.0), names=JOINTS) -> None:
    a.push_image("wrist", t, f"wrist@{t}")
    a.push_image("top", t, f"top@{t}")
    a.push_joint_state(t, names, array.array("d", state))


def _causes(exc: ObservationRejected) -> set[str]:
    return {e.cause for e in exc.errors}


def test_stamp_helpers_roundtrip() -> None:
    ns = stamp_to_ns(12, 345)
    assert ns == 12_000_000_345
    assert ns_to_stamp(ns) == (12, 345)
    assert ns_to_stamp(-1) == (-1, 999_999_999)
    assert seconds_to_ns(0.2) == 200 * MS


def test_stamp_is_oldest_part_and_state_in_card_order() -> None:
    a = _assembler()
    a.push_image("wrist", 1000 * MS, "w")
    a.push_image("top", 990 * MS, "t")
    a.push_joint_state(1005 * MS, ("j3", "x", "j1", "j2"), [30.0, -1.0, 10.0, 20.0])
    obs = a.assemble(now_ns=1010 * MS)
    assert obs.stamp_ns == 990 * MS
    assert obs.images["wrist"][0].item == "w" and obs.images["top"][0].item == "t"
    np.testing.assert_array_equal(obs.state, [[10.0, 20.0, 30.0]])


def test_missing_inputs_are_all_reported() -> None:
    a = _assembler()
    a.push_image("wrist", 0, "w")
    with pytest.raises(ObservationRejected) as err:
        a.assemble(now_ns=1 * MS)
    assert _causes(err.value) == {"camera:top:missing", "joint_states:missing"}
    assert all(isinstance(e, MissingInputError) for e in err.value.errors)


def test_stale_camera_measured_against_clock() -> None:
    a = _assembler()
    _feed(a, 0)
    a.assemble(now_ns=50 * MS)  # fresh
    a.push_joint_state(150 * MS, JOINTS, [1.0, 2.0, 3.0])
    a.push_image("top", 150 * MS, "t2")
    with pytest.raises(ObservationRejected) as err:
        a.assemble(now_ns=150 * MS)  # wrist image is 150 ms old, limit 100 ms
    assert _causes(err.value) == {"camera:wrist:stale"}
    (e,) = err.value.errors
    assert isinstance(e, StaleInputError)
    assert "camera 'wrist'" in str(e) and "150.0 ms old (limit 100.0 ms)" in str(e)


def test_everything_stopping_is_stale_too() -> None:
    a = _assembler()
    _feed(a, 0)
    with pytest.raises(ObservationRejected) as err:
        a.assemble(now_ns=500 * MS)
    assert _causes(err.value) == {"camera:wrist:stale", "camera:top:stale", "joint_states:stale"}


def test_stamp_from_the_future_is_rejected() -> None:
    a = _assembler()
    _feed(a, 100 * MS)
    a.assemble(now_ns=95 * MS)  # 5 ms ahead: within tolerance
    with pytest.raises(ObservationRejected, match="ahead of the node clock") as err:
        a.assemble(now_ns=80 * MS)
    assert "camera:wrist:future" in _causes(err.value)


def test_missing_joint_names_missing_and_received() -> None:
    a = _assembler()
    _feed(a, 0, state=(1.0, 2.0), names=("j1", "j2"))
    with pytest.raises(ObservationRejected) as err:
        a.assemble(now_ns=1 * MS)
    (e,) = err.value.errors
    assert isinstance(e, MissingJointError)
    assert "['j3']" in str(e) and "received joints: ['j1', 'j2']" in str(e)


def test_joint_groups_are_merged() -> None:
    a = _assembler()
    a.push_image("wrist", 10 * MS, "w")
    a.push_image("top", 10 * MS, "t")
    a.push_joint_state(8 * MS, ("j1", "j2"), [1.0, 2.0])
    a.push_joint_state(9 * MS, ("j3",), [3.0])
    obs = a.assemble(now_ns=12 * MS)
    np.testing.assert_array_equal(obs.state, [[1.0, 2.0, 3.0]])
    assert obs.stamp_ns == 8 * MS


def test_a_full_group_is_preferred_over_a_partial_one() -> None:
    a = _assembler()
    _feed(a, 10 * MS, state=(1.0, 2.0, 3.0))
    a.push_joint_state(11 * MS, ("j2",), [99.0])
    obs = a.assemble(now_ns=12 * MS)
    np.testing.assert_array_equal(obs.state, [[1.0, 2.0, 3.0]])


def test_non_finite_state_is_rejected() -> None:
    a = _assembler()
    _feed(a, 0, state=(1.0, float("nan"), 3.0))
    with pytest.raises(ObservationRejected) as err:
        a.assemble(now_ns=1 * MS)
    (e,) = err.value.errors
    assert isinstance(e, NonFiniteInputError) and "['j2']" in str(e)


def test_bad_joint_state_messages_raise_in_push() -> None:
    a = _assembler(max_joint_groups=2)
    with pytest.raises(ObservationError, match="3 names but 2 positions") as err:
        a.push_joint_state(0, JOINTS, [1.0, 2.0])
    assert err.value.cause == "joint_states:length"
    # a full group cache never locks a publisher out (test/perception/test_joint_state_faults.py)
    assert a.push_joint_state(0, ("j1",), [1.0]) and a.push_joint_state(0, ("j2",), [1.0])
    assert a.push_joint_state(0, ("j3",), [1.0])
    with pytest.raises(ValueError, match="unknown camera 'side'"):
        a.push_image("side", 0, "x")


def test_is_new_and_dropped_counters() -> None:
    a = _assembler()
    for t in range(3):
        _feed(a, t * MS)
    obs = a.assemble(now_ns=3 * MS)
    assert a.is_new(obs)
    a.mark_consumed(obs)
    again = a.assemble(now_ns=4 * MS)
    assert not a.is_new(again)
    counters = a.counters()
    assert counters["camera:wrist"] == {"received": 3, "dropped": 2}
    assert counters["joint_states"] == {"received": 3, "dropped": 2}
    a.push_joint_state(5 * MS, JOINTS, [0.0, 0.0, 0.0])  # only the state changed
    newer = a.assemble(now_ns=6 * MS)
    assert a.is_new(newer)
    a.mark_consumed(newer)
    assert a.counters()["joint_states"] == {"received": 4, "dropped": 2}


def test_history_selection_spacing_and_padding() -> None:
    entries = [Entry(t * MS, i + 1, t) for i, t in enumerate([0, 33, 66, 100, 133, 166, 200])]
    assert [e.item for e in select_history(entries, 3, 100 * MS)] == [0, 100, 200]
    assert [e.item for e in select_history(entries, 2, 66 * MS)] == [133, 200]
    assert [e.item for e in select_history(entries[:2], 3, 100 * MS)] == [0, 0, 33]
    shuffled = [entries[3], entries[0], entries[6]]
    assert [e.item for e in select_history(shuffled, 2, 100 * MS)] == [100, 200]
    with pytest.raises(ValueError):
        select_history([], 1, 0)


def test_assembler_history_images_and_state() -> None:
    a = _assembler(history=2, history_dt_ns=100 * MS)
    for t in (0, 50, 100):
        _feed(a, t * MS, state=(t, t + 1.0, t + 2.0))
    obs = a.assemble(now_ns=100 * MS)
    assert [e.item for e in obs.images["wrist"]] == ["wrist@0", "wrist@100000000"]
    np.testing.assert_array_equal(obs.state, [[0, 1, 2], [100, 101, 102]])
    assert obs.stamp_ns == 100 * MS


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="camera"):
        ObservationAssembler((), JOINTS, limits=LIMITS)
    with pytest.raises(ValueError, match="duplicate"):
        ObservationAssembler(("a", "a"), JOINTS, limits=LIMITS)
    with pytest.raises(ValueError, match="state joint"):
        ObservationAssembler(("a",), (), limits=LIMITS)
    with pytest.raises(ValueError, match="history_dt_ns"):
        ObservationAssembler(("a",), JOINTS, limits=LIMITS, history=2)
    with pytest.raises(ValueError, match="image_ns"):
        StalenessLimits(image_ns=-1, state_ns=0)
    with pytest.raises(ValueError, match="maxlen"):
        TimedBuffer(0)


def test_concurrent_pushes_while_assembling() -> None:
    a = _assembler(history=3, history_dt_ns=1 * MS)
    stop = threading.Event()
    pushed = [0]

    def producer() -> None:
        t = 0
        while not stop.is_set() and t < 20000:
            _feed(a, t * 1000)
            t += 1
        pushed[0] = t

    th = threading.Thread(target=producer)
    th.start()
    ok = 0
    while th.is_alive() or ok == 0:
        try:
            obs = a.assemble(now_ns=20 * MS)
        except ObservationRejected:
            continue
        assert obs.state.shape == (3, 3)
        a.mark_consumed(obs)
        ok += 1
    stop.set()
    th.join()
    c = a.counters()["camera:top"]
    assert c["received"] == pushed[0] and c["dropped"] < c["received"]


def test_fault_log_once_per_cause() -> None:
    log = FaultLog()
    assert log.raise_("camera:wrist:stale", "old")
    assert not log.raise_("camera:wrist:stale", "older")
    assert log.raise_("camera:top:stale", "old")
    assert log.active()["camera:wrist:stale"].count == 2
    assert log.active()["camera:wrist:stale"].message == "older"
    assert log.clear("camera:wrist:stale")
    assert not log.clear("camera:wrist:stale")
    assert log.raise_("camera:wrist:stale", "again")
    assert log.total("camera:") == 4
    assert sorted(log.clear_except("camera:", keep=["camera:top:stale"])) == ["camera:wrist:stale"]
    assert list(log.active()) == ["camera:top:stale"]
