"""vla_ros.util.ns and vla_ros.util.stats: the shared time and percentile helpers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from vla_ros.util.ns import NS_PER_S, msg_to_ns, ns_to_stamp, seconds_to_ns, stamp_to_ns
from vla_ros.util.stats import latency_summary_ms, percentiles_ms


def test_nanosecond_round_trips() -> None:
    assert stamp_to_ns(3, 5) == 3 * NS_PER_S + 5
    assert msg_to_ns(SimpleNamespace(sec=2, nanosec=999_999_999)) == 2_999_999_999
    for ns in (0, 1, NS_PER_S - 1, NS_PER_S, 1_700_000_000_123_456_789, -1, -NS_PER_S - 7):
        sec, nanosec = ns_to_stamp(ns)
        assert 0 <= nanosec < NS_PER_S and stamp_to_ns(sec, nanosec) == ns
    assert seconds_to_ns(1.025) == 1_025_000_000  # rounded, not truncated (1.025 * 1e9 = 1024999999.99...)
    assert seconds_to_ns(1 / 3) == 333_333_333
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="not a finite number of seconds"):
            seconds_to_ns(bad)


def test_percentiles_and_summary_agree_across_units() -> None:
    ms = np.arange(1, 102, dtype=float)  # 1..101 ms
    p50, p90, p99 = percentiles_ms((ms * 1e6).astype(np.int64), (50, 90, 99))
    assert (p50, p99) == pytest.approx((51.0, 100.0))
    assert percentiles_ms(ms / 1e3, (90,), unit_s=1.0) == pytest.approx((p90,))
    summary = latency_summary_ms(ms / 1e3, unit_s=1.0)
    assert summary == pytest.approx(
        {"count": 101, "mean_ms": 51.0, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": 101.0}
    )
    assert latency_summary_ms([], unit_s=1e-9) == {"count": 0}
    assert all(math.isnan(v) for v in percentiles_ms([], (10, 50, 90)))
    with pytest.raises(ValueError, match="unit_s must be > 0"):
        percentiles_ms([1.0], unit_s=0.0)
