"""How far two outputs are apart: the figures every parity gate reports (max |a - b|, cosine).

NaN/inf must match exactly (a graph that gives NaN where the model does not is infinitely wrong);
the figures are taken over the finite elements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def same_nonfinite(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` have NaN at the same places and the same infinities."""
    return bool(
        np.array_equal(np.isnan(a), np.isnan(b))
        and np.array_equal(np.where(np.isinf(a), a, 0), np.where(np.isinf(b), b, 0))
    )


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b|`` over the finite elements; inf when the non-finite ones differ (a graph
    that gives NaN where the model does not, or the reverse); 0.0 when nothing is finite."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if not same_nonfinite(a, b):
        return float("inf")
    fin = np.isfinite(a)
    return float(np.max(np.abs(a[fin] - b[fin]))) if fin.any() else 0.0


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of ``a`` and ``b`` per batch sample (first axis), the lowest.

    Over the finite elements (non-finite ones must match, as in :func:`max_abs`, else NaN);
    1.0 when both samples are all zero, 0.0 when only one is.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if not same_nonfinite(a, b):
        return float("nan")
    fin = np.isfinite(a)
    a, b = np.where(fin, a, 0.0), np.where(fin, b, 0.0)
    rows = a.shape[0] if a.ndim >= 2 else 1
    a, b = a.reshape(rows, -1), b.reshape(rows, -1)
    worst = 1.0
    for x, y in zip(a, b):
        nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
        if nx == 0.0 and ny == 0.0:
            c = 1.0
        elif nx == 0.0 or ny == 0.0:
            c = 0.0
        else:
            c = float(np.clip(np.dot(x, y) / (nx * ny), -1.0, 1.0))
        worst = min(worst, c)
    return worst


def worst_cosine(values: Iterable[float]) -> float:
    """The lowest cosine of ``values`` (NaN, from a non-finite output, is the worst); 1.0 if none."""
    vals = list(values)
    return float("nan") if any(math.isnan(v) for v in vals) else min(vals, default=1.0)
