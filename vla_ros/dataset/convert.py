"""rosbag2 recording -> LeRobot v3 dataset folder (see :mod:`vla_ros.dataset`).

Two passes over the bag: the first reads stamps, joint values, instructions and episode
events (:mod:`~vla_ros.dataset.recorded`), plans every episode on the fps grid
(:mod:`~vla_ros.dataset.plan`); the second decodes only the camera frames the grid picked and
writes them as PNG. Everything is written into a temporary folder beside ``out`` that is renamed
to ``out`` at the end, so a failed conversion leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.dataset.align import NS, Window, split_by_events, split_by_gap, split_by_list
from vla_ros.dataset.lerobot_v3 import DataWriter, EpisodeFrames, image_key, make_features, write_meta
from vla_ros.dataset.mapping import DatasetError, TopicMap, topic_map
from vla_ros.dataset.plan import PlannedEpisode, plan_window
from vla_ros.dataset.recorded import EPISODE_TYPES, Recorded, read_recorded
from vla_ros.dataset.service_log import EVENT_SUFFIX, check_service, read_calls, service_windows
from vla_ros.dataset.service_types import ServiceEventTypes
from vla_ros.dataset.stats import ImageStats, Stats, vector_stats
from vla_ros.eval.bag import BagSource, resolve_topic


@dataclass
class Options:
    """What ``vla-ros bag2lerobot`` was asked for (see its ``--help`` for each field)."""

    bag: Path
    out: Path
    params: Path | None = None
    card: str | None = None
    namespace: str = "/"
    fps: int | None = None
    tolerance_s: float | None = None
    gap_s: float = 1.0
    episode_topic: str | None = None
    episode_service: str | None = None
    episodes: list[tuple[float, float]] | None = None
    task: str | None = None
    robot_type: str | None = None
    action: str = "auto"
    action_topic: str | None = None
    on_gap: str = "split"
    min_frames: int = 1
    distro: str = "humble"


@dataclass
class Result:
    """What was written: fps, frames, episodes, and every frame that is not in the dataset and why."""

    out: Path
    fps: int
    fps_source: str
    tolerance_s: float
    frames: int
    episodes: list[dict[str, Any]]
    tasks: list[str]
    topics: dict[str, Any]
    report: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def convert(opts: Options) -> Result:
    """Convert ``opts.bag`` into a new dataset folder ``opts.out``.

    Raises :class:`DatasetError` or :class:`~vla_ros.eval.bag.BagError` (both ``ValueError``)
    naming the bad input and the fix: ``out`` exists, a topic is missing or of the wrong type,
    no joint states, an empty bag, a bad YAML or card, no complete frame, a camera whose frame
    size changes, an ``--episode-service`` that is not recorded, cannot mark episodes or starts
    none. Nothing is written then.
    """
    if opts.out.exists():
        raise DatasetError(f"--out {str(opts.out)!r} already exists; choose a new folder or delete it first")
    from vla_ros.eval.setup import load_values

    try:
        values = load_values(opts.params, namespace=opts.namespace)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    card = _load_card(opts.card if opts.card is not None else values.policy["card"])
    service_types = ServiceEventTypes(opts.bag)
    with BagSource(opts.bag, distro=opts.distro, types=service_types) as bag:
        tmap = topic_map(
            bag,
            values.policy,
            values.executor,
            card,
            namespace=opts.namespace,
            action=opts.action,
            action_topic=opts.action_topic,
        )
        episode_topic = None
        if opts.episode_topic:
            episode_topic = resolve_topic(opts.episode_topic, opts.namespace)
            bag.require(episode_topic, EPISODE_TYPES, "episode boundaries", param="--episode-topic")
        service = None
        if opts.episode_service and not opts.episodes and not opts.episode_topic:
            service = check_service(bag, service_types, opts.episode_service, opts.namespace)
        measured = tmap.state_names + (tmap.action_names if tmap.action_topic is None else ())
        rec = read_recorded(bag, tmap, tuple(dict.fromkeys(measured)), episode_topic)
        _check_joints(rec, tmap)
        if service:
            windows, service_notes = _service_windows(opts, bag, rec, *service)
        else:
            windows, service_notes = _windows(opts, bag.start_ns, bag.end_ns, rec), []
        fps, fps_source = _fps(opts, rec)
        tol_ns = round(opts.tolerance_s * NS) if opts.tolerance_s is not None else NS // (2 * fps)
        report: list[str] = []
        planned: list[PlannedEpisode] = []
        for i, w in enumerate(windows):
            wp = plan_window(
                i, w, rec, tmap, fps=fps, tol_ns=tol_ns, on_gap=opts.on_gap, min_frames=opts.min_frames
            )
            if wp.episodes:
                task = _task(opts, values.policy, rec, w, i)
                for ep in wp.episodes:
                    ep.task = task
            planned += wp.episodes
            report += wp.report
        if not planned:
            why = "; ".join(report) or "the bag has no samples in any episode window"
            raise DatasetError(
                f"no complete frame at {fps} fps in {str(opts.bag)!r} ({why}); check --fps, "
                "--tolerance-s and the episode options"
            )
        tmp = Path(tempfile.mkdtemp(prefix=f".{opts.out.name}.", dir=_existing_parent(opts.out)))
        try:
            episodes, tasks = _write(bag, tmp, planned, windows, tmap, fps, opts.robot_type)
            opts.out.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp, opts.out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    notes = list(tmap.notes) + [f"{n} {why} (skipped)" for why, n in rec.skipped.items()] + list(bag.notes)
    notes += service_notes
    notes += [
        f"{n} messages on {topic} cannot be decoded and are not in the dataset: {bag.decode_errors[topic]}"
        for topic, n in bag.undecodable.items()
    ]
    topics = {
        "cameras": tmap.cameras,
        "joint_states": tmap.joint_states,
        "action": tmap.action_topic or "next state",
        "instruction": tmap.instruction,
    }
    return Result(
        opts.out,
        fps,
        fps_source,
        tol_ns / NS,
        sum(len(e.state) for e in planned),
        episodes,
        tasks,
        topics,
        report,
        notes,
    )


def _load_card(card: str) -> Any | None:
    """The policy card for camera and joint names, or None when none is set."""
    if not card:
        return None
    from vla_ros.contract.card import PolicyCard
    from vla_ros.sim.cards import resolve_card

    try:
        return PolicyCard.load(resolve_card("" if card == "bundled" else card))
    except ValueError as exc:
        raise DatasetError(f"policy card {card!r}: {exc}") from None


def _check_joints(rec: Recorded, tmap: TopicMap) -> None:
    """Every named joint must appear in the recorded joint states (and commands)."""
    absent = [j for j, s in rec.joints.items() if not s.stamps]
    if absent:
        raise DatasetError(
            f"{tmap.joint_states} never reports joints {absent}; its messages must name them "
            "(or set policy_node state_joints / action_joints to the names the robot publishes)"
        )
    absent = [j for j, s in rec.commands.items() if not s.stamps]
    if absent:
        raise DatasetError(
            f"{tmap.action_topic} never commands joints {absent}; set policy_node action_joints or "
            "executor_node joint_names to the commanded joints, or pass --action next_state"
        )


def _windows(opts: Options, start_ns: int, end_ns: int, rec: Recorded) -> list[Window]:
    """Episode windows from ``--episodes``, ``--episode-topic`` or ``--gap-s`` (in that order;
    ``--episode-service`` comes before ``--gap-s``: :func:`_service_windows`)."""
    if opts.episodes:
        try:
            return split_by_list(opts.episodes, start_ns)
        except ValueError as exc:
            raise DatasetError(f"--episodes: {exc}") from None
    if opts.episode_topic:
        windows = split_by_events(rec.events, end_ns)
        if not windows:
            raise DatasetError(
                f"--episode-topic {opts.episode_topic}: no episode starts in the bag ({len(rec.events)} "
                "messages; a Bool true or an integer episode number starts one)"
            )
        return windows
    return split_by_gap(rec.data_logs(), round(opts.gap_s * NS))


def _service_windows(
    opts: Options, bag: BagSource, rec: Recorded, topic: str, kind: str
) -> tuple[list[Window], list[str]]:
    """Episode windows (header-stamp clock) from ``--episode-service`` calls, and the notes."""
    first, last = rec.stamp_span()
    service = topic[: -len(EVENT_SUFFIX)]
    calls = read_calls(bag, topic)
    windows, notes = service_windows(calls, kind, last, service, first)
    if not windows:
        how = "a SetBool call with data true" if kind == "set_bool" else "the first call"
        raise DatasetError(
            f"--episode-service {service}: no episode starts in the bag ({len(calls)} calls "
            f"on {topic}; {how} starts one){'; ' + '; '.join(notes) if notes else ''}"
        )
    return windows, notes


def _fps(opts: Options, rec: Recorded) -> tuple[int, str]:
    """``--fps``, else the first camera's rate (median header-stamp period), rounded to an integer."""
    if opts.fps:
        return opts.fps, "--fps"
    if not rec.cameras:
        raise DatasetError("no camera to take the frame rate from; pass --fps")
    cam, samples = next(iter(rec.cameras.items()))
    periods = np.diff(np.sort(np.asarray(samples.stamps, np.int64)))
    periods = periods[periods > 0]
    if not len(periods):
        raise DatasetError(f"camera {cam!r} has fewer than two distinct stamps; pass --fps")
    median = float(np.median(periods))
    fps = max(1, round(NS / median))
    return fps, f"camera {cam!r}: median period {median / 1e6:.2f} ms"


