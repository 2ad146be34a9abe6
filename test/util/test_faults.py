"""vla_ros.util.faults: the one FaultLog (policy inputs and the executor's control loop)."""

from __future__ import annotations

import threading

import pytest

from vla_ros.util.faults import Fault, FaultLog

S = 1_000_000_000


def test_active_set_style_once_per_cause_and_recovery() -> None:
    log = FaultLog()  # no repeat interval: an active cause is logged once
    assert log.raise_("input:a", "a old", now_ns=0)
    for t in range(1, 100):
        assert not log.raise_("input:a", f"a old {t}", now_ns=t * 3600 * S)
    assert log.active() == {"input:a": Fault("a old 99", cause="input:a", count=100)}
    assert log.settle({"input:b"}, now_ns=0) == ["input:a"]
    assert log.active() == {}
    assert log.raise_("input:a", "a back")  # cleared and back: logged again
    assert log.snapshot() == {"input:a": 101} and log.totals == log.counts == {"input:a": 101}


def test_rate_limited_style_with_flap_suppression() -> None:
    log = FaultLog(repeat_interval_ns=10 * S, recur_after_ns=S)
    assert log.report("tracking_error", "far", 0) == "far"
    assert log.report("tracking_error", "far", 5 * S) is None
    assert log.report("tracking_error", "far", 11 * S) == "far (repeated 1 more times)"
    assert log.settle(set(), 12 * S) == ["tracking_error"]
    assert log.report("tracking_error", "far", 12 * S + S // 2) is None  # back within 1 s: a flap
    assert log.active()["tracking_error"].count == 1
    log.settle(set(), 13 * S)
    assert log.report("tracking_error", "far again", 20 * S) == "far again"  # away 7 s: new episode
    assert log.total() == 5 and log.total("track") == 5 and log.total("x") == 0


def test_clear_only_reports_active_causes() -> None:
    log = FaultLog()
    assert not log.clear("never")
    log.report("a:1", "one")
    log.report("a:2", "two")
    log.report("b:1", "three")
    assert sorted(log.clear_except("a:", keep=["a:2"])) == ["a:1"]
    assert sorted(log.active()) == ["a:2", "b:1"]
    assert log.clear("b:1") and not log.clear("b:1")


def test_bad_settings_name_the_value() -> None:
    with pytest.raises(ValueError, match="repeat_interval_ns must be >= 0 or None, got -1"):
        FaultLog(repeat_interval_ns=-1)
    with pytest.raises(ValueError, match="recur_after_ns must be >= 0, got -5"):
        FaultLog(recur_after_ns=-5)


def test_concurrent_reports_are_all_counted_and_logged_once() -> None:
    log = FaultLog(repeat_interval_ns=None)
    logged: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(2000):
            line = log.report(f"cause{i % 4}", f"from {k}", now_ns=i)
            if line is not None:
                with lock:
                    logged.append(line)
            if i % 500 == 0:
                log.snapshot()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.snapshot() == {f"cause{c}": 2000 for c in range(4)}
    assert len(logged) == 4  # exactly one line per cause, whichever thread saw it first
    assert sum(f.count for f in log.active().values()) == 8000
