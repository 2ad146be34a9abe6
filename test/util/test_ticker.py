"""vla_ros.util.ticker: the one deadline schedule (fixed period; an overrun skips and counts the
missed deadlines and runs the next tick at once)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vla_ros.util.ticker import Ticker

MS = 1_000_000


def test_on_time_ticks_stay_on_the_grid() -> None:
    t = Ticker(10 * MS, first_ns=5 * MS)
    assert t.delay_ns(0) == 5 * MS
    assert t.delay_ns(7 * MS) == -2 * MS  # due (late by 2 ms, still the same tick)
    assert t.advance(8 * MS) == 0  # the work ended before the next deadline
    assert t.deadline_ns == 15 * MS  # the grid, not 8 ms + period: no drift
    assert t.advance(15 * MS) == 0  # ending exactly on the next deadline runs it at once
    assert t.deadline_ns == 25 * MS
    assert t.missed == 0


def test_an_overrun_skips_the_missed_deadlines_counts_them_and_runs_at_once() -> None:
    t = Ticker(10 * MS, first_ns=0)
    # the tick at 0 ran until 34 ms: deadlines 10, 20, 30 are gone (no burst); the next tick
    # runs at once and the grid restarts there
    assert t.advance(34 * MS) == 3
    assert (t.deadline_ns, t.missed) == (34 * MS, 3)
    assert t.delay_ns(34 * MS) == 0
    assert t.advance(36 * MS) == 0  # on time again: one period from the restart
    assert t.deadline_ns == 44 * MS
    # just past one deadline: that one is skipped, the next tick runs at once
    assert t.advance(54 * MS + 1) == 1
    assert (t.deadline_ns, t.missed) == (54 * MS + 1, 4)


def test_live_period_change_and_restart() -> None:
    t = Ticker(10 * MS, first_ns=0)
    t.period_ns = 4 * MS  # applies from the next advance; the scheduled deadline is kept
    assert t.deadline_ns == 0
    t.advance(1 * MS)
    assert t.deadline_ns == 4 * MS
    t.restart(100 * MS)
    assert t.deadline_ns == 100 * MS
    assert list(Ticker(3, first_ns=10).ticks(19)) == [10, 13, 16]
    assert list(Ticker(3, first_ns=10).ticks(10)) == []


@pytest.mark.parametrize("bad", [0, -5, 1.5, 10.0, True, None])
def test_bad_period_is_refused_naming_the_value(bad: object) -> None:
    with pytest.raises(ValueError, match=r"period_ns must be an integer.*round\(1e9 / rate_hz\)"):
        Ticker(bad, first_ns=0)  # type: ignore[arg-type]
    t = Ticker(1, first_ns=0)
    with pytest.raises(ValueError, match="period_ns must be an integer"):
        t.period_ns = bad  # type: ignore[assignment]


@given(
    period=st.integers(1, 10_000),
    first=st.integers(-(10**9), 10**9),
    works=st.lists(st.integers(0, 50_000), min_size=1, max_size=40),
)
def test_schedule_invariants(period: int, first: int, works: list[int]) -> None:
    """Whatever each tick's work takes: ticks never run closer than their work allows (no
    burst: the next deadline is never before the work ended), a loop that keeps up stays on its
    grid, and ``missed`` counts exactly the deadlines that passed while a tick was working."""
    t = Ticker(period, first_ns=first)
    now = first
    grid = first  # the current grid's origin (moves on an overrun)
    expected_missed = 0
    for work in works:
        start = max(now, t.deadline_ns)  # wait for the deadline, then work
        now = start + work
        nxt = t.deadline_ns + period
        # the old grid's deadlines reached while working (counted one by one)
        passed = len(range(nxt, now + 1, period)) if now > nxt else 0
        expected_missed += passed
        assert t.advance(now) == passed
        assert t.deadline_ns >= now
        if passed:
            grid = now
            assert t.deadline_ns == now  # runs at once
        else:
            assert (t.deadline_ns - grid) % period == 0 and t.deadline_ns - now <= period
        assert t.missed == expected_missed


def test_run_periodic_sleeps_to_each_deadline_skips_overruns_and_survives_a_raising_tick() -> None:
    """run_periodic on a simulated clock: sleeping moves the clock, each tick's work takes the
    scripted time; an overrun skips and counts, a raising tick goes to on_error, stop ends it."""
    import threading

    from vla_ros.util.ticker import run_periodic

    now = [0]
    work = iter([1, 25, 1, 1, 1])  # ms of work per tick; the second overruns two deadlines
    starts: list[int] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        now[0] += round(seconds * 1e9)

    def tick() -> None:
        starts.append(now[0])
        now[0] += next(work) * MS
        if len(starts) == 3:
            raise RuntimeError("boom")
        if len(starts) == 5:
            stop.set()

    ticker = Ticker(10 * MS, first_ns=10 * MS)
    run_periodic(ticker, tick, stop, on_error=errors.append, clock=lambda: now[0], sleep=sleep)
    # 10 on time; 20 ran to 45 (30 and 40 skipped), so 45 runs at once and the grid restarts there
    assert starts == [10 * MS, 20 * MS, 45 * MS, 55 * MS, 65 * MS]
    assert ticker.missed == 2
    assert [str(e) for e in errors] == ["boom"]
