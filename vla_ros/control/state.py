"""Measured joint state: merge (possibly partial) joint_states messages, staleness, history.

Each joint keeps the value of the message that arrived last naming it (the freshest wins: a
stray message or a driver restarted with another name order is superseded by the next message,
nothing is remembered per name list). With ``timeout_ns`` > 0 a joint's value is usable at time
``t`` only when it is stamped no more than ``timeout_ns`` before ``t`` and no more than
``future_ns`` after it, and, with a ``liveness_clock``, when its message *arrived* within
``timeout_ns`` on that steady clock (so a ROS clock standing still, ``use_sim_time`` with a
stopped ``/clock``, still trips the watchdog). Why joints are unusable is diagnosed
(:class:`MissingJoints`): no message, silence, unstamped messages, another clock.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from vla_ros.contract.errors import VlaRosError
from vla_ros.util.clocks import clock_advice, describe_offset, is_other_clock, is_unstamped
from vla_ros.util.faults import Fault
from vla_ros.util.names import repeated_names


class StateError(VlaRosError, ValueError):
    """A joint state message was rejected. ``cause`` is a short stable key."""


class MissingJoints(list):
    """The names of joints without a usable value (a plain ``list[str]``), plus ``fault``: the
    diagnosis when it is more than "no fresh value" (silent driver, unstamped messages, another
    clock), else None."""

    def __init__(self, names: Iterable[str] = (), fault: Fault | None = None) -> None:
        super().__init__(names)
        self.fault = fault


class JointStateTracker:
    """The latest position of each controlled joint, with its stamp.

    Messages may carry any subset and superset of the joints (several publishers may each
    cover some); unknown joints are ignored. The state at time ``t`` is complete only when
    every joint has a usable value (see the module docstring). Complete snapshots are kept in
    a short history to look up the state at a chunk's stamp (for delta actions).

    Args:
        names: the controlled joints.
        timeout_ns: maximum age of a value (0: values never go stale and stamps are not judged).
        history: complete snapshots kept for :meth:`at`.
        future_ns: how far a stamp may be ahead of the clock (None: ``timeout_ns``).
        liveness_clock: steady integer-ns clock (``time.monotonic_ns`` in the node) read when a
            message arrives and when the state is judged; None: no arrival check (offline replay).
            A plain attribute, settable later.
    """

    def __init__(
        self,
        names: Sequence[str],
        timeout_ns: int = 0,
        history: int = 256,
        future_ns: int | None = None,
        liveness_clock: Callable[[], int] | None = None,
    ) -> None:
        self.names = tuple(names)
        self.timeout_ns = int(timeout_ns)
        self.future_ns = self.timeout_ns if future_ns is None else int(future_ns)
        self.liveness_clock = liveness_clock
        self._index = {n: i for i, n in enumerate(self.names)}
        n = len(self.names)
        self.positions = np.full(n, math.nan)
        self.stamps = np.full(n, -1, dtype=np.int64)
        self.received_ns = np.full(n, -1, dtype=np.int64)
        self._seen = np.zeros(n, dtype=bool)
        self._hist_t: deque[int] = deque(maxlen=history)
        self._hist_q: deque[np.ndarray] = deque(maxlen=history)
        self._checked_names: tuple[str, ...] | None = None  # last name list found free of duplicates

    def clear(self) -> None:
        """Forget everything (e.g. after the clock jumped backwards)."""
        self.positions[:] = math.nan
        self.stamps[:] = -1
        self.received_ns[:] = -1
        self._seen[:] = False
        self._hist_t.clear()
        self._hist_q.clear()

    def update(self, stamp_ns: int, names: Sequence[str], positions: Sequence[float]) -> None:
        """Merge one message. Raises :class:`StateError` (and keeps nothing) on malformed input:
        names and positions of different lengths (``state_shape``), a joint named twice
        (``state_duplicate``), a non-finite position of a controlled joint (``state_nonfinite``)."""
        if len(names) != len(positions):
            raise StateError(
                f"joint_states has {len(names)} names but {len(positions)} positions; "
                "the publisher must fill position for every name",
                cause="state_shape",
            )
        self._check_duplicates(names)
        idx: list[int] = []
        vals: list[float] = []
        for name, value in zip(names, positions):
            i = self._index.get(name)
            if i is None:
                continue
            v = float(value)
            if not math.isfinite(v):
                raise StateError(
                    f"joint_states position of {name!r} is {v}; message ignored",
                    cause="state_nonfinite",
                )
            idx.append(i)
            vals.append(v)
        if not idx:
            return
        self.positions[idx] = vals
        self.stamps[idx] = int(stamp_ns)
        clock = self.liveness_clock
        if clock is not None:
            self.received_ns[idx] = int(clock())
        self._seen[idx] = True
        if self._seen.all():
            t = int(self.stamps.min())
            # a snapshot older than the last one (a driver restarted on another clock, a stray
            # message) replaces the newer ones: history never stays locked on a bad stamp
            while self._hist_t and self._hist_t[-1] > t:
                self._hist_t.pop()
                self._hist_q.pop()
            self._hist_t.append(t)
            self._hist_q.append(self.positions.copy())

    def _check_duplicates(self, names: Sequence[str]) -> None:
        key = tuple(names)
        if key == self._checked_names:
            return
        dup = repeated_names(key)
        if dup:
            raise StateError(
                f"joint_states names joint(s) {dup} more than once (names {list(key)}); which "
                "position is meant cannot be known: message ignored; fix the publisher to name "
                "each joint once per message",
                cause="state_duplicate",
            )
        self._checked_names = key

    @property
    def seen_any(self) -> bool:
        """Whether any controlled joint has ever had a value (since the last clear)."""
        return bool(self._seen.any())

    def missing(self, t_ns: int) -> MissingJoints:
        """Joints without a usable value at ``t_ns`` (see the module docstring), diagnosed."""
        unusable = ~self._seen
        silent = None
        if self.timeout_ns > 0:
            age = t_ns - self.stamps
            unusable = unusable | (age > self.timeout_ns) | (-age > self.future_ns)
            clock = self.liveness_clock
            if clock is not None:
                since = int(clock()) - self.received_ns
                silent = self._seen & (self.received_ns >= 0) & (since > self.timeout_ns)
                unusable = unusable | silent
        if not unusable.any():
            return MissingJoints()
        names = [n for n, bad in zip(self.names, unusable) if bad]
        return MissingJoints(names, self._diagnose(t_ns, unusable, silent))

    def _diagnose(self, t_ns: int, unusable: np.ndarray, silent: np.ndarray | None) -> Fault | None:
        """The fault for the unusable joints when the cause is known; None: plain "missing"."""
        if self.timeout_ns <= 0:
            return None
        timeout = self.timeout_ns
        steady = int(self.liveness_clock()) if self.liveness_clock is not None else -1
        quiet, unstamped, skewed = [], [], []
        for i, name in enumerate(self.names):
            if not unusable[i] or not self._seen[i]:
                continue
            stamp = int(self.stamps[i])
            age = t_ns - stamp
            if silent is not None and silent[i]:
                quiet.append((name, steady - int(self.received_ns[i]), age))
            elif is_unstamped(stamp, t_ns):
                unstamped.append(name)
            elif is_other_clock(stamp, t_ns) or -age > self.future_ns:
                skewed.append((name, stamp, -1))
            elif self.received_ns[i] >= 0 and steady >= 0:
                late = age - (steady - int(self.received_ns[i]))  # age on arrival
                if late > timeout:
                    skewed.append((name, stamp, late))
        never = [n for n, seen in zip(self.names, self._seen) if not seen]
        also = f" (and no joint_states at all yet for {never})" if never else ""
        if quiet:
            joints = [q[0] for q in quiet]
            gap = max(q[1] for q in quiet)
            newest_age = min(q[2] for q in quiet)
            if newest_age > timeout:
                why = "is the driver running?"
            else:
                why = (
                    f"the executor clock puts their stamps only {newest_age / 1e9:.3f} s back: the "
                    "node clock stands still (use_sim_time with a /clock that stopped: a paused bag "
                    "or simulator?) or the driver stopped"
                )
            return Fault(
                cause="state_silent:" + ",".join(joints),
                message=f"no joint_states for joint(s) {joints} for {gap / 1e9:.2f} s on the steady "
                f"clock (state_timeout {timeout / 1e9:.3f} s){also}; {why}; holding",
            )
        if unstamped:
            return Fault(
                cause="state_unstamped",
                message=f"the driver does not stamp its joint_states (header.stamp is 0) for "
                f"joint(s) {unstamped}{also}; make it set header.stamp to the measurement time "
                "(state_timeout judges the state by it); holding",
            )
        if skewed:
            joints = [s[0] for s in skewed]
            _, stamp, late = skewed[0]
            if late >= 0 and not is_other_clock(stamp, t_ns):
                advice = (
                    f"they arrive {late / 1e9:.3f} s after their stamp (state_timeout "
                    f"{timeout / 1e9:.3f} s): the driver's clock is behind the executor's "
                    "(synchronise the machines with chrony/PTP) or it stamps late"
                )
            else:
                advice = clock_advice(stamp, t_ns)
            return Fault(
                cause="state_clock",
                message=f"joint_states stamps for joint(s) {joints} are "
                f"{describe_offset(stamp, t_ns, 'the executor clock')}{also}; the driver's clock and "
                f"the executor's differ: {advice}; holding",
            )
        return None

    def current(self, t_ns: int) -> np.ndarray | None:
        """The full state vector if complete and usable at ``t_ns``, else None."""
        if self.missing(t_ns):
            return None
        return self.positions.copy()

    def at(self, stamp_ns: int, tolerance_ns: int) -> np.ndarray | None:
        """The complete snapshot stamped nearest to ``stamp_ns`` (the earlier one on a tie), if
        it is within ``tolerance_ns``; None if there is none. (Not the latest one within the
        tolerance: a chunk that arrives late finds later snapshots, and a delta chunk's base
        must be the state at its stamp, not up to ``tolerance_ns`` of motion after it.)"""
        times = list(self._hist_t)
        k = bisect.bisect_right(times, stamp_ns) - 1  # the last at or before the stamp
        near = [i for i in (k, k + 1) if 0 <= i < len(times) and abs(times[i] - stamp_ns) <= tolerance_ns]
        if not near:
            return None
        return self._hist_q[min(near, key=lambda i: abs(times[i] - stamp_ns))].copy()
