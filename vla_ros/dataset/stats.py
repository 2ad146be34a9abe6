"""Feature statistics in the form of LeRobot's ``meta/stats.json`` and episode ``stats/*`` columns.

Per feature: ``min``, ``max``, ``mean``, ``std`` (population, ddof 0), ``count`` (frames) and the
quantiles ``q01 q10 q50 q90 q99``, the keys LeRobot 0.6.1 writes
(``lerobot/datasets/compute_stats.py``). Vectors give ``[D]`` arrays; images give ``[3, 1, 1]``
per-channel values of pixels scaled to ``[0, 1]``. Here every value is exact: quantiles
interpolate linearly between order statistics (``numpy.quantile``'s default), and image
quantiles come from exact per-channel histograms of the uint8 pixels (LeRobot estimates its
quantiles from running histograms and samples frames, so its own figures differ slightly).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

QUANTILES: dict[str, float] = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
Stats = dict[str, np.ndarray]


def vector_stats(values: np.ndarray) -> Stats:
    """Stats of ``values`` ``[N, D]`` (or ``[N]``, treated as ``[N, 1]``) over the N frames."""
    x = np.asarray(values, np.float64)
    x = x.reshape(len(x), -1)
    out: Stats = {
        "min": x.min(axis=0),
        "max": x.max(axis=0),
        "mean": x.mean(axis=0),
        "std": x.std(axis=0),
        "count": np.array([len(x)], np.int64),
    }
    for key, q in QUANTILES.items():
        out[key] = np.quantile(x, q, axis=0)
    return out


class ImageStats:
    """Accumulates RGB uint8 frames ``[H, W, 3]`` as per-channel 256-bin histograms."""

    def __init__(self) -> None:
        self.hist = np.zeros((3, 256), np.int64)
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        """Count one frame's pixels."""
        for c in range(3):
            self.hist[c] += np.bincount(rgb[..., c].ravel(), minlength=256)
        self.frames += 1

    def merged(self, others: Iterable[ImageStats]) -> ImageStats:
        """A new accumulator holding this one's and ``others``' frames."""
        out = ImageStats()
        for part in (self, *others):
            out.hist += part.hist
            out.frames += part.frames
        return out

    def stats(self) -> Stats:
        """The frames' stats, each ``[3, 1, 1]`` in ``[0, 1]`` (``count`` = frames, ``[1]``)."""
        levels = np.arange(256, dtype=np.float64) / 255.0
        n = self.hist.sum(axis=1).astype(np.float64)
        mean = (self.hist * levels).sum(axis=1) / n
        var = (self.hist * (levels[None, :] - mean[:, None]) ** 2).sum(axis=1) / n
        nonzero = [np.nonzero(h)[0] for h in self.hist]
        out: Stats = {
            "min": np.array([levels[i[0]] for i in nonzero]),
            "max": np.array([levels[i[-1]] for i in nonzero]),
            "mean": mean,
            "std": np.sqrt(var),
        }
        for key, q in QUANTILES.items():
            out[key] = np.array([_hist_quantile(h, q) for h in self.hist]) / 255.0
        shaped = {k: v.reshape(3, 1, 1) for k, v in out.items()}
        shaped["count"] = np.array([self.frames], np.int64)
        return shaped


def _hist_quantile(hist: np.ndarray, q: float) -> float:
    """``numpy.quantile(values, q)`` (linear) of the values a 256-bin count histogram holds."""
    cum = np.cumsum(hist)
    pos = q * (cum[-1] - 1)
    lo = int(np.floor(pos))
    v_lo = int(np.searchsorted(cum, lo, side="right"))
    v_hi = int(np.searchsorted(cum, min(lo + 1, cum[-1] - 1), side="right"))
    return v_lo + (pos - lo) * (v_hi - v_lo)


def to_json(stats: dict[str, Stats]) -> dict[str, dict[str, list]]:
    """``{feature: {stat: array}}`` as nested lists for ``json.dump``."""
    return {feat: {k: np.asarray(v).tolist() for k, v in s.items()} for feat, s in stats.items()}
