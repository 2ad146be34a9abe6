"""The demo's report folder: ``report.json``, ``trajectories.png``, ``camera.gif`` (no ROS).

* ``report.json`` (:func:`summary`): settings, success rate, times to success, inference
  latency p50/p99, observation -> chunk latency, control jitter, counts, one row per episode.
* ``trajectories.png`` (:func:`write_trajectories`, matplotlib): each joint's measured position
  and the executor's command over the run, every action chunk's arrival marked (the chunk
  boundaries), each target's arrival dotted, episodes shaded green (done) or red (not).
* ``camera.gif`` (:func:`write_gif`, Pillow): the front and wrist cameras re-rendered from the
  measured joint states with the sim's own renderer (:func:`vla_ros.sim.render.render`, larger
  than the policy's 64 px), the target with its success circle and the fingertip drawn, one frame
  per ``1 / fps`` seconds of each episode (:func:`gif_frame_times`; 10 fps, less for runs
  longer than :data:`GIF_MAX_FRAMES` frames).

Percentiles use :func:`vla_ros.util.stats.percentiles_ms` (numpy's linear interpolation).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vla_ros.nodes.demo.record import RunRecord
from vla_ros.sim.render import camera_view, render, to_pixels
from vla_ros.sim.task import fingertip
from vla_ros.util.stats import percentiles_ms

JSON_NAME, PNG_NAME, GIF_NAME = "report.json", "trajectories.png", "camera.gif"
GIF_FPS = 10.0
#: a longer run gets a lower frame rate, so the GIF stays a few MB (Pillow holds every frame)
GIF_MAX_FRAMES = 1200
GIF_SIZE = 192  # px per camera view
_TEXT_H = 22  # px of the caption strip under the views
_TIP, _ZONE = (255, 0, 255), (120, 220, 120)


def _num(x: float | None, digits: int = 4) -> float | None:
    """JSON-safe: NaN/inf -> None, else rounded."""
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def jitter_ms(tick_ns: list[int], period_ns: int) -> tuple[float, float, float]:
    """``(median tick period, p50, p99 of |period - nominal|)`` in ms; NaNs with < 2 ticks."""
    if len(tick_ns) < 2:
        return float("nan"), float("nan"), float("nan")
    periods = np.diff(np.asarray(tick_ns, dtype=np.int64))
    (median,) = percentiles_ms(periods, (50,))
    p50, p99 = percentiles_ms(np.abs(periods - int(period_ns)), (50, 99))
    return median, p50, p99


def summary(run: RunRecord, files: dict[str, str] | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the module docstring); NaN becomes null."""
    n = len(run.episodes)
    times = [e.time_to_success_s for e in run.episodes if e.time_to_success_s is not None]
    inf50, inf99 = percentiles_ms(run.infer_ns, (50, 99))
    lat50, lat99 = percentiles_ms(run.latency_ns, (50, 99))
    period, jit50, jit99 = jitter_ms(run.tick_ns, run.control_period_ns)
    return {
        "settings": dict(run.settings),
        "episodes": n,
        "successes": len(times),
        "success_rate": _num(len(times) / n if n else float("nan")),
        "success_radius": run.success_radius,
        "time_to_success_s": {
            "per_episode": [_num(e.time_to_success_s, 3) for e in run.episodes],
            "mean": _num(float(np.mean(times)) if times else float("nan"), 3),
            "p50": _num(float(np.median(times)) if times else float("nan"), 3),
            "max": _num(max(times) if times else float("nan"), 3),
        },
        "inference_latency_ms": {"p50": _num(inf50, 3), "p99": _num(inf99, 3), "count": len(run.infer_ns)},
        "observation_to_chunk_ms": {
            "p50": _num(lat50, 3),
            "p99": _num(lat99, 3),
            "count": len(run.latency_ns),
        },
        "control": {
            "rate_hz": _num(1e9 / run.control_period_ns, 3),
            "tick_period_p50_ms": _num(period, 3),
            "jitter_p50_ms": _num(jit50, 3),
            "jitter_p99_ms": _num(jit99, 3),
            "overruns": int(run.overruns),
            "ticks": len(run.tick_ns),
        },
        "chunks": {"published": int(run.chunks_published), "received": len(run.chunk_arrival_ns)},
        "commands": {"published": int(run.commands_published), "received": len(run.command_t_ns)},
        "per_episode": [
            {
                "index": e.index,
                "targets": [[round(float(v), 4) for v in t] for t in e.targets],
                "success": e.success,
                "time_to_success_s": _num(e.time_to_success_s, 3),
                "reached_at_s": [_num(r, 3) for r in e.reached_at_s],
                "duration_s": _num(e.duration_s, 3),
                "start_distance": _num(e.start_distance),
                "final_distance": _num(e.final_distance),
                "min_distance": _num(e.min_distance),
            }
            for e in run.episodes
        ],
        "files": dict(files or {}),
    }


