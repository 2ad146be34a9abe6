"""Delay feasibility: the inference delay in steps against the execution horizon (integer ns)."""

from __future__ import annotations

import pytest

from vla_ros.control.delay import DelayError, execution_horizon, feasibility

MS = 1_000_000


def test_point_one_plus_point_two_seconds_at_dt_point_one_is_three_steps_and_a_horizon_of_three_is_refused():
    f = feasibility(100 * MS + 200 * MS, 100 * MS, 3)
    assert (f.delay_steps, f.execution_horizon, f.horizon) == (3, 3, 3)
    assert not f.ok
    assert any("not shorter than the execution horizon (3 steps)" in p for p in f.problems)
    assert any("every chunk arrives with all its actions in the past" in p for p in f.problems)
    ok = feasibility(300 * MS, 100 * MS, 4)
    assert ok.ok and ok.delay_steps == 3 and ok.execution_horizon == 4


def test_max_chunk_age_cuts_the_execution_horizon():
    # action i is due i * dt after the start and used while that age <= max age
    assert execution_horizon(8, 20 * MS) == 8
    assert execution_horizon(8, 20 * MS, 40 * MS) == 3
    assert execution_horizon(8, 20 * MS, 39 * MS) == 2
    assert execution_horizon(8, 20 * MS, 10_000 * MS) == 8
    f = feasibility(60 * MS, 20 * MS, 8, max_chunk_age_ns=40 * MS)
    assert (f.delay_steps, f.execution_horizon) == (3, 3) and len(f.problems) == 1
    assert feasibility(60 * MS, 20 * MS, 8, max_chunk_age_ns=60 * MS).ok  # 4 actions > 3


def test_latency_longer_than_the_chunk_always_fails_and_the_offset_counts():
    f = feasibility(161 * MS, 20 * MS, 8)  # > 8 x 20 ms
    assert f.delay_steps == 9 and not f.ok
    # a time offset equal to the latency makes action 0 due when the chunk arrives
    assert feasibility(161 * MS, 20 * MS, 8, time_offset_ns=161 * MS).delay_steps == 0
    assert feasibility(60 * MS, 20 * MS, 8, time_offset_ns=-20 * MS).delay_steps == 4
    with pytest.raises(DelayError, match="latency and margin must be >= 0"):
        feasibility(-1, 20 * MS, 8)
    with pytest.raises(DelayError, match="horizon must be >= 1"):
        execution_horizon(0, 20 * MS)
