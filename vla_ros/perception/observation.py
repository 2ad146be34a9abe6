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
- Liveness: with a ``liveness_clock`` (the node passes ``time.monotonic_ns``) each part's newest
  message must also have *arrived* within its staleness limit on that steady clock, so a ROS clock
  that stands still (``use_sim_time`` with a ``/clock`` that stopped) still stops the policy.
  Offline replay (eval) gives no liveness clock: bag time is the only time there.
- Inputs that lie about time get their own diagnosis (:mod:`vla_ros.util.clocks`), one error for
  all the parts concerned: ``unstamped`` (``header.stamp`` is 0) and ``clock`` (stamps from
  another clock: far from the node clock, or already older than the limit when they arrived).

History (``history > 1``, when the card's ``io.obs_history`` asks for it): for each part, frame
``j`` steps back is the message stamped nearest to ``latest - j * history_dt``; until enough
messages have arrived the oldest one is repeated (padding, as at an episode start).

Joint states may arrive split across several publishers (arm, gripper, ...): each distinct list of
names is its own *group*. Every needed joint is taken from a fresh group if there is one; among
those, from the group covering most needed joints, and among equals from the one that received a
message last (the freshest wins: a driver restarted with another name order, or one stray message
with an extra name, takes over or falls back within one staleness limit). A group that supplies
nothing and is no longer fresh expires; a message naming none of the needed joints is not stored;
when ``max_joint_groups`` groups exist, a new one replaces the one that received a message least
recently, so no bounded cache can lock a live publisher out. A message naming a joint twice is
rejected (which position is meant cannot be known).
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections import deque
from collections.abc import Callable, Sequence
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
from vla_ros.util.clocks import (
    clock_advice,
    describe_offset,
    is_other_clock,
    is_unstamped,
)
from vla_ros.util.names import repeated_names

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
    used them (updated by :meth:`mark_consumed`); ``received_ns`` is the steady-clock arrival time
    of the newest message (-1: not measured).
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
        self.received_ns = -1

    def push(self, stamp_ns: int, item: Any, received_ns: int = -1) -> None:
        """Store a message (arrived at steady time ``received_ns``, -1: unknown); the oldest one
        falls out when full."""
        with self._lock:
            self._seq += 1
            self.received += 1
            self.received_ns = received_ns
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


#: how many joint names of messages that carry none of the needed joints are remembered (for the
#: "received joints" of a missing-joint error)
MAX_OTHER_NAMES = 256


class ObservationAssembler:
    """Latest-message storage plus the staleness/history/joint-order logic of one policy.

    ``liveness_clock`` (steady integer ns, e.g. ``time.monotonic_ns``; None: no liveness check)
    is also a plain attribute the node may set before messages arrive.
    """

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
        liveness_clock: Callable[[], int] | None = None,
    ) -> None:
        if not camera_names:
            raise ValueError("ObservationAssembler needs at least one camera name")
        if len(set(camera_names)) != len(camera_names):
            raise ValueError(f"duplicate camera names {list(camera_names)}")
        if not state_joints:
            raise ValueError("ObservationAssembler needs at least one state joint")
        if len(set(state_joints)) != len(state_joints):
            raise ValueError(f"duplicate state joint names {list(state_joints)}")
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        if history > 1 and history_dt_ns <= 0:
            raise ValueError(f"history={history} needs history_dt_ns > 0, got {history_dt_ns}")
        if max_joint_groups < 1:
            raise ValueError(f"max_joint_groups must be >= 1, got {max_joint_groups}")
        self.camera_names = tuple(camera_names)
        self.state_joints = tuple(state_joints)
        self.limits = limits
        self.history = history
        self.history_dt_ns = history_dt_ns
        self.liveness_clock = liveness_clock
        span_s = (history - 1) * history_dt_ns / NS_PER_S
        # Enough messages to cover the history span at up to 60 Hz cameras / 1 kHz joint states.
        cam_len = camera_buffer or max(2, int(np.ceil(span_s * 60)) + 2)
        state_len = state_buffer or max(2, int(np.ceil(span_s * 1000)) + 2)
        self._cameras = {name: TimedBuffer(cam_len) for name in self.camera_names}
        self._state_len = state_len
        self._needed = frozenset(self.state_joints)
        self._groups: dict[tuple[str, ...], TimedBuffer] = {}
        self._last_arrival: dict[tuple[str, ...], int] = {}  # group -> arrival number of its newest
        self._arrivals = itertools.count(1)
        self._other_names: set[str] = set()
        self._retired = {"received": 0, "dropped": 0}  # counters of expired/evicted groups
        self._groups_lock = threading.Lock()
        self._max_groups = max_joint_groups
        self._plan_cache: dict[tuple[tuple[str, ...], ...], Any] = {}
        self._last_key: tuple[int, ...] | None = None

    # ---- callbacks (cheap) -------------------------------------------------------------------

    def _steady_now(self) -> int:
        clock = self.liveness_clock
        return int(clock()) if clock is not None else -1

    def push_image(self, camera: str, stamp_ns: int, item: Any) -> None:
        """Store an image message (or decoded image) for ``camera``; no conversion here."""
        buf = self._cameras.get(camera)
        if buf is None:
            raise ValueError(f"unknown camera {camera!r}; expected one of {self.camera_names}")
        buf.push(stamp_ns, item, self._steady_now())

    def push_joint_state(self, stamp_ns: int, names: Sequence[str], positions: Any) -> bool:
        """Store a joint_states message's names and positions (a reference, no copy).

        Returns False (nothing stored) when the message names none of the needed joints. Raises
        :class:`ObservationError` when names and positions differ in length
        (``joint_states:length``) or a name appears twice (``joint_states:duplicate``).
        O(1) for a name list seen before; a new list is checked once (O(len(names))).
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
            buf = self._new_group(key)
            if buf is None:
                return False
        buf.push(stamp_ns, positions, self._steady_now())
        self._last_arrival[key] = next(self._arrivals)
        return True

    def _new_group(self, key: tuple[str, ...]) -> TimedBuffer | None:
        """The buffer for a name list not stored yet (None: it names no needed joint)."""
        dup = repeated_names(key)
        if dup:
            raise ObservationError(
                f"joint_states names joint(s) {dup} more than once (names {list(key)}); which "
                "position is meant cannot be known, so the message is rejected; fix the publisher "
                "to name each joint once per message",
                cause="joint_states:duplicate",
            )
        if self._needed.isdisjoint(key):
            if len(self._other_names) < MAX_OTHER_NAMES:
                self._other_names.update(key[:MAX_OTHER_NAMES])
            return None
        with self._groups_lock:
            buf = self._groups.get(key)
            if buf is None:
                if len(self._groups) >= self._max_groups:
                    # the group that received a message least recently makes room
                    oldest = min(self._groups, key=lambda g: self._last_arrival.get(g, 0))
                    self._retire(oldest)
                buf = TimedBuffer(self._state_len)
                self._groups[key] = buf
        return buf

    def _retire(self, group: tuple[str, ...]) -> None:
        """Forget ``group`` (under the groups lock), keeping its counts."""
        buf = self._groups.pop(group)
        self._last_arrival.pop(group, None)
        self._retired["received"] += buf.received
        self._retired["dropped"] += buf.dropped
        if len(self._other_names) < MAX_OTHER_NAMES:  # still named in a missing-joint error
            self._other_names.update(group[:MAX_OTHER_NAMES])
        self._plan_cache.clear()

    # ---- worker ------------------------------------------------------------------------------

    def _state_plan(self, ranked: list[tuple[str, ...]]) -> list[tuple[tuple[str, ...], Any, Any]]:
        """Which group supplies which needed joint: [(group, dst indices, src indices)].

        ``ranked``: the groups, best first; each needed joint comes from the first group naming it.
        """
        cache_key = tuple(ranked)
        plan = self._plan_cache.get(cache_key)
        if plan is not None:
            return plan
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
            received = sorted({n for g in ranked for n in g} | self._other_names)
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

    def _fresh(self, buf: TimedBuffer, now_ns: int, steady_ns: int, limit_ns: int) -> bool:
        """Whether ``buf``'s newest message passes every age check at ``now_ns``."""
        newest = buf.latest()
        if newest is None:
            return False
        age = now_ns - newest.stamp_ns
        if age > limit_ns or -age > self.limits.future_ns:
            return False
        return not (steady_ns >= 0 and buf.received_ns >= 0 and steady_ns - buf.received_ns > limit_ns)

    def _rank_groups(
        self, groups: dict[tuple[str, ...], TimedBuffer], now_ns: int, steady_ns: int
    ) -> list[tuple[str, ...]]:
        """Groups best first: fresh before not fresh, then most needed joints, then newest arrival."""
        limit = self.limits.state_ns

        def rank(g: tuple[str, ...]) -> tuple[bool, int, int]:
            fresh = self._fresh(groups[g], now_ns, steady_ns, limit)
            return (not fresh, -len(self._needed.intersection(g)), -self._last_arrival.get(g, 0))

        return sorted(groups, key=rank)

    def _expire(
        self, groups: dict[tuple[str, ...], TimedBuffer], used: set, now_ns: int, steady_ns: int
    ) -> None:
        """Forget groups that supply nothing to the plan and are no longer fresh."""
        limit = self.limits.state_ns
        gone = [
            g for g, buf in groups.items() if g not in used and not self._fresh(buf, now_ns, steady_ns, limit)
        ]
        if gone:
            with self._groups_lock:
                for g in gone:
                    if self._groups.get(g) is groups[g]:
                        self._retire(g)

    def _check_age(
        self,
        what: str,
        cause: str,
        buf: TimedBuffer,
        stamp_ns: int,
        now_ns: int,
        steady_ns: int,
        limit_ns: int,
    ) -> tuple[str, ObservationError | None]:
        """Judge one part's newest message: ``(kind, error)``, kind ``""`` when it is fine.

        Kinds: ``stale`` (old, or nothing arrived within the limit on the liveness clock),
        ``silent`` (nothing arrived, though the node clock says the stamp is recent: that clock
        stands still), ``future`` (slightly ahead), ``unstamped`` and ``clock`` (another clock:
        far off, or older than the limit already when it arrived). For the last two the error
        is None: :meth:`assemble` merges them into one error for all parts.
        """
        age = now_ns - stamp_ns
        silent_ns = steady_ns - buf.received_ns if steady_ns >= 0 and buf.received_ns >= 0 else -1
        if silent_ns > limit_ns:
            if age > limit_ns:
                return "stale", StaleInputError(
                    f"{what}: newest message is {age / 1e6:.1f} ms old (limit {limit_ns / 1e6:.1f} "
                    f"ms) and none arrived for {silent_ns / 1e6:.1f} ms; is the publisher running?",
                    cause=f"{cause}:stale",
                )
            return "silent", StaleInputError(
                f"{what}: no message arrived for {silent_ns / 1e6:.1f} ms on the steady clock "
                f"(limit {limit_ns / 1e6:.1f} ms) while the node clock puts the newest stamp only "
                f"{age / 1e6:.1f} ms back: the node clock stands still (use_sim_time with a /clock "
                "that stopped: a paused bag or simulator?) or the publisher stopped",
                cause=f"{cause}:silent",
            )
        if is_unstamped(stamp_ns, now_ns):
            return "unstamped", None
        # how old the message already was when it arrived (stamp -> arrival, on the node clock)
        late_ns = age - silent_ns if silent_ns >= 0 else -1
        off = age > limit_ns or -age > self.limits.future_ns
        if off and (is_other_clock(stamp_ns, now_ns) or late_ns > limit_ns):
            return "clock", None
        if age > limit_ns:
            return "stale", StaleInputError(
                f"{what}: newest message is {age / 1e6:.1f} ms old (limit {limit_ns / 1e6:.1f} ms);"
                " is the publisher running? (raise the staleness limit if it is just slow)",
                cause=f"{cause}:stale",
            )
        if -age > self.limits.future_ns:
            return "future", StaleInputError(
                f"{what}: stamped {-age / 1e6:.1f} ms ahead of the node clock (tolerance "
                f"{self.limits.future_ns / 1e6:.1f} ms); clocks are not synchronised or "
                "use_sim_time differs between publisher and policy node",
                cause=f"{cause}:future",
            )
        return "", None

    def _time_lies(
        self, unstamped: list[str], skewed: list[tuple[str, int, int, int]], now_ns: int
    ) -> list[ObservationError]:
        """One error for all unstamped parts and one for all parts on another clock.

        ``skewed``: ``(what, stamp_ns, late_ns, limit_ns)`` per part, ``late_ns`` how old the
        message was when it arrived (-1: unknown).
        """
        out: list[ObservationError] = []
        if unstamped:
            out.append(
                StaleInputError(
                    f"{', '.join(unstamped)}: the driver does not stamp its messages (header.stamp "
                    "is 0); make it set header.stamp to the capture/measurement time (the policy "
                    "judges staleness and times its actions from it)",
                    cause="unstamped",
                )
            )
        if skewed:
            parts = ", ".join(
                f"{what} {describe_offset(stamp, now_ns)}"
                + (f" (already {late / 1e9:.3f} s old on arrival)" if late > limit else "")
                for what, stamp, late, limit in skewed
            )
            _, stamp0, _, _ = skewed[0]
            if is_other_clock(stamp0, now_ns):
                advice = clock_advice(stamp0, now_ns)
            else:
                advice = (
                    "messages keep arriving but are stamped older than the staleness limit: the "
                    "publisher's clock is behind this node's (synchronise the machines with "
                    "chrony/PTP) or it stamps late (raise the staleness limit if the delay is real)"
                )
            out.append(
                StaleInputError(
                    f"stamps are off the node clock: {parts}; the publisher's clock and this "
                    f"node's differ: {advice}",
                    cause="clock",
                )
            )
        return out

    def assemble(self, now_ns: int) -> Assembly:
        """Choose the parts of an observation at node time ``now_ns``.

        Raises :class:`ObservationRejected` listing every missing, stale, incomplete or
        non-finite input.
        """
        errors: list[ObservationError] = []
        unstamped: list[str] = []
        skewed: list[tuple[str, int, int, int]] = []
        images: dict[str, list[Entry]] = {}
        stamps: dict[str, int] = {}
        key: list[int] = []
        consumed: list[tuple[TimedBuffer, int]] = []
        steady = self._steady_now()

        def judge(what: str, cause: str, buf: TimedBuffer, newest: Entry, limit: int) -> bool:
            kind, err = self._check_age(what, cause, buf, newest.stamp_ns, now_ns, steady, limit)
            if kind == "unstamped":
                unstamped.append(what)
            elif kind == "clock":
                late = now_ns - newest.stamp_ns - (steady - buf.received_ns) if steady >= 0 else -1
                skewed.append((what, newest.stamp_ns, late, limit))
            elif err is not None:
                errors.append(err)
            return not kind

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
            if not judge(f"camera {name!r}", f"camera:{name}", buf, newest, self.limits.image_ns):
                continue
            images[name] = select_history(entries, self.history, self.history_dt_ns)
            stamps[f"camera:{name}"] = newest.stamp_ns
            key.append(newest.seq)
            consumed.append((buf, newest.seq))

        state = np.empty((self.history, len(self.state_joints)), dtype=np.float64)
        with self._groups_lock:
            groups = dict(self._groups)
        if not groups and not self._other_names:
            errors.append(
                MissingInputError("joint_states: no message received yet", cause="joint_states:missing")
            )
        else:
            ranked = self._rank_groups(groups, now_ns, steady)
            try:
                plan = self._state_plan(ranked)
            except MissingJointError as exc:
                errors.append(exc)
                plan = []
            self._expire(groups, {g for g, _, _ in plan}, now_ns, steady)
            for group, dst, src in plan:
                buf = groups[group]
                entries = buf.snapshot()
                newest = entries[-1]
                label = "joint_states" if len(plan) == 1 else f"joint_states {list(group)}"
                if not judge(label, "joint_states", buf, newest, self.limits.state_ns):
                    continue
                for t, entry in enumerate(select_history(entries, self.history, self.history_dt_ns)):
                    state[t, dst] = np.asarray(entry.item, dtype=np.float64)[src]
                stamps[f"joint_states:{len(stamps)}"] = newest.stamp_ns
                key.append(newest.seq)
                consumed.append((buf, newest.seq))
            if plan and not errors and not unstamped and not skewed and not np.isfinite(state).all():
                bad = [self.state_joints[i] for i in np.nonzero(~np.isfinite(state).all(0))[0]]
                errors.append(
                    NonFiniteInputError(
                        f"joint_states: non-finite position for joint(s) {bad}; fix the driver or "
                        "drop those joints from state_joints",
                        cause="joint_states:non_finite",
                    )
                )
        errors += self._time_lies(unstamped, skewed, now_ns)
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
            retired = dict(self._retired)
        out["joint_states"] = {
            "received": retired["received"] + sum(b.received for b in groups),
            "dropped": retired["dropped"] + sum(b.dropped for b in groups),
        }
        return out
