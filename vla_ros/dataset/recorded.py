"""The first pass over a bag: every mapped topic's header stamps, log times and joint values.

Camera pixels are not kept here (the second pass decodes only the frames the grid picks), so
memory grows with the number of messages, not with their size. Joint positions are kept per
joint name, so joint states split over several messages (arm and gripper published apart)
align joint by joint.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_ros.dataset.mapping import FLOAT_ARRAY_TYPE, TRAJECTORY_TYPE, TopicMap
from vla_ros.eval.bag import BagSource

NS = 1_000_000_000
EPISODE_TYPES = (
    "std_msgs/msg/Bool",
    "std_msgs/msg/Int8",
    "std_msgs/msg/Int16",
    "std_msgs/msg/Int32",
    "std_msgs/msg/Int64",
    "std_msgs/msg/UInt8",
    "std_msgs/msg/UInt16",
    "std_msgs/msg/UInt32",
    "std_msgs/msg/UInt64",
)


@dataclass
class Samples:
    """One stream in read order: header stamps [ns], log times [ns], values (joints only)."""

    stamps: list[int] = field(default_factory=list)
    logs: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, stamp: int, log: int, value: float = 0.0) -> None:
        """Append one sample."""
        self.stamps.append(stamp)
        self.logs.append(log)
        self.values.append(value)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(stamps int64, logs int64, values float64)``."""
        return (np.asarray(self.stamps, np.int64), np.asarray(self.logs, np.int64), np.asarray(self.values))


@dataclass
class Recorded:
    """What the first pass found, per dataset input."""

    cameras: dict[str, Samples]
    joints: dict[str, Samples]
    commands: dict[str, Samples]
    instructions: list[tuple[int, str]] = field(default_factory=list)
    events: list[tuple[int, Any]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def data_logs(self) -> np.ndarray:
        """Log times of every camera, joint-state and command sample (for gap splitting)."""
        parts = [np.asarray(s.logs, np.int64) for s in (*self.cameras.values(), *self.joints.values())]
        parts += [np.asarray(s.logs, np.int64) for s in self.commands.values()]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def stamp_span(self) -> tuple[int, int]:
        """First and last header stamp [ns] of every camera, joint-state and command sample."""
        streams = [*self.cameras.values(), *self.joints.values(), *self.commands.values()]
        stamps = [t for s in streams for t in (min(s.stamps), max(s.stamps)) if s.stamps]
        return (min(stamps), max(stamps)) if stamps else (0, 0)


def stamp_ns(msg: Any) -> int:
    """A message's ``header.stamp`` in integer nanoseconds."""
    return int(msg.header.stamp.sec) * NS + int(msg.header.stamp.nanosec)


def read_recorded(
    bag: BagSource, tmap: TopicMap, joint_names: tuple[str, ...], episode_topic: str | None = None
) -> Recorded:
    """Pass one over ``bag`` for ``tmap``'s topics (and ``episode_topic``).

    ``joint_names``: the measured joints to keep (state, plus the action joints when the action is
    the next state). Messages that cannot be used are counted in :attr:`Recorded.skipped`.
    """
    rec = Recorded(
        cameras={c: Samples() for c in tmap.cameras},
        joints={j: Samples() for j in joint_names},
        commands={j: Samples() for j in tmap.action_names} if tmap.action_topic else {},
    )
    cam_of = {t: c for c, t in tmap.cameras.items()}
    topics = [*tmap.cameras.values(), tmap.joint_states]
    topics += [t for t in (tmap.action_topic, tmap.instruction, episode_topic) if t]
    for log, topic, msg in bag.messages(topics):
        if topic in cam_of:
            rec.cameras[cam_of[topic]].add(stamp_ns(msg), log)
        if topic == tmap.joint_states:
            _joint_state(rec.joints, msg, log, rec.skipped, topic)
        if topic == tmap.action_topic:
            _command(rec, tmap, msg, log, topic)
        if topic == tmap.instruction:
            rec.instructions.append((log, str(msg.data)))
        if topic == episode_topic:
            rec.events.append((log, msg.data if isinstance(msg.data, bool) else int(msg.data)))
    return rec


def _joint_state(into: dict[str, Samples], msg: Any, log: int, skipped: Counter, topic: str) -> None:
    """Per-joint samples of one JointState (a message with fewer positions than names is skipped)."""
    if len(msg.position) < len(msg.name):
        skipped[f"{topic}: JointState with fewer positions than names"] += 1
        return
    stamp = stamp_ns(msg)
    for name, pos in zip(msg.name, msg.position, strict=False):
        if name in into:
            into[name].add(stamp, log, float(pos))


def _command(rec: Recorded, tmap: TopicMap, msg: Any, log: int, topic: str) -> None:
    """Per-joint samples of one command message of ``tmap.action_type``.

    Float64MultiArray has no header and no names: its values are the action joints in order,
    at the message's log time. A JointTrajectory gives its first point, due at header stamp +
    ``time_from_start`` (log time + ``time_from_start`` when the stamp is 0: "start now").
    """
    if tmap.action_type == FLOAT_ARRAY_TYPE:
        data = np.asarray(msg.data, np.float64)
        if len(data) != len(tmap.action_names):
            rec.skipped[
                f"{topic}: Float64MultiArray of {len(data)} values for {len(tmap.action_names)} action joints"
            ] += 1
            return
        for name, value in zip(tmap.action_names, data, strict=True):
            rec.commands[name].add(log, log, float(value))
    elif tmap.action_type == TRAJECTORY_TYPE:
        if not len(msg.points) or len(msg.points[0].positions) < len(msg.joint_names):
            rec.skipped[f"{topic}: JointTrajectory without positions for every joint"] += 1
            return
        point = msg.points[0]
        start = stamp_ns(msg) or log
        due = start + int(point.time_from_start.sec) * NS + int(point.time_from_start.nanosec)
        for name, pos in zip(msg.joint_names, point.positions, strict=False):
            if name in rec.commands:
                rec.commands[name].add(due, log, float(pos))
    else:
        _joint_state(rec.commands, msg, log, rec.skipped, topic)
