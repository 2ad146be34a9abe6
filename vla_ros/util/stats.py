"""Percentiles and latency summaries in milliseconds, from samples in any time unit.

One implementation (numpy's default linear interpolation) for every latency report in vla_ros:
the policy node's diagnostics, the runtime's stage timings and benchmark, eval's replay metrics,
the demo report and the doctor (test/util/test_one_summary.py keeps it the only one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def _ms(samples: Iterable[float] | np.ndarray, unit_s: float) -> np.ndarray:
    if not unit_s > 0:
        raise ValueError(f"unit_s must be > 0 (seconds per sample unit, 1e-9 for ns), got {unit_s!r}")
    values = samples if isinstance(samples, np.ndarray) else list(samples)
    return np.asarray(values, dtype=np.float64) * (unit_s * 1e3)


def percentiles_ms(
    samples: Iterable[float] | np.ndarray, qs: Sequence[float] = (50, 99), *, unit_s: float = 1e-9
) -> tuple[float, ...]:
    """Percentiles ``qs`` (0..100) in milliseconds of samples given in ``unit_s`` seconds.

    The default unit is nanoseconds (``unit_s=1e-9``). Each value is NaN when there are no samples.
    """
    a = _ms(samples, unit_s)
    if a.size == 0:
        return tuple(float("nan") for _ in qs)
    return tuple(float(v) for v in np.percentile(a, list(qs)))


def latency_summary_ms(samples: Iterable[float] | np.ndarray, *, unit_s: float) -> dict[str, float]:
    """``count``, ``mean_ms``, ``p50_ms``, ``p90_ms``, ``p99_ms``, ``max_ms`` of latency samples.

    Samples are in ``unit_s`` seconds (1.0 for seconds, 1e-9 for nanoseconds); ``{"count": 0}``
    when there are none.
    """
    a = _ms(samples, unit_s)
    if a.size == 0:
        return {"count": 0}
    p50, p90, p99 = np.percentile(a, (50, 90, 99))
    return {
        "count": int(a.size),
        "mean_ms": float(a.mean()),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "max_ms": float(a.max()),
    }