def _origin_ns(run: RunRecord) -> int:
    return run.episodes[0].start_ns if run.episodes else int(run.state_t_ns[0]) if len(run.state_t_ns) else 0


def write_trajectories(run: RunRecord, path: Path) -> Path:
    """``trajectories.png``: one panel per joint over the run's episodes (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    joints = list(run.joint_names)
    t0 = _origin_ns(run)
    fig, axes = plt.subplots(
        len(joints), 1, figsize=(12, 1.6 * len(joints) + 1.2), sharex=True, squeeze=False
    )
    spans = [(e.start_ns, e.end_ns) for e in run.episodes] or [(t0, t0)]
    for j, ax in enumerate(axes[:, 0]):
        for k, e in enumerate(run.episodes):
            ax.axvspan(
                (e.start_ns - t0) / 1e9,
                (e.end_ns - t0) / 1e9,
                color="tab:green" if e.success else "tab:red",
                alpha=0.06 if k % 2 else 0.12,
                lw=0,
            )
            ax.axvline((e.start_ns - t0) / 1e9, color="0.2", lw=0.8)
            for m, r in enumerate(e.reached_at_s):
                first_reach = j == 0 and k == 0 and m == 0
                ax.axvline(
                    (e.start_ns - t0) / 1e9 + r,
                    color="tab:green",
                    lw=0.9,
                    ls=":",
                    label="target reached" if first_reach else None,
                )
            if j == 0:
                ax.text(
                    (e.start_ns - t0) / 1e9,
                    1.01,
                    f" {e.index}",
                    transform=ax.get_xaxis_transform(),
                    fontsize=7,
                )
            for t_ns, values, style in (
                (run.state_t_ns, run.state, {"color": "tab:blue", "lw": 1.2}),
                (run.command_t_ns, run.command, {"color": "tab:orange", "lw": 0.8, "ls": "--"}),
            ):
                inside = (t_ns >= e.start_ns) & (t_ns <= e.end_ns)
                if inside.any():
                    first = j == 0 and k == 0
                    label = ("measured" if style["color"] == "tab:blue" else "command") if first else None
                    ax.plot((t_ns[inside] - t0) / 1e9, values[inside, j], label=label, **style)
        arrivals = np.asarray(run.chunk_arrival_ns)
        keep = np.zeros(len(arrivals), dtype=bool)
        for a, b in spans:
            keep |= (arrivals >= a) & (arrivals <= b)
        if keep.any():
            ax.vlines(
                (arrivals[keep] - t0) / 1e9,
                0,
                1,
                transform=ax.get_xaxis_transform(),
                color="0.45",
                lw=0.4,
                alpha=0.35,
                label="chunk arrival" if j == 0 else None,
            )
        ax.set_ylabel(f"{joints[j]}\n(rad)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("time since the first episode started (s)")
    s = run.settings
    ok = sum(e.success for e in run.episodes)
    axes[0, 0].set_title(
        f"vla-ros demo: task {s.get('task', '?')}, mode {s.get('mode', '?')}, injected latency "
        f"{s.get('latency_ms', 0):g} ms: {ok}/{len(run.episodes)} reached "
        "(green: done, red: not; grey: chunk arrivals; dotted: target reached)",
        fontsize=9,
    )
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def gif_frame_times(run: RunRecord, fps: float = GIF_FPS) -> list[tuple[int, int]]:
    """``(episode list index, t_ns)`` of every GIF frame: every ``1/fps`` s from each episode's start."""
    step = round(1e9 / fps)
    return [
        (k, int(t))
        for k, e in enumerate(run.episodes)
        for t in range(e.start_ns, max(e.end_ns, e.start_ns + 1), step)
    ]


