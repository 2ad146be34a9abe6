"""The policy side of real-time chunking and delay-aware scheduling (pure, integer ns).

The executor publishes what it has committed to command (``~/committed_actions``, a
:class:`~vla_ros.control.rtc.CommittedActions` on its control grid). For each inference the
policy resamples it onto the new chunk's time grid ``stamp_ns + i * dt`` for the first ``d``
steps, ``d`` the inference delay in chunk steps (:class:`~vla_ros.control.delay.DelayEstimator`,
warm-up excluded, p95): :attr:`vla_ros.contract.observation.Observation.committed_actions`
(real-time chunking, Black, Galliker, Levine 2025, arXiv 2506.07339).

Scheduling: with ``inference_trigger: horizon`` an inference starts when the executor has fewer
than ``d + margin`` chunk steps of actions left (:func:`horizon_due`), the rule of the paper's
asynchronous loop (start the next inference so that it lands before the current chunk runs out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vla_ros.contract.errors import VlaRosError
from vla_ros.control.rtc import CommittedActions


class CommittedError(VlaRosError, ValueError):
    """A committed-actions message that cannot be used; ``cause`` is a short stable key."""


def committed_from_message(
    stamp_ns: int,
    dt_ns: int,
    joint_names: Sequence[str],
    actions: Sequence[float] | np.ndarray,
    action_joints: Sequence[str],
) -> CommittedActions:
    """Validate a ``~/committed_actions`` ActionChunk's fields; columns in ``action_joints`` order.

    ``actions`` is flat row-major ``[n, len(joint_names)]`` (or already 2-D).

    Raises:
        CommittedError: dt <= 0, a shape that does not fit the names, no rows, non-finite values,
            or joint names that do not include every action joint (naming the missing ones).
    """
    names = tuple(str(n) for n in joint_names)
    if int(dt_ns) <= 0:
        raise CommittedError(f"committed actions have dt {dt_ns} ns; it must be > 0", cause="committed:shape")
    arr = np.asarray(actions, dtype=np.float64)
    if not names or arr.size == 0 or arr.size % len(names) != 0:
        raise CommittedError(
            f"committed actions hold {arr.size} values for {len(names)} joint names; expected "
            "n x len(joint_names) > 0",
            cause="committed:shape",
        )
    arr = arr.reshape(-1, len(names))
    if not np.isfinite(arr).all():
        raise CommittedError("committed actions contain NaN/Inf; ignored", cause="committed:nonfinite")
    missing = [j for j in action_joints if j not in names]
    if missing:
        raise CommittedError(
            f"committed actions name joints {list(names)}, without the policy's action joints "
            f"{missing}; set policy_node action_joints to the executor's joint names",
            cause="committed:joints",
        )
    index = [names.index(j) for j in action_joints]
    return CommittedActions(int(stamp_ns), int(dt_ns), tuple(action_joints), arr[:, index])


def resample(committed: CommittedActions, first_ns: int, dt_ns: int, steps: int) -> np.ndarray | None:
    """``[steps, n_joints]`` float32: the committed actions at ``first_ns + i * dt_ns``, ``i < steps``.

    Linear interpolation between the committed points in integer nanoseconds (a grid time on a
    committed point gives that row exactly). None when a grid time falls outside the committed
    span ``[start_ns, end_ns]`` (nothing is extrapolated). ``steps <= 0`` gives ``[0, n]``.
    """
    a = committed.actions
    n = int(a.shape[0])
    out = np.empty((max(0, int(steps)), a.shape[1]), dtype=np.float64)
    for i in range(out.shape[0]):
        rel = int(first_ns) + i * int(dt_ns) - committed.start_ns
        if rel < 0:
            return None
        i0, rem = divmod(rel, committed.dt_ns)
        if i0 > n - 1 or (i0 == n - 1 and rem):
            return None
        out[i] = a[i0] if rem == 0 else a[i0] + (rem / committed.dt_ns) * (a[i0 + 1] - a[i0])
    return out.astype(np.float32)


def horizon_due(
    now_ns: int, covered_until_ns: int | None, dt_ns: int, delay_steps: int, margin_steps: int
) -> bool:
    """Whether an inference should start now: fewer than ``delay_steps + margin_steps`` chunk
    steps of actions remain, i.e. ``covered_until_ns - now_ns < (d + margin) * dt_ns``.

    ``covered_until_ns`` is the time of the executor's last action (None: nothing is known to
    be covered, so an inference is due).
    """
    if covered_until_ns is None:
        return True
    return int(covered_until_ns) - int(now_ns) < (int(delay_steps) + int(margin_steps)) * int(dt_ns)


@dataclass(frozen=True)
class Received:
    """The latest committed actions and when they arrived (node clock, ns)."""

    received_ns: int
    committed: CommittedActions


class CommittedTracker:
    """The latest committed actions at the policy, when they may be used, and what is covered.

    Args:
        max_age_ns: committed actions received longer ago than this are stale.

    Committed actions received before the policy's last chunk was published are stale too:
    they do not include that chunk yet (the executor publishes again at its first tick after
    accepting a chunk).
    """

    def __init__(self, max_age_ns: int) -> None:
        self.max_age_ns = int(max_age_ns)
        self.received: Received | None = None
        self.last_published_ns: int | None = None  # node time the last chunk was published
        self.last_chunk_end_ns: int | None = None  # time of the last chunk's last action
        #: inferences that went without the committed actions because they were stale (counted,
        #: not logged: with rate triggering most messages predate the last chunk)
        self.not_fresh = 0

    def published(self, stamp_ns: int, latency_ns: int, horizon: int, dt_ns: int) -> None:
        """A chunk stamped ``stamp_ns`` of ``horizon`` actions was published ``latency_ns`` later."""
        self.last_published_ns = int(stamp_ns) + int(latency_ns)
        self.last_chunk_end_ns = int(stamp_ns) + (int(horizon) - 1) * int(dt_ns)

    def stale(self, now_ns: int) -> str | None:
        """Why the received committed actions may not be used at ``now_ns`` (None: usable or none)."""
        got = self.received
        if got is None:
            return None
        age = int(now_ns) - got.received_ns
        if age > self.max_age_ns:
            return f"received {age / 1e6:.0f} ms ago (committed_max_age_s {self.max_age_ns / 1e9:g})"
        if self.last_published_ns is not None and got.received_ns < self.last_published_ns:
            return "received before the last chunk was published (they do not include it yet)"
        return None

    def covered_until(self, now_ns: int) -> int | None:
        """The time of the last action known to be covered: the fresh committed actions' end or
        the last published chunk's, whichever is later (None: nothing known)."""
        ends = [] if self.last_chunk_end_ns is None else [self.last_chunk_end_ns]
        got = self.received
        if got is not None and int(now_ns) - got.received_ns <= self.max_age_ns:
            ends.append(got.committed.end_ns)
        return max(ends) if ends else None
