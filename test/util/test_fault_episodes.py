"""FaultLog ``settle_ns``: a flapping cause is one episode, one line when it starts, one when it ends."""

from __future__ import annotations

from vla_ros.util.faults import FaultLog

MS = 1_000_000


def test_alternating_good_and_bad_is_one_episode_until_good_for_settle_ns() -> None:
    log = FaultLog(settle_ns=500 * MS, settle_prefixes=("image:",))
    lines = []
    for i in range(100):  # 100 frames at 10 ms, every other one bad
        t = i * 10 * MS
        if i % 2:
            lines += [log.report("image:wrist:step", "rejected image: step", t)]
        else:
            lines += [f"recovered: {c}" for c in log.clear_except("image:wrist:", now_ns=t)]
    assert [line for line in lines if line] == ["rejected image: step"]
    assert log.active()["image:wrist:step"].count == 50
    last_bad = 99 * 10 * MS
    assert log.clear_except("image:wrist:", now_ns=last_bad + 499 * MS) == []  # good, still settling
    assert log.clear_except("image:wrist:", now_ns=last_bad + 500 * MS) == ["image:wrist:step"]
    assert log.active() == {}
    # a new episode after it ended is logged again
    assert log.report("image:wrist:step", "rejected image: step", last_bad + 501 * MS)


def test_settle_applies_only_to_its_prefixes() -> None:
    log = FaultLog(settle_ns=500 * MS, settle_prefixes=("image:",))
    log.report("input:camera:wrist:stale", "stale", 0)
    log.report("image:wrist:size", "size", 0)
    assert log.settle(set(), now_ns=1) == ["input:camera:wrist:stale"]
    assert list(log.active()) == ["image:wrist:size"]
    assert log.clear("image:wrist:size", now_ns=500 * MS)