def _view(positions: np.ndarray, camera: str, target: tuple[float, float], radius: float) -> np.ndarray:
    s = GIF_SIZE
    img = np.ascontiguousarray(render(positions, s, s, camera=camera, target=target))
    _centre, scale = camera_view(positions, s, s, camera)
    marks = np.rint(to_pixels(np.stack([np.asarray(target), fingertip(positions)]), positions, s, s, camera))
    (tx, ty), (px, py) = marks.astype(int).tolist()
    cv2.circle(img, (tx, ty), max(2, int(radius * scale + 0.5)), _ZONE, 1, cv2.LINE_AA)
    cv2.circle(img, (px, py), 5, _TIP, 2, cv2.LINE_AA)
    cv2.putText(img, camera, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (200, 200, 200), 1, cv2.LINE_AA)
    return img


def gif_frame(run: RunRecord, episode: int, t_ns: int) -> np.ndarray:
    """One ``[GIF_SIZE + 22, 2 * GIF_SIZE, 3]`` uint8 frame: front | wrist, and a caption."""
    e = run.episodes[episode]
    q = run.state_at(t_ns)
    if q is None:
        q = run.state[0]
    t_s = (t_ns - e.start_ns) / 1e9
    target = e.target_at(t_s)
    views = [_view(q, cam, target, run.success_radius) for cam in ("front", "wrist")]
    caption = np.zeros((_TEXT_H, 2 * GIF_SIZE, 3), dtype=np.uint8)
    d = float(np.linalg.norm(fingertip(q) - np.asarray(target)))
    reached = e.time_to_success_s is not None and t_s >= e.time_to_success_s
    text = f"episode {e.index}/{len(run.episodes)}  t {t_s:4.1f} s  distance {d:.3f}"
    if len(e.targets) > 1:
        text += f"  target {min(sum(r <= t_s for r in e.reached_at_s) + 1, len(e.targets))}/{len(e.targets)}"
    text += f"  done at {e.time_to_success_s:.2f} s" if reached else ""
    colour = (120, 230, 120) if reached else (230, 230, 230)
    cv2.putText(caption, text, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return np.vstack([np.hstack(views), caption])


def gif_fps(run: RunRecord) -> float:
    """:data:`GIF_FPS`, lowered so the run fits in about :data:`GIF_MAX_FRAMES` frames."""
    total_s = sum(max(e.duration_s, 0.0) for e in run.episodes)
    return min(GIF_FPS, GIF_MAX_FRAMES / total_s) if total_s > 0 else GIF_FPS


def write_gif(run: RunRecord, path: Path, fps: float = GIF_FPS) -> int:
    """``camera.gif``, one frame per :func:`gif_frame_times` entry, looping; returns the frame count.

    Each frame's caption carries the episode time (distinct per frame), so Pillow keeps every
    frame (it merges identical consecutive frames).
    """
    from PIL import Image

    times = gif_frame_times(run, fps)
    if not times:
        raise ValueError("no episode to draw: the GIF needs at least one episode with joint states")
    frames = (Image.fromarray(gif_frame(run, k, t)) for k, t in times)  # drawn as Pillow writes
    next(frames).save(
        path, save_all=True, append_images=frames, duration=round(1000 / fps), loop=0, optimize=False
    )
    return len(times)


def write_report(
    run: RunRecord,
    out_dir: Path,
    extra_files: dict[str, str] | None = None,
    recorded: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Write ``report.json``, ``trajectories.png`` and ``camera.gif`` into ``out_dir``; returns the summary.

    ``extra_files`` (name -> path, e.g. the MCAP recording) are listed in the JSON's ``files``;
    ``recorded`` (topic -> messages written) becomes its ``recorded_messages``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out_dir / JSON_NAME), "png": str(out_dir / PNG_NAME), "gif": str(out_dir / GIF_NAME)}
    write_trajectories(run, out_dir / PNG_NAME)
    fps = gif_fps(run)
    frames = write_gif(run, out_dir / GIF_NAME, fps)
    report = summary(run, {**files, **(extra_files or {})})
    report["gif_frames"] = frames
    report["gif_fps"] = round(fps, 4)
    if recorded is not None:
        report["recorded_messages"] = dict(sorted(recorded.items()))
    (out_dir / JSON_NAME).write_text(json.dumps(report, indent=2) + "\n")
    return report
