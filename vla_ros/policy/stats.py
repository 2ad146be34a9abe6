"""Policy counters, latency windows and chunk rate: what the policy node reports on /diagnostics."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from vla_ros.util.stats import percentiles_ms

#: counter names, in the order they are reported
COUNTERS = (
    "chunks_published",
    "stale_observations",
    "rejected_messages",
    "non_finite_outputs",
    "inference_errors",
)


@dataclass(frozen=True)
class StatsSnapshot:
    """Counters and latency percentiles (ms) over the most recent chunks."""

    counts: dict[str, int]
    latency_p50_ms: float
    latency_p99_ms: float
    infer_p50_ms: float
    infer_p99_ms: float


class PolicyStats:
    """Thread-safe counters plus a window of per-chunk timings.

    ``timings`` holds one ``(stamp->publish ns, runtime.infer ns, worker step ns)`` tuple per
    published chunk, newest last (at most ``window`` of them).
    """

    def __init__(self, window: int = 4096) -> None:
        if window < 1:
            raise ValueError(f"PolicyStats window must be >= 1, got {window}")
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self.timings: deque[tuple[int, int, int]] = deque(maxlen=window)

    def add(self, counter: str, n: int = 1) -> None:
        """Add ``n`` to ``counter`` (one of :data:`COUNTERS`)."""
        if counter not in self._counts:
            raise KeyError(f"unknown policy counter {counter!r}; expected one of {list(COUNTERS)}")
        with self._lock:
            self._counts[counter] += n

    def record_chunk(self, latency_ns: int, infer_ns: int, step_ns: int) -> None:
        """Count one published chunk and keep its timings."""
        with self._lock:
            self._counts["chunks_published"] += 1
            self.timings.append((latency_ns, infer_ns, step_ns))

    def count(self, counter: str) -> int:
        """The current value of ``counter``."""
        with self._lock:
            return self._counts[counter]

    def snapshot(self, recent: int = 256) -> StatsSnapshot:
        """Counters now, and p50/p99 of the latest ``recent`` chunks' latency and inference time."""
        with self._lock:
            rows = list(self.timings)[-recent:]
            counts = dict(self._counts)
        lat50, lat99 = percentiles_ms([r[0] for r in rows], (50, 99))
        inf50, inf99 = percentiles_ms([r[1] for r in rows], (50, 99))
        return StatsSnapshot(counts, lat50, lat99, inf50, inf99)


class RateMeter:
    """Events per second between successive readings of a monotonically growing count."""

    def __init__(self, t0_s: float, n0: int = 0) -> None:
        self._last = (t0_s, n0)

    def update(self, now_s: float, n: int) -> float:
        """Rate since the previous reading (0 when no time has passed); ``now_s`` becomes the last."""
        t_prev, n_prev = self._last
        self._last = (now_s, n)
        return (n - n_prev) / (now_s - t_prev) if now_s > t_prev else 0.0
