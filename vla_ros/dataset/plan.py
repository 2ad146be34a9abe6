"""Episode windows -> planned dataset episodes: grid frames, state/action values, camera picks.

Each window (a recorded episode) is aligned on the fps grid (:func:`vla_ros.dataset.align.align`).
Frames where a stream has no sample within the tolerance are *missing*: they are reported and,
with ``on_gap='split'``, the window becomes one dataset episode per contiguous run of complete
frames; with ``on_gap='drop'`` a window with any missing frame is left out. When the action is
the next frame's state, each run's last frame has no action and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vla_ros.dataset.align import NS, Alignment, Window, align, describe_frames, runs
from vla_ros.dataset.mapping import TopicMap
from vla_ros.dataset.recorded import Recorded, Samples


@dataclass
class PlannedEpisode:
    """One dataset episode: frame stamps [ns], ``state [N, Ds]``, ``action [N, Da]``, camera picks.

    ``picks[camera]``: per frame, the ``(log_ns, stamp_ns)`` of the camera message it holds.
    """

    window: int
    stamps: np.ndarray
    state: np.ndarray
    action: np.ndarray
    picks: dict[str, list[tuple[int, int]]]
    task: str = ""


@dataclass
class WindowPlan:
    """A window's episodes and the sentences that report what was missing or left out."""

    episodes: list[PlannedEpisode] = field(default_factory=list)
    report: list[str] = field(default_factory=list)


@dataclass
class _Stream:
    """One stream inside a window, sorted by stamp."""

    stamps: np.ndarray
    logs: np.ndarray
    values: np.ndarray


def _in_window(samples: Samples, w: Window) -> _Stream:
    stamps, logs, values = samples.arrays()
    times = stamps if w.clock == "stamp" else logs
    keep = (times >= w.start_ns) & (times <= w.end_ns)
    order = np.argsort(stamps[keep], kind="stable")
    return _Stream(stamps[keep][order], logs[keep][order], values[keep][order])


def plan_window(
    index: int,
    w: Window,
    rec: Recorded,
    tmap: TopicMap,
    *,
    fps: int,
    tol_ns: int,
    on_gap: str = "split",
    min_frames: int = 1,
) -> WindowPlan:
    """The dataset episodes of window ``index`` (see the module docstring)."""
    label = f"recorded episode {index}"
    streams: dict[str, _Stream] = {}
    for cam, s in rec.cameras.items():
        streams[f"camera {cam!r}"] = _in_window(s, w)
    for name, s in rec.joints.items():
        streams[f"joint state {name!r}"] = _in_window(s, w)
    for name, s in rec.commands.items():
        streams[f"command {name!r}"] = _in_window(s, w)
    reference = next(iter(streams))
    aligned = align({k: s.stamps for k, s in streams.items()}, reference, fps, tol_ns)
    out = WindowPlan()
    if isinstance(aligned, str):
        out.report.append(f"{label}: left out: {aligned}")
        return out
    out.report += _missing_report(label, aligned)
    ok = aligned.complete
    if on_gap == "drop" and not ok.all():
        out.report.append(f"{label}: left out (--on-gap drop): {int((~ok).sum())} frames missing")
        return out
    next_state = tmap.action_topic is None
    for start, stop in runs(ok):
        if next_state:
            stop -= 1  # the last frame's action would be the state after the run
        if stop - start < max(min_frames, 1):
            t0 = (aligned.grid[start] - aligned.grid[0]) / NS
            out.report.append(
                f"{label}: {max(stop - start, 0)} frame(s) at {t0:.3f} s left out: shorter than "
                f"{max(min_frames, 1)} frame(s) between missing frames"
            )
            continue
        frames = np.arange(start, stop)
        state = _values(streams, aligned, "joint state", tmap.state_names, frames)
        if next_state:
            action = _values(streams, aligned, "joint state", tmap.action_names, frames + 1)
        else:
            action = _values(streams, aligned, "command", tmap.action_names, frames)
        picks = {}
        for cam in rec.cameras:
            s = streams[f"camera {cam!r}"]
            idx = aligned.picks[f"camera {cam!r}"][frames]
            picks[cam] = [(int(s.logs[i]), int(s.stamps[i])) for i in idx]
        out.episodes.append(PlannedEpisode(index, aligned.grid[frames], state, action, picks))
    if len(out.episodes) > 1:
        out.report.append(f"{label}: split into {len(out.episodes)} episodes at its missing frames")
    return out


def _values(
    streams: dict[str, _Stream], aligned: Alignment, kind: str, names: tuple[str, ...], frames: np.ndarray
) -> np.ndarray:
    """``[len(frames), len(names)]`` float32: each joint's picked value at each frame."""
    cols = []
    for name in names:
        key = f"{kind} {name!r}"
        cols.append(streams[key].values[aligned.picks[key][frames]])
    return np.stack(cols, axis=1).astype(np.float32)


def _missing_report(label: str, aligned: Alignment) -> list[str]:
    """One sentence per group of streams with the same missing frames (e.g. all joints of a message)."""
    groups: dict[bytes, list[str]] = {}
    for name, idx in aligned.missing.items():
        groups.setdefault(idx.tobytes(), []).append(name)
    lines = []
    for names in groups.values():
        idx = aligned.missing[names[0]]
        what = names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more streams"
        lines.append(
            f"{label}: {what}: no sample within the tolerance for "
            f"{describe_frames(idx, aligned.grid, int(aligned.grid[0]))} (from the episode's first frame)"
        )
    return lines
