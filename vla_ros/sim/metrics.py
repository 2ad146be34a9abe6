"""Smoothness and task metrics of closed-loop episodes (the latency study's columns).

* **seam jump** at a chunk boundary (where a chunk hands over to the next; the episode's first
  chunk, which starts the motion from rest, has none), over the control ticks from the new
  chunk joining the executor to one chunk step later, or to the end of an ``rtc`` hand-over
  that starts later (the hand-over: ``rtc`` goes from what it had committed to the chunk's
  next action, ``blend`` cross-fades): how far the command leaves
  the motion it was on, ``|c_b - (2 c_{b-1} - c_{b-2})|_inf`` (rad): the command's jump
  against a constant-velocity continuation of the two commands before it. A smooth splice
  scores ~0 whatever the robot's speed; a chunk that starts elsewhere than the robot is headed
  scores its offset (limited, as every command, by the executor's velocity limit, so the
  largest is about ``2 * v_max * period``: reversing at full speed). Black et al. 2025
  (real-time chunking, arXiv 2506.07339) show these discontinuities at chunk boundaries; the
  exact score is this project's.
* **jerk RMS**: the root mean square of the third finite difference of the commanded positions
  divided by ``period^3`` (rad/s^3), over all joints and ticks of the episode.

Rows aggregate episodes: success rate, mean time to success over the successful ones, the
largest and the median seam jump over all boundaries of all episodes, the mean of the
episodes' jerk RMS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vla_ros.sim.loop import Episode


def seam_jumps(
    commands: np.ndarray, boundaries: Sequence[int], window: int | Sequence[int] = 1
) -> np.ndarray:
    """Seam jump (rad, max over joints) of each chunk boundary of ``commands [T, n]``.

    The jump at tick ``b`` is ``|c_b - 2 c_{b-1} + c_{b-2}|_inf``; a boundary's seam is the
    largest jump over its ``window`` ticks ``b .. b + window - 1`` (cut at the next boundary and
    the end; ticks ``< 2`` have no jump). A window longer than one tick covers executors that
    switch to a chunk after it arrives (``rtc``: at the end of the committed prefix). ``window``
    is one for all boundaries or one per boundary (same order).

    Raises ``ValueError`` when ``commands`` is not ``[T, n]``, a boundary is outside it, a
    window is < 1, or the windows are not one per boundary.
    """
    c = np.asarray(commands, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"commands must be [ticks, joints], got shape {c.shape}")
    windows = [int(window)] * len(boundaries) if isinstance(window, int) else [int(w) for w in window]
    if len(windows) != len(boundaries):
        raise ValueError(
            f"got {len(windows)} windows for {len(boundaries)} boundaries; give one per boundary"
        )
    if windows and min(windows) < 1:
        raise ValueError(f"window must be >= 1 tick, got {min(windows)}")
    jumps = np.zeros(len(c))
    if len(c) >= 3:
        jumps[2:] = np.max(np.abs(c[2:] - 2.0 * c[1:-1] + c[:-2]), axis=1)
    pairs = sorted(zip(boundaries, windows, strict=True))
    bs = [b for b, _ in pairs]
    out = []
    for i, (b, win) in enumerate(pairs):
        if not 0 <= b < len(c):
            raise ValueError(f"boundary tick {b} is outside the {len(c)} recorded ticks")
        stop = min(b + win, bs[i + 1] if i + 1 < len(bs) else len(c))
        start = max(b, 2)
        if start < stop:
            out.append(float(jumps[start:stop].max()))
    return np.asarray(out, dtype=np.float64)


def jerk_rms(commands: np.ndarray, period_s: float) -> float:
    """RMS of the third difference of ``commands [T, n]`` over ``period_s^3`` (rad/s^3); 0 when T < 4.

    Raises ``ValueError`` for ``period_s <= 0`` or a shape other than ``[T, n]``.
    """
    c = np.asarray(commands, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"commands must be [ticks, joints], got shape {c.shape}")
    if not period_s > 0:
        raise ValueError(f"period_s must be > 0, got {period_s}")
    if len(c) < 4:
        return 0.0
    jerk = np.diff(c, n=3, axis=0) / period_s**3
    return float(np.sqrt(np.mean(jerk**2)))


def episode_metrics(episode: Episode, period_s: float) -> dict[str, Any]:
    """One recorded episode (``LoopConfig.record``): success, time to success, max seam, jerk.

    Raises ``ValueError`` when the episode was run without ``record``.
    """
    if not episode.commands_log:
        raise ValueError("the episode has no recorded commands; run it with LoopConfig(record=True)")
    commands = np.stack(episode.commands_log)
    # the first chunk starts the motion from rest: a boundary has a chunk before it
    windows: int | list[int] = episode.seam_window
    if len(episode.seam_windows) == len(episode.boundaries):
        windows = episode.seam_windows[1:]
    seams = seam_jumps(commands, episode.boundaries[1:], windows)
    return {
        "success": episode.success,
        "time_to_success_s": episode.time_to_success_s,
        "max_seam_jump": float(seams.max()) if seams.size else 0.0,
        "seam_jumps": seams.tolist(),
        "jerk_rms": jerk_rms(commands, period_s),
        "dropped": episode.dropped,
        "chunks": episode.chunks,
    }


def aggregate(per_episode: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A study row's numbers from :func:`episode_metrics` of its episodes (rounded for JSON).

    Raises ``ValueError`` for no episodes.
    """
    if not per_episode:
        raise ValueError("no episodes to aggregate")
    times = [m["time_to_success_s"] for m in per_episode if m["success"]]
    seams = [j for m in per_episode for j in m.get("seam_jumps", ())]
    return {
        "episodes": len(per_episode),
        "success_rate": round(float(np.mean([m["success"] for m in per_episode])), 4),
        "time_to_success_s": round(float(np.mean(times)), 4) if times else None,
        "max_seam_jump": round(float(max(m["max_seam_jump"] for m in per_episode)), 5),
        "median_seam_jump": round(float(np.median(seams)), 5) if seams else None,
        "jerk_rms": round(float(np.mean([m["jerk_rms"] for m in per_episode])), 3),
        "dropped_chunks": int(sum(m["dropped"] for m in per_episode)),
    }
