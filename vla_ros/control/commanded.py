"""What the executor actually commands: the recent command history and the safety-filtered plan.

Real-time chunking (Black, Galliker, Levine 2025, arXiv 2506.07339) conditions a new chunk on the
actions the robot will execute during the inference delay. Those are the chunk mode's targets
only while the safety filter lets them through: when a target asks for more than the velocity
(or acceleration) limit, e.g. the first chunk of an episode, planned from rest, the commands lag
the targets, and a prefix made of targets continues a motion the robot never made (measured in
docs/latency.md: up to 0.4 rad ahead at the second hand-over). :func:`filtered_plan` and
:class:`CommandHistory` give the commands instead: the past ones as sent, the future ones as the
safety filter will produce them from the plan (pure, integer ns).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable

import numpy as np

from vla_ros.control.safety import SafetyFilter

#: ``plan(t_ns)``: the chunk mode's target for time ``t_ns``, or None when no chunk covers it
PlanFn = Callable[[int], "np.ndarray | None"]


class CommandHistory:
    """The last ``capacity`` commands, ``(t_ns, positions [n_joints] rad)``, in tick order."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"CommandHistory capacity must be >= 1, got {capacity}")
        self._times: deque[int] = deque(maxlen=int(capacity))
        self._rows: deque[np.ndarray] = deque(maxlen=int(capacity))

    def record(self, t_ns: int, positions: np.ndarray) -> None:
        """Append the command sent at ``t_ns`` (a time before the last one clears the history);
        NaN rows mark ticks whose command came from no chunk (a hold)."""
        if self._times and int(t_ns) <= self._times[-1]:
            self.clear()
        self._times.append(int(t_ns))
        self._rows.append(np.array(positions, dtype=np.float64))

    def clear(self) -> None:
        """Forget every command."""
        self._times.clear()
        self._rows.clear()

    @property
    def last_ns(self) -> int | None:
        """Time of the latest command, None when empty."""
        return self._times[-1] if self._times else None

    def at(self, t_ns: int) -> np.ndarray | None:
        """The command at ``t_ns`` (linear between two recorded ticks, rad); None outside
        ``[first, last]`` recorded time and next to a tick recorded as NaN (no chunk commanded)."""
        t = int(t_ns)
        if not self._times or t < self._times[0] or t > self._times[-1]:
            return None
        times = list(self._times)
        i = bisect_right(times, t) - 1
        if times[i] == t or i + 1 >= len(times):
            row = self._rows[i].copy()
        else:
            w = (t - times[i]) / (times[i + 1] - times[i])
            row = self._rows[i] + w * (self._rows[i + 1] - self._rows[i])
        return row if bool(np.all(np.isfinite(row))) else None


def filtered_plan(
    plan: PlanFn, sim: SafetyFilter, last_ns: int, t_ns: int, period_ns: int
) -> np.ndarray | None:
    """The command the safety filter will produce at ``t_ns > last_ns`` following ``plan``.

    ``sim`` is a copy of the executor's filter (:meth:`SafetyFilter.copy`, holding the command
    sent at ``last_ns``; it is advanced); it is stepped every ``period_ns`` from ``last_ns`` (the
    last step shortened to end at ``t_ns``) towards ``plan``, the measured state assumed to follow
    the commands. Returns ``[n_joints]`` rad, or None when the plan does not cover a step or the
    filter holds nothing.
    """
    if sim.last_command is None or period_ns <= 0 or t_ns <= last_ns:
        return None
    pos = sim.last_command.copy()
    tk = int(last_ns)
    while tk < t_ns:
        step = min(int(period_ns), int(t_ns) - tk)
        tk += step
        goal = plan(tk)
        if goal is None:
            return None
        sim.period_ns = step
        res = sim.filter(goal, pos)
        if res is None:
            return None
        pos = res.positions
    return pos
