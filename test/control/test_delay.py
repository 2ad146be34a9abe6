"""Inference delay in control steps: integer ns, warm-up excluded, percentile over a window."""

from __future__ import annotations

import pytest

from vla_ros.control.delay import DelayError, DelayEstimator, percentile_ns, schedule_problems, steps_for

MS = 1_000_000


def test_steps_are_counted_in_integer_nanoseconds():
    # 0.1 s + 0.2 s at dt 0.1 s is 3 steps (in float seconds, 0.30000000000000004 / 0.1 -> 4)
    assert steps_for(100 * MS + 200 * MS, 100 * MS) == 3
    assert steps_for(300 * MS + 1, 100 * MS) == 4
    assert steps_for(0, 100 * MS) == 0
    with pytest.raises(DelayError, match="dt must be > 0"):
        steps_for(1, 0)


def test_warm_up_does_not_poison_the_estimate():
    """A 0.7 s first call (warm-up) must not size the delay at 21 steps instead of 10 (dt 33 ms)."""
    est = DelayEstimator(33 * MS, warmup=1)
    est.add(700 * MS)
    assert est.estimate() is None
    for _ in range(30):
        est.add(300 * MS)
    got = est.estimate()
    assert got is not None and got.steps == 10 and got.latency_ns == 300 * MS and got.samples == 30


def test_percentile_covers_the_tail_but_not_one_outlier_forever():
    est = DelayEstimator(10 * MS, warmup=0, window=20, percentile=95)
    for _ in range(19):
        est.add(50 * MS)
    est.add(500 * MS)  # one outlier in 20: the 95th percentile (rank 19) is still 50 ms
    assert est.estimate().steps == 5
    est.add(500 * MS)  # two in 20: rank 19 is now the slow tail
    assert est.estimate().steps == 50
    for _ in range(20):  # it slides out of the window
        est.add(50 * MS)
    assert est.estimate().steps == 5


def test_percentile_is_nearest_rank():
    assert percentile_ns([5, 1, 3], 50) == 3
    assert percentile_ns([1, 2, 3, 4], 100) == 4
    assert percentile_ns([7], 1) == 7
    with pytest.raises(DelayError, match="no latency samples"):
        percentile_ns([], 50)


def test_schedules_that_cannot_work_say_why():
    assert schedule_problems(3, execution_horizon=5, horizon=10) == []
    p = schedule_problems(5, execution_horizon=5, horizon=10)
    assert len(p) == 1 and "not shorter than the execution horizon (5 steps)" in p[0]
    p = schedule_problems(12, execution_horizon=8, horizon=10)
    assert any("every chunk arrives with all its actions in the past" in s for s in p)
    assert schedule_problems(2, execution_horizon=5, horizon=10, margin=3)[0].startswith(
        "the inference delay (2 steps + margin 3)"
    )
