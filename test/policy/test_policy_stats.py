"""Policy counters, percentiles, chunk rate and the health summary."""

from __future__ import annotations

import math

import pytest

from vla_ros.policy import (
    COUNTERS,
    ERROR,
    OK,
    WARN,
    PolicyStats,
    RateMeter,
    health,
    percentiles_ms,
    status_values,
)
from vla_ros.util.faults import Fault

MS = 1_000_000


def test_percentiles_ms() -> None:
    assert all(math.isnan(v) for v in percentiles_ms([]))
    p50, p99 = percentiles_ms([k * MS for k in range(1, 102)])  # 1..101 ms
    assert p50 == pytest.approx(51.0) and p99 == pytest.approx(100.0)


def test_stats_counts_and_window() -> None:
    stats = PolicyStats(window=3)
    stats.add("stale_observations")
    stats.add("rejected_messages", 4)
    with pytest.raises(KeyError, match="unknown policy counter 'chunks'"):
        stats.add("chunks")
    for k in range(1, 6):
        stats.record_chunk(k * MS, 10 * k * MS, 0)
    assert list(stats.timings) == [(k * MS, 10 * k * MS, 0) for k in (3, 4, 5)]
    snap = stats.snapshot(recent=2)
    assert list(snap.counts) == list(COUNTERS)
    assert snap.counts["chunks_published"] == 5 and snap.counts["rejected_messages"] == 4
    assert snap.counts["stale_observations"] == 1 and snap.counts["inference_errors"] == 0
    assert snap.latency_p50_ms == pytest.approx(4.5) and snap.infer_p50_ms == pytest.approx(45.0)
    with pytest.raises(ValueError, match="window must be >= 1"):
        PolicyStats(window=0)


def test_rate_meter() -> None:
    meter = RateMeter(10.0)
    assert meter.update(12.0, 30) == pytest.approx(15.0)
    assert meter.update(12.0, 40) == 0.0  # no time passed
    assert meter.update(13.0, 45) == pytest.approx(5.0)


def test_health_levels() -> None:
    assert health({}, 12.34, 5.67) == (OK, "ok: 12.3 chunks/s, latency p50 5.7 ms")
    warn = {"image:wrist:encoding": Fault("rejected image: bad"), "joint_states:length": Fault("bad js")}
    level, message = health(warn, 0.0, 0.0)
    assert level == WARN and message == "rejected image: bad; bad js"
    faults = {
        **warn,
        "output:non_finite": Fault("NaN out"),
        "input:camera:top:stale": Fault("top old"),
        "worker:exception": Fault("boom" * 500),
    }
    level, message = health(faults, 0.0, 0.0)
    assert level == ERROR and message.startswith("no chunks: top old; NaN out; boom")
    assert len(message) == 1000 and "rejected image" not in message


def test_status_values_order() -> None:
    stats = PolicyStats()
    stats.record_chunk(2 * MS, MS, 3 * MS)
    values = status_values(
        policy_id="p@1",
        backend="onnxruntime",
        rate_hz=2.5,
        stats=stats.snapshot(),
        inputs={"camera:top": {"received": 7, "dropped": 1}},
        active={"b": Fault("second"), "a": Fault("first")},
    )
    assert values == [
        ("policy_id", "p@1"),
        ("backend", "onnxruntime"),
        ("chunk_rate_hz", "2.50"),
        ("latency_p50_ms", "2.000"),
        ("latency_p99_ms", "2.000"),
        ("infer_p50_ms", "1.000"),
        ("infer_p99_ms", "1.000"),
        ("delay_steps", "n/a"),
        ("delay_ns", "n/a"),
        ("delay_samples", "0"),
        ("chunks_published", "1"),
        ("stale_observations", "0"),
        ("rejected_messages", "0"),
        ("non_finite_outputs", "0"),
        ("inference_errors", "0"),
        ("dropped:camera:top", "1"),
        ("received:camera:top", "7"),
        ("fault:a", "first"),
        ("fault:b", "second"),
    ]
