"""Episodes and the fixed-fps frame grid: pure functions over integer nanoseconds.

Two clocks, each used for what it can say:

- **Episode boundaries** are found in *log time* (when the recorder wrote each message): a pause
  in the recording (``gap``), an episode topic (``std_msgs/Bool`` or an integer episode number;
  these messages have no header) or a list of ``[start, end]`` seconds from the bag's start.
  A service log's calls carry a stamp: their windows are in header-stamp time
  (:mod:`~vla_ros.dataset.service_log`).
- **Frames** are aligned by *header stamps* (when each camera frame or joint state was measured):
  frame ``k`` of an episode is due at ``t0 + k / fps`` and holds, per stream, the sample whose
  stamp is nearest to it if that is at most ``tol_ns`` away (default half a frame period). A
  stream without such a sample makes the frame *missing*; missing frames are reported, never
  filled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

NS = 1_000_000_000


@dataclass(frozen=True)
class Window:
    """An episode's window ``[start_ns, end_ns]`` (inclusive) in the bag.

    ``clock``: ``'log'`` (the samples logged inside it) or ``'stamp'`` (the samples whose header
    stamps are inside it: boundaries from a service log's ``info.stamp``).
    """

    start_ns: int
    end_ns: int
    clock: str = "log"


def split_by_gap(log_ns: Sequence[int], gap_ns: int) -> list[Window]:
    """Windows separated by pauses of more than ``gap_ns`` between consecutive log times.

    ``log_ns``: every mapped message's log time, in any order. Empty input -> no window.
    """
    times = np.sort(np.asarray(log_ns, np.int64))
    if not len(times):
        return []
    cuts = np.nonzero(np.diff(times) > gap_ns)[0]
    starts = np.concatenate(([0], cuts + 1))
    ends = np.concatenate((cuts, [len(times) - 1]))
    return [Window(int(times[a]), int(times[b])) for a, b in zip(starts, ends, strict=True)]


def split_by_events(events: Sequence[tuple[int, object]], end_ns: int) -> list[Window]:
    """Windows from an episode topic's ``(log_ns, value)`` messages, in log order.

    A bool ``True`` opens an episode and ``False`` closes it (repeats are ignored; one still open
    at the end closes at ``end_ns``). Integers are episode numbers: each change of value starts
    a new episode, which lasts until the next change (or ``end_ns``).
    """
    windows: list[Window] = []
    open_at: int | None = None
    last: object = None
    for log_ns, value in events:
        if isinstance(value, bool):
            if value and open_at is None:
                open_at = log_ns
            elif not value and open_at is not None:
                windows.append(Window(open_at, log_ns))
                open_at = None
        elif value != last:
            if open_at is not None:
                windows.append(Window(open_at, log_ns - 1))
            open_at, last = log_ns, value
    if open_at is not None:
        windows.append(Window(open_at, end_ns))
    return windows


def split_by_list(pairs: Sequence[tuple[float, float]], bag_start_ns: int) -> list[Window]:
    """Windows from ``[(start_s, end_s), ...]`` seconds after the bag's first message.

    Raises ``ValueError`` naming a pair whose end is not after its start, or a negative start.
    """
    windows = []
    for start_s, end_s in pairs:
        if start_s < 0 or end_s <= start_s:
            raise ValueError(
                f"episode [{start_s}, {end_s}]: give [start, end] seconds from the bag's start with "
                "0 <= start < end"
            )
        windows.append(Window(bag_start_ns + round(start_s * NS), bag_start_ns + round(end_s * NS)))
    return windows


def frame_grid(start_ns: int, end_ns: int, fps: int) -> np.ndarray:
    """``start_ns + round(k * 1e9 / fps)`` for every ``k >= 0`` up to ``end_ns`` (int64 ns)."""
    if end_ns < start_ns:
        return np.zeros(0, np.int64)
    count = (end_ns - start_ns) * fps // NS + 1
    k = np.arange(count, dtype=np.int64)
    return start_ns + (2 * k * NS + fps) // (2 * fps)


def nearest(stamps: np.ndarray, grid: np.ndarray, tol_ns: int) -> np.ndarray:
    """For each grid time, the index of the nearest of ``stamps`` (sorted, int64) within ``tol_ns``.

    -1 where no stamp is that close. On a tie the earlier stamp wins.
    """
    if not len(stamps):
        return np.full(len(grid), -1, np.int64)
    right = np.searchsorted(stamps, grid, side="left").clip(0, len(stamps) - 1)
    left = (right - 1).clip(0, len(stamps) - 1)
    d_left = np.abs(grid - stamps[left])
    d_right = np.abs(stamps[right] - grid)
    pick = np.where(d_left <= d_right, left, right)
    dist = np.minimum(d_left, d_right)
    return np.where(dist <= tol_ns, pick, -1)


@dataclass
class Alignment:
    """One episode on the grid: frame stamps, each stream's pick per frame, what is missing."""

    grid: np.ndarray
    picks: dict[str, np.ndarray]
    missing: dict[str, np.ndarray] = field(default_factory=dict)  # stream -> frame indices

    @property
    def complete(self) -> np.ndarray:
        """Bool per frame: every stream has a sample."""
        ok = np.ones(len(self.grid), bool)
        for pick in self.picks.values():
            ok &= pick >= 0
        return ok


def align(streams: Mapping[str, np.ndarray], reference: str, fps: int, tol_ns: int) -> Alignment | str:
    """The frame grid over the time every stream covers, anchored on ``reference``'s stamps.

    ``streams``: name -> sorted int64 header stamps of one episode. The grid starts at the first
    ``reference`` stamp inside the common span (so frames land on camera frames) and ends where
    the first stream ends. Returns a sentence saying why there is no frame when the streams do
    not overlap in time (e.g. one stream stamped on another clock).
    """
    empty = [name for name, s in streams.items() if not len(s)]
    if empty:
        return f"no samples from {', '.join(empty)}"
    lo = max(int(s[0]) for s in streams.values())
    hi = min(int(s[-1]) for s in streams.values())
    if hi + tol_ns < lo:
        spans = "; ".join(f"{n}: {s[0] / NS:.3f}..{s[-1] / NS:.3f} s" for n, s in streams.items())
        return f"the streams' header stamps do not overlap ({spans}); are they on one clock?"
    ref = streams[reference]
    first = int(np.searchsorted(ref, lo - tol_ns, side="left"))
    if first >= len(ref):
        return f"{reference} has no stamp inside the common span"
    grid = frame_grid(int(ref[first]), hi + tol_ns, fps)
    picks = {name: nearest(s, grid, tol_ns) for name, s in streams.items()}
    result = Alignment(grid, picks)
    result.missing = {n: np.nonzero(p < 0)[0] for n, p in picks.items() if (p < 0).any()}
    return result


def runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous ``True`` ranges of ``ok`` as ``(start, stop)`` index pairs (stop exclusive)."""
    padded = np.concatenate(([False], np.asarray(ok, bool), [False]))
    edges = np.nonzero(np.diff(padded.astype(np.int8)))[0]
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def describe_frames(indices: np.ndarray, grid: np.ndarray, origin_ns: int) -> str:
    """``'3 frames at 1.200-1.300 s, 2.500 s'``: frame indices as time ranges from ``origin_ns``."""
    parts = [
        f"{(grid[a] - origin_ns) / NS:.3f} s"
        if b == a + 1
        else f"{(grid[a] - origin_ns) / NS:.3f}-{(grid[b - 1] - origin_ns) / NS:.3f} s"
        for a, b in _index_runs(indices)
    ]
    shown = ", ".join(parts[:5]) + (f" and {len(parts) - 5} more ranges" if len(parts) > 5 else "")
    return f"{len(indices)} frame{'s' if len(indices) != 1 else ''} at {shown}"


def _index_runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Sorted frame indices as contiguous ``(start, stop)`` runs."""
    if not len(indices):
        return []
    mask = np.zeros(int(indices.max()) + 1, bool)
    mask[indices] = True
    return runs(mask)
