"""Combining the live chunks' targets at one instant: ACT temporal ensembling, latest, blend, rtc.

``rtc`` (real-time chunking, Black et al. 2025, arXiv 2506.07339) is ``latest`` with the takeover
moved to the end of what the executor had committed: see :mod:`vla_ros.control.rtc`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MODES = ("temporal_ensemble", "latest", "blend", "rtc")


def ensemble_weights(n: int, m: float) -> np.ndarray:
    """Normalized ACT weights ``exp(-m * i)``, ``i = 0..n-1`` (``i = 0`` the oldest prediction)."""
    if n < 1:
        raise ValueError(f"ensemble_weights needs n >= 1 predictions, got {n}")
    w = np.exp(-float(m) * np.arange(n))
    return w / w.sum()


def temporal_ensemble(samples: Sequence[np.ndarray] | np.ndarray, m: float) -> np.ndarray:
    """Weighted mean of ``samples`` (oldest first; rows of an array, or a list of vectors) with
    :func:`ensemble_weights`.

    Computed exactly as ACT's online algorithm does (normalize weights, multiply, sum over
    predictions), so with one chunk per control step the result is identical to ACT's.
    """
    stacked = samples if isinstance(samples, np.ndarray) else np.stack(samples)
    w = ensemble_weights(stacked.shape[0], m)
    return (stacked * w[:, None]).sum(axis=0)


def blend_weight(step: int, blend_steps: int) -> float:
    """Weight of the new chunk ``step`` control ticks after a chunk switch (0 = the switch tick).

    Over ``blend_steps`` ticks the new chunk's weight rises ``1/(k+1), 2/(k+1), ... k/(k+1)``,
    then it is 1. ``blend_steps = 0`` switches at once (same as ``latest``).
    """
    if blend_steps <= 0 or step >= blend_steps:
        return 1.0
    return (step + 1) / (blend_steps + 1)
