"""Measured joint state: merge (possibly partial) joint_states messages, staleness, history."""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence

import numpy as np


class StateError(ValueError):
    """A joint state message was rejected. ``cause`` is a short stable key."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


class JointStateTracker:
    """The latest position of each controlled joint, with its stamp.

    Messages may carry any subset and superset of the joints (several publishers may each
    cover some); unknown joints are ignored. The state at time ``t`` is complete only when
    every joint has a value stamped no more than ``timeout_ns`` before ``t`` (0 = no timeout).
    Complete snapshots are kept in a short history to look up the state at a chunk's stamp
    (for delta actions).
    """

    def __init__(self, names: Sequence[str], timeout_ns: int = 0, history: int = 256) -> None:
        self.names = tuple(names)
        self.timeout_ns = int(timeout_ns)
        self._index = {n: i for i, n in enumerate(self.names)}
        n = len(self.names)
        self.positions = np.full(n, math.nan)
        self.stamps = np.full(n, -1, dtype=np.int64)
        self._seen = np.zeros(n, dtype=bool)
        self._hist_t: deque[int] = deque(maxlen=history)
        self._hist_q: deque[np.ndarray] = deque(maxlen=history)

    def clear(self) -> None:
        """Forget everything (e.g. after the clock jumped backwards)."""
        self.positions[:] = math.nan
        self.stamps[:] = -1
        self._seen[:] = False
        self._hist_t.clear()
        self._hist_q.clear()

    def update(self, stamp_ns: int, names: Sequence[str], positions: Sequence[float]) -> None:
        """Merge one message. Raises :class:`StateError` (and keeps nothing) on malformed input."""
        if len(names) != len(positions):
            raise StateError(
                "state_shape",
                f"joint_states has {len(names)} names but {len(positions)} positions; "
                "the publisher must fill position for every name",
            )
        idx: list[int] = []
        vals: list[float] = []
        for name, value in zip(names, positions):
            i = self._index.get(name)
            if i is None:
                continue
            v = float(value)
            if not math.isfinite(v):
                raise StateError(
                    "state_nonfinite",
                    f"joint_states position of {name!r} is {v}; message ignored",
                )
            idx.append(i)
            vals.append(v)
        if not idx:
            return
        self.positions[idx] = vals
        self.stamps[idx] = int(stamp_ns)
        self._seen[idx] = True
        if self._seen.all():
            t = int(self.stamps.min())
            if not self._hist_t or t >= self._hist_t[-1]:
                self._hist_t.append(t)
                self._hist_q.append(self.positions.copy())

    @property
    def seen_any(self) -> bool:
        """Whether any controlled joint has ever had a value (since the last clear)."""
        return bool(self._seen.any())

    def missing(self, t_ns: int) -> list[str]:
        """Joints with no value, or (with a timeout) one older than ``timeout_ns`` at ``t_ns``."""
        out = [n for n, seen in zip(self.names, self._seen) if not seen]
        if self.timeout_ns > 0:
            stale = (t_ns - self.stamps) > self.timeout_ns
            out += [n for n, s, seen in zip(self.names, stale, self._seen) if seen and s]
        return out

    def current(self, t_ns: int) -> np.ndarray | None:
        """The full state vector if complete and fresh at ``t_ns``, else None."""
        if self.missing(t_ns):
            return None
        return self.positions.copy()

    def at(self, stamp_ns: int, tolerance_ns: int) -> np.ndarray | None:
        """The latest complete snapshot stamped at or before ``stamp_ns + tolerance_ns`` and no
        earlier than ``stamp_ns - tolerance_ns``; None if there is none."""
        times = list(self._hist_t)
        k = bisect.bisect_right(times, stamp_ns + tolerance_ns) - 1
        if k < 0 or times[k] < stamp_ns - tolerance_ns:
            return None
        return self._hist_q[k].copy()