def _task(opts: Options, policy: dict[str, Any], rec: Recorded, w: Window, index: int) -> str:
    """``--task``; else the instruction in force when the episode starts (or the first during it);
    else policy_node ``instruction``."""
    if opts.task:
        return opts.task
    before = [text for log, text in rec.instructions if log <= w.start_ns]
    during = [text for log, text in rec.instructions if w.start_ns < log <= w.end_ns]
    task = (before[-1:] or during[:1] or [policy["instruction"]])[0]
    if not task:
        raise DatasetError(
            f"recorded episode {index} has no task: record vla/instruction (std_msgs/String), set "
            "policy_node instruction in --params, or pass --task"
        )
    return task


def _existing_parent(path: Path) -> Path:
    """The nearest existing folder above ``path`` (the temporary folder goes there)."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    return parent


def _write(
    bag: BagSource,
    root: Path,
    planned: list[PlannedEpisode],
    windows: list[Window],
    tmap: TopicMap,
    fps: int,
    robot_type: str | None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Second pass: camera frames -> PNG, then every file. Returns (episode rows, tasks)."""
    from vla_ros.dataset.frames import episode_images

    tasks = list(dict.fromkeys(ep.task for ep in planned))
    shapes: dict[str, tuple[int, int]] = {}
    features = make_features(
        list(tmap.state_names), list(tmap.action_names), dict.fromkeys(tmap.cameras, (0, 0))
    )
    writer = DataWriter(root, features, fps)
    rows: list[dict[str, Any]] = []
    columns: dict[str, list[np.ndarray]] = {}
    image_stats: dict[str, list[ImageStats]] = {cam: [] for cam in tmap.cameras}
    try:
        for i, ep in enumerate(planned):
            pngs, stats = episode_images(bag, ep, tmap.cameras, shapes)
            frames = EpisodeFrames(ep.state, ep.action, pngs, tasks.index(ep.task))
            chunk, file = writer.write(i, frames)
            ep_columns = _index_columns(len(frames), i, writer.frames - len(frames), frames.task_index, fps)
            ep_columns = {"observation.state": ep.state, "action": ep.action, **ep_columns}
            ep_stats: dict[str, Stats] = {k: vector_stats(v) for k, v in ep_columns.items()}
            for cam, s in stats.items():
                ep_stats[image_key(cam)] = s.stats()
                image_stats[cam].append(s)
            for k, v in ep_columns.items():
                columns.setdefault(k, []).append(v)
            rows.append(
                {
                    "episode_index": i,
                    "tasks": [ep.task],
                    "length": len(frames),
                    "data/chunk_index": chunk,
                    "data/file_index": file,
                    "dataset_from_index": writer.frames - len(frames),
                    "dataset_to_index": writer.frames,
                    "stats": ep_stats,
                }
            )
    finally:
        writer.close()
    features = make_features(list(tmap.state_names), list(tmap.action_names), shapes)
    total: dict[str, Stats] = {k: vector_stats(np.concatenate(v)) for k, v in columns.items()}
    for cam, parts in image_stats.items():
        total[image_key(cam)] = parts[0].merged(parts[1:]).stats()
    write_meta(
        root, fps=fps, features=features, robot_type=robot_type, tasks=tasks, episodes=rows, stats=total
    )
    summary = [
        {k: v for k, v in r.items() if k != "stats"}
        | {"window": ep.window, "first_stamp_ns": int(ep.stamps[0])}
        for r, ep in zip(rows, planned, strict=True)
    ]
    return summary, tasks


def _index_columns(
    n: int, episode: int, first_index: int, task_index: int, fps: int
) -> dict[str, np.ndarray]:
    """The index features of one episode as the data file holds them."""
    frame = np.arange(n, dtype=np.int64)
    return {
        "timestamp": (frame / fps).astype(np.float32),
        "frame_index": frame,
        "episode_index": np.full(n, episode, np.int64),
        "index": first_index + frame,
        "task_index": np.full(n, task_index, np.int64),
    }
