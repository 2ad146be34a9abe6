"""Assemble policy observations from the latest sensor messages: staleness, history, joint order.

Callbacks call :meth:`ObservationAssembler.push_image` / :meth:`push_joint_state`, which only
append a reference to a bounded buffer (O(1), no conversion). The worker thread calls
:meth:`ObservationAssembler.assemble` with the node clock's time, decodes the selected frames and
runs the policy.

Timebase and staleness (the rule this package uses everywhere):

- Every time is an integer nanosecond stamp taken from message headers, never arrival time.
- The observation stamp is the **oldest** stamp among its parts (the newest message of each
  camera and of each joint_states group that supplies a needed joint).
- Each part's newest message must be younger than its staleness limit **measured against the node
  clock** (``now_ns``; ROS time, so ``use_sim_time`` replays bags correctly): ``now - stamp <=
  limit``. Measuring against the clock, not against the newest part, also catches every input
  stopping at once. A stamp more than ``future_ns`` *ahead* of the clock is rejected too (clocks
  not synchronised, or ``use_sim_time`` set on only one side).

History (``history > 1``, when the card's ``io.obs_history`` asks for it): for each part, frame
``j`` steps back is the message stamped nearest to ``latest - j * history_dt``; until enough
messages have arrived the oldest one is repeated (padding, as at an episode start).

Joint states may arrive split across several publishers (arm, gripper, ...): each distinct list of
names is its own group and every needed joint is taken from the group that covers most of the
needed joints.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_ros.perception.errors import (
    MissingInputError,
    MissingJointError,
    NonFiniteInputError,
    ObservationError,
    StaleInputError,
)

NS_PER_S = 1_000_000_000


def stamp_to_ns(sec: int, nanosec: int) -> int:
    """``builtin_interfaces/Time`` fields -> integer nanoseconds."""
    return int(sec) * NS_PER_S + int(nanosec)


def ns_to_stamp(ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> ``(sec, nanosec)`` with ``0 <= nanosec < 1e9``."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return sec, nanosec


def seconds_to_ns(seconds: float) -> int:
    """Seconds (a parameter value) -> integer nanoseconds, rounded."""
    return round(float(seconds) * NS_PER_S)


@dataclass(frozen=True)
class StalenessLimits:
    """Maximum ages (ns) of the newest image / joint state, and the tolerated future skew."""

    image_ns: int
    state_ns: int
    future_ns: int = 50_000_000

    def __post_init__(self) -> None:
        for name in ("image_ns", "state_ns", "future_ns"):
            if getattr(self, name) < 0:
                raise ValueError(f"StalenessLimits.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Entry:
    """One buffered message: header stamp, arrival sequence number, the message (or payload)."""

    stamp_ns: int
    seq: int
    item: Any


class TimedBuffer:
    """Bounded buffer of stamped messages; ``push`` is O(1) and safe to call from callbacks.

    ``received`` counts pushes; ``dropped`` counts messages superseded before any observation
    used them (updated by :meth:`mark_consumed`).
    """

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError(f"TimedBuffer maxlen must be >= 1, got {maxlen}")
        self._lock = threading.Lock()
        self._entries: deque[Entry] = deque(maxlen=maxlen)
        self._seq = 0
        self._consumed_seq = 0
        self.received = 0
        self.dropped = 0

    def push(self, stamp_ns: int, item: Any) -> None:
        """Store a message; the oldest one falls out when full."""
        with self._lock:
            self._seq += 1
            self.received += 1
            self._entries.append(Entry(stamp_ns, self._seq, item))

    def snapshot(self) -> list[Entry]:
        """The buffered entries in arrival order (a shallow copy)."""
        with self._lock:
            return list(self._entries)

    def latest(self) -> Entry | None:
        """The most recently pushed entry, or None."""
        with self._lock:
            return self._entries[-1] if self._entries else None

    def mark_consumed(self, seq: int) -> None:
        """Record that entry ``seq`` was used; messages skipped since the last use are dropped."""
        with self._lock:
            if seq > self._consumed_seq:
                self.dropped += seq - self._consumed_seq - 1
                self._consumed_seq = seq


def select_history(entries: Sequence[Entry], count: int, dt_ns: int) -> list[Entry]:
    """Pick ``count`` entries, oldest first, spaced ``dt_ns`` back from the newest one.

    Frame ``j`` steps back is the entry whose stamp is nearest to ``latest - j*dt`` (ties go to
    the older one); before enough history exists this repeats the oldest entry (padding).
    """
    if not entries:
        raise ValueError("select_history needs at least one entry")
    if count == 1:
        return [entries[-1]]
    ordered = sorted(entries, key=lambda e: (e.stamp_ns, e.seq))
    stamps = [e.stamp_ns for e in ordered]
    newest = ordered[-1]
    out = []
    for j in range(count - 1, 0, -1):
        target = newest.stamp_ns - j * dt_ns
        i = bisect.bisect_left(stamps, target)
        if i == len(stamps) or (i > 0 and target - stamps[i - 1] <= stamps[i] - target):
            i -= 1
        out.append(ordered[i])
    out.append(newest)
    return out


class ObservationRejected(ObservationError):
    """One or more inputs could not be used; ``errors`` lists every cause."""

    def __init__(self, errors: list[ObservationError]) -> None:
        super().__init__("; ".join(str(e) for e in errors), cause=errors[0].cause)
        self.errors = errors


@dataclass
class Assembly:
    """The parts chosen for one observation (images not yet decoded)."""

    stamp_ns: int
    key: tuple[int, ...]
    images: dict[str, list[Entry]]
    state: np.ndarray  # float64 [history, state_dim]
    part_stamps: dict[str, int] = field(default_factory=dict)
    _consumed: list[tuple[TimedBuffer, int]] = field(default_factory=list, repr=False)


class ObservationAssembler:
    """Latest-message storage plus the staleness/history/joint-order logic of one policy."""

    def __init__(
        self,
        camera_names: Sequence[str],
        state_joints: Sequence[str],
        *,
        limits: StalenessLimits,
        history: int = 1,
        history_dt_ns: int = 0,
        camera_buffer: int | None = None,
        state_buffer: int | None = None,
        max_joint_groups: int = 16,
    ) -> None:
        if not camera_names:
            raise ValueError("ObservationAssembler needs at least one camera name")
        if len(set(camera_names)) != len(camera_names):
            raise ValueError(f"duplicate camera names {list(camera_names)}")
        if not state_joints:
            raise ValueError("ObservationAssembler needs at least one state joint")
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        if history > 1 and history_dt_ns <= 0:
            raise ValueError(f"history={history} needs history_dt_ns > 0, got {history_dt_ns}")
        self.camera_names = tuple(camera_names)
        self.state_joints = tuple(state_joints)
        self.limits = limits
        self.history = history
        self.history_dt_ns = history_dt_ns
        span_s = (history - 1) * history_dt_ns / NS_PER_S
        # Enough messages to cover the history span at up to 60 Hz cameras / 1 kHz joint states.
        cam_len = camera_buffer or max(2, int(np.ceil(span_s * 60)) + 2)
        state_len = state_buffer or max(2, int(np.ceil(span_s * 1000)) + 2)
        self._cameras = {name: TimedBuffer(cam_len) for name in self.camera_names}
        self._state_len = state_len
        self._groups: dict[tuple[str, ...], TimedBuffer] = {}
        self._groups_lock = threading.Lock()
        self._max_groups = max_joint_groups
        self._plan_cache: dict[tuple[tuple[str, ...], ...], Any] = {}
        self._last_key: tuple[int, ...] | None = None

    # ---- callbacks (cheap) -------------------------------------------------------------------

    def push_image(self, camera: str, stamp_ns: int, item: Any) -> None:
        """Store an image message (or decoded image) for ``camera``; no conversion here."""
        buf = self._cameras.get(camera)
        if buf is None:
            raise ValueError(f"unknown camera {camera!r}; expected one of {self.camera_names}")
        buf.push(stamp_ns, item)

    def push_joint_state(self, stamp_ns: int, names: Sequence[str], positions: Any) -> None:
        """Store a joint_states message's names and positions (a reference, no copy).

        Raises :class:`ObservationError` when names and positions differ in length, or when more
        than ``max_joint_groups`` distinct name lists have been seen.
        """
        if len(names) != len(positions):
            raise ObservationError(
                f"joint_states: {len(names)} names but {len(positions)} positions; every named "
                "joint needs a position",
                cause="joint_states:length",
            )
        key = tuple(names)
        buf = self._groups.get(key)
        if buf is None:
            with self._groups_lock:
                buf = self._groups.get(key)
                if buf is None:
                    if len(self._groups) >= self._max_groups:
                        raise ObservationError(
                            f"joint_states: more than {self._max_groups} different joint name "
                            f"lists seen (new one: {list(key)}); publishers must keep a fixed "
                            "name list",
                            cause="joint_states:groups",
                        )
                    buf = TimedBuffer(self._state_len)
                    self._groups[key] = buf
        buf.push(stamp_ns, positions)

    # ---- worker ------------------------------------------------------------------------------

    def _state_plan(self, groups: list[tuple[str, ...]]) -> list[tuple[tuple[str, ...], Any, Any]]:
        """Which group supplies which needed joint: [(group, dst indices, src indices)]."""
        cache_key = tuple(groups)
        plan = self._plan_cache.get(cache_key)
        if plan is not None:
            return plan
        needed = set(self.state_joints)
        ranked = sorted(groups, key=lambda g: (-len(needed.intersection(g)), g))
        todo = {name: i for i, name in enumerate(self.state_joints)}
        plan = []
        for group in ranked:
            dst, src = [], []
            for j, name in enumerate(group):
                if name in todo:
                    dst.append(todo.pop(name))
                    src.append(j)
            if dst:
                plan.append((group, np.array(dst, dtype=np.intp), np.array(src, dtype=np.intp)))
        if todo:
            received = sorted({n for g in groups for n in g})
            raise MissingJointError(
                f"joint_states lacks joint(s) {sorted(todo, key=self.state_joints.index)} "
                f"needed by the policy (state_joints); received joints: {received}; publish "
                "them or set the state_joints parameter to names that are published",
                cause="joint_states:missing_joint",
            )
        if len(self._plan_cache) > 64:
            self._plan_cache.clear()
        self._plan_cache[cache_key] = plan
        return plan

    def _check_age(
        self, what: str, cause: str, stamp_ns: int, now_ns: int, limit_ns: int
    ) -> ObservationError | None:
        age = now_ns - stamp_ns
        if age > limit_ns:
            return StaleInputError(
                f"{what}: newest message is {age / 1e6:.1f} ms old (limit {limit_ns / 1e6:.1f} ms);"
                " is the publisher running? (raise the staleness limit if it is just slow)",
                cause=f"{cause}:stale",
            )
        if -age > self.limits.future_ns:
            return StaleInputError(
                f"{what}: stamped {-age / 1e6:.1f} ms ahead of the node clock (tolerance "
                f"{self.limits.future_ns / 1e6:.1f} ms); clocks are not synchronised or "
                "use_sim_time differs between publisher and policy node",
                cause=f"{cause}:future",
            )
        return None

    def assemble(self, now_ns: int) -> Assembly:
        """Choose the parts of an observation at node time ``now_ns``.

        Raises :class:`ObservationRejected` listing every missing, stale, incomplete or
        non-finite input.
        """
        errors: list[ObservationError] = []
        images: dict[str, list[Entry]] = {}
        stamps: dict[str, int] = {}
        key: list[int] = []
        consumed: list[tuple[TimedBuffer, int]] = []
        for name, buf in self._cameras.items():
            entries = buf.snapshot()
            if not entries:
                errors.append(
                    MissingInputError(
                        f"camera {name!r}: no image received yet", cause=f"camera:{name}:missing"
                    )
                )
                continue
            newest = entries[-1]
            err = self._check_age(
                f"camera {name!r}", f"camera:{name}", newest.stamp_ns, now_ns, self.limits.image_ns
            )
            if err is not None:
                errors.append(err)
                continue
            images[name] = select_history(entries, self.history, self.history_dt_ns)
            stamps[f"camera:{name}"] = newest.stamp_ns
            key.append(newest.seq)
            consumed.append((buf, newest.seq))

        state = np.empty((self.history, len(self.state_joints)), dtype=np.float64)
        with self._groups_lock:
            groups = dict(self._groups)
        if not groups:
            errors.append(
                MissingInputError(
                    "joint_states: no message received yet", cause="joint_states:missing"
                )
            )
        else:
            try:
                plan = self._state_plan(list(groups))
            except MissingJointError as exc:
                errors.append(exc)
                plan = []
            for group, dst, src in plan:
                buf = groups[group]
                entries = buf.snapshot()
                newest = entries[-1]
                label = "joint_states" if len(groups) == 1 else f"joint_states {list(group)}"
                err = self._check_age(
                    label, "joint_states", newest.stamp_ns, now_ns, self.limits.state_ns
                )
                if err is not None:
                    errors.append(err)
                    continue
                for t, entry in enumerate(
                    select_history(entries, self.history, self.history_dt_ns)
                ):
                    state[t, dst] = np.asarray(entry.item, dtype=np.float64)[src]
                stamps[f"joint_states:{len(stamps)}"] = newest.stamp_ns
                key.append(newest.seq)
                consumed.append((buf, newest.seq))
            if plan and not errors and not np.isfinite(state).all():
                bad = [self.state_joints[i] for i in np.nonzero(~np.isfinite(state).all(0))[0]]
                errors.append(
                    NonFiniteInputError(
                        f"joint_states: non-finite position for joint(s) {bad}; fix the driver or "
                        "drop those joints from state_joints",
                        cause="joint_states:non_finite",
                    )
                )
        if errors:
            raise ObservationRejected(errors)
        return Assembly(
            stamp_ns=min(stamps.values()),
            key=tuple(key),
            images=images,
            state=state,
            part_stamps=stamps,
            _consumed=consumed,
        )

    def is_new(self, assembly: Assembly, require_all: bool = False) -> bool:
        """Whether ``assembly`` is worth an inference, compared with the last consumed one.

        ``require_all=False``: some part is a newer message. ``require_all=True``: every part is
        (each camera has a new frame and the joint state is new), so one inference per synchronized
        set of inputs: separate topics arriving one by one never trigger a partly stale inference.
        """
        last = self._last_key
        if last is None or len(last) != len(assembly.key):
            return True
        if require_all:
            return all(new != old for new, old in zip(assembly.key, last, strict=True))
        return assembly.key != last

    def mark_consumed(self, assembly: Assembly) -> None:
        """Record that ``assembly`` was used for inference (updates dropped counters)."""
        for buf, seq in assembly._consumed:
            buf.mark_consumed(seq)
        self._last_key = assembly.key

    def counters(self) -> dict[str, dict[str, int]]:
        """Per input: messages received and dropped (superseded before use)."""
        out = {
            f"camera:{name}": {"received": b.received, "dropped": b.dropped}
            for name, b in self._cameras.items()
        }
        with self._groups_lock:
            groups = list(self._groups.values())
        out["joint_states"] = {
            "received": sum(b.received for b in groups),
            "dropped": sum(b.dropped for b in groups),
        }
        return out
