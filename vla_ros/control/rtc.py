"""Real-time chunking on the executor side: where a new chunk takes over, and how (pure, integer ns).

Real-time chunking (RTC; Black, Galliker, Levine 2025, "Real-Time Execution of Action Chunking
Flow Policies", arXiv 2506.07339) keeps the robot moving while the policy infers: the actions the
executor will execute during the inference delay ``d`` are *committed*; the new chunk is produced
so that its first ``d`` actions continue them (inpainting or training-time conditioning; the
model side's math is :mod:`vla_ros.control.rtc_guidance`), and it takes over at the end of the
committed prefix, so no blending is needed.

The executor does not know ``d`` (the ActionChunk message has no field for it); it finds the
committed prefix of a new chunk from the chunk itself:

* ``k0``: the chunk's last action due at or before the next control tick (its first action when
  it starts later). When that action differs from what the executor plans for its time by more
  than ``tolerance`` (joint units, max over joints), the chunk does **not** continue what was
  committed: :func:`takeover` reports the mismatch (the controller raises a
  ``rtc_prefix_mismatch`` fault) and the chunk takes over at the next tick with a short
  cross-fade (the controller's ``blend_steps``).
* otherwise the prefix runs on over the following actions while they agree with the plan; the
  chunk takes over at the last of them (the end of what was committed), but never before the
  next tick. From the takeover time ``T`` to the chunk's next action point ``s_j`` the command
  follows a hand-over (:func:`bridged_sample`), then it follows the chunk. With the committed
  velocity at ``T`` known (``takeover(..., period_ns=...)``, as the controller does) the
  hand-over is a cubic Hermite segment from the plan's position and velocity at ``T`` to action
  ``j`` (the ``handover_steps``-th action point after ``T``: the controller's
  ``rtc_handover_steps``) and the chunk's velocity just after it, ``(a_{j+1} - a_j) / dt``:
  continuous in position *and* velocity at both ends, so a prefix that runs at the velocity
  limit is not followed by an abrupt change of speed (the chunk's own change of speed after a
  perfectly conditioned prefix is spread over the hand-over too). Without the velocity the
  hand-over is a straight line from the plan's value at ``T`` to the next action point
  (continuous in position only), equal to the chunk itself when ``T`` is an action point whose
  action equals the plan exactly.

With no plan (no chunk live yet, or a gap) a chunk takes over at once, as in ``latest``.

:class:`CommittedActions` / :func:`committed_actions` are what the executor publishes on
``~/committed_actions`` for the policy's next inference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla_ros.control.chunk import Chunk

#: ``plan(t_ns)``: the executor's target for time ``t_ns`` before the new chunk, or None
PlanFn = Callable[[int], "np.ndarray | None"]


@dataclass(frozen=True)
class Takeover:
    """Where and how a chunk takes over in ``rtc`` mode.

    Attributes:
        t_ns: the takeover time (the chunk is used from the first tick at or after it).
        start: the plan's target at ``t_ns`` (the bridge's start), or None (no plan: no bridge).
        blend: True when the prefix did not continue the plan (cross-fade instead of the bridge).
        prefix: number of the chunk's actions that continue the plan (0 on a mismatch).
        error: ``max |action - plan|`` of the action that decided (``k0``), joint units; 0 without a plan.
        velocity: the committed velocity at ``t_ns`` (joint units/s, ``[n_joints]``: the plan's
            backward difference over one control period), or None (linear hand-over).
        steps: the velocity-continuous hand-over ends at the chunk's ``steps``-th action point
            after ``t_ns`` (>= 1; the linear one always at the first).
    """

    t_ns: int
    start: np.ndarray | None
    blend: bool
    prefix: int
    error: float
    velocity: np.ndarray | None = None
    steps: int = 1


def first_index_after(chunk: Chunk, t_ns: int) -> int:
    """Index of the chunk's first action due strictly after ``t_ns`` (``horizon`` when none)."""
    if t_ns < chunk.start_ns:
        return 0
    return min(chunk.horizon, (t_ns - chunk.start_ns) // chunk.dt_ns + 1)


def takeover(
    chunk: Chunk,
    plan: PlanFn,
    next_tick_ns: int,
    tolerance: float,
    period_ns: int | None = None,
    handover_steps: int = 1,
) -> Takeover:
    """The takeover of ``chunk`` arriving before the tick at ``next_tick_ns`` (module docstring).

    Args:
        chunk: the new chunk (absolute targets, the controller's joint order).
        plan: the executor's target at a time from the chunks it had before this one.
        next_tick_ns: the first control tick that can use the chunk, ns.
        tolerance: how far (joint units, max over joints) an action may be from the plan and
            still count as continuing it; >= 0.
        period_ns: the control period, ns; when given (> 0) the takeover carries the committed
            velocity ``(plan(T) - plan(T - period_ns)) / period`` for a velocity-continuous
            hand-over (None: a linear one).
        handover_steps: chunk action points the velocity-continuous hand-over spans (>= 1).

    Returns a :class:`Takeover` (``t_ns >= next_tick_ns``).
    """

    def at(t: int, take: Takeover) -> Takeover:
        if period_ns is None or period_ns <= 0 or take.start is None or take.blend:
            return take
        before = plan(t - int(period_ns))
        if before is None:
            return take
        v = (np.asarray(take.start, dtype=np.float64) - before) / (int(period_ns) * 1e-9)
        steps = max(1, int(handover_steps))
        return Takeover(take.t_ns, take.start, take.blend, take.prefix, take.error, v, steps)

    now = max(int(next_tick_ns), chunk.start_ns)
    k0 = max(0, first_index_after(chunk, next_tick_ns) - 1)
    p = plan(chunk.start_ns + k0 * chunk.dt_ns)
    if p is None:
        return Takeover(now, None, False, 0, 0.0)
    error = float(np.max(np.abs(chunk.actions[k0] - p)))
    if not error <= tolerance and k0 > 0:  # NaN-safe
        # a prefix of ``ceil(latency / dt)`` actions (vla_ros.control.delay.steps_for) ends before
        # the next tick when that tick reaches the next action point: action k0 is the chunk's
        # first free one, and the prefix continues the plan if action k0 - 1 does
        q = plan(chunk.start_ns + (k0 - 1) * chunk.dt_ns)
        if q is not None and float(np.max(np.abs(chunk.actions[k0 - 1] - q))) <= tolerance:
            return at(now, Takeover(now, plan(now), False, k0, error))
    if not error <= tolerance:  # NaN-safe
        return Takeover(now, plan(now), True, 0, error)
    k = k0 + 1
    while k < chunk.horizon:
        q = plan(chunk.start_ns + k * chunk.dt_ns)
        if q is None or not float(np.max(np.abs(chunk.actions[k] - q))) <= tolerance:
            break
        k += 1
    t = max(now, chunk.start_ns + (k - 1) * chunk.dt_ns)
    return at(t, Takeover(t, plan(t), False, k, error))


def handover_index(chunk: Chunk, take: Takeover) -> int:
    """Index ``j`` of the chunk action where the hand-over of ``take`` ends (``horizon``: none):
    the first action point after ``take.t_ns``, or the ``take.steps``-th with a velocity (capped
    at the chunk's last action)."""
    j = first_index_after(chunk, take.t_ns)
    if j >= chunk.horizon or take.velocity is None:
        return j
    return min(j + take.steps - 1, chunk.horizon - 1)


def bridged_sample(chunk: Chunk, take: Takeover, t_ns: int) -> np.ndarray | None:
    """The chunk's target at ``t_ns`` once it has taken over with ``take`` (None: not covered).

    Between ``take.t_ns`` and the chunk's action point ``s_j`` (:func:`handover_index`: the
    next one, or the ``take.steps``-th with a velocity) the target goes from
    ``take.start`` to action ``j`` (the hand-over); elsewhere it is ``chunk.sample(t_ns)``. With
    ``take.velocity`` the hand-over is the cubic Hermite segment (``h = s_j - T``,
    ``u = (t - T) / h``) ``p = h00(u) p0 + h10(u) h v0 + h01(u) a_j + h11(u) h v1`` with
    ``h00 = 2u^3 - 3u^2 + 1``, ``h10 = u^3 - 2u^2 + u``, ``h01 = -2u^3 + 3u^2``,
    ``h11 = u^3 - u^2`` (the standard cubic Hermite basis), ``v0 = take.velocity`` and ``v1``
    the chunk's velocity after ``s_j``, ``(a_{j+1} - a_j) / dt`` (0 at the chunk's last
    action); without it a straight line.
    """
    if take.start is None or take.blend or t_ns < take.t_ns:
        return chunk.sample(t_ns)
    j = handover_index(chunk, take)
    if j >= chunk.horizon:
        return chunk.sample(t_ns)
    s_j = chunk.start_ns + j * chunk.dt_ns
    if t_ns >= s_j:
        return chunk.sample(t_ns)
    a = chunk.actions[j]
    u = (t_ns - take.t_ns) / (s_j - take.t_ns)
    if take.velocity is None:
        return take.start + u * (a - take.start)
    h = (s_j - take.t_ns) * 1e-9
    dt = chunk.dt_ns * 1e-9
    v1 = (chunk.actions[j + 1] - a) / dt if j + 1 < chunk.horizon else np.zeros_like(a)
    u2, u3 = u * u, u * u * u
    p0 = np.asarray(take.start, dtype=np.float64)
    return (
        (2 * u3 - 3 * u2 + 1) * p0
        + (u3 - 2 * u2 + u) * h * take.velocity
        + (-2 * u3 + 3 * u2) * a
        + (u3 - u2) * h * v1
    )


@dataclass(frozen=True)
class CommittedActions:
    """What an executor has committed to command, on its control grid (absolute, joint units).

    Row ``i`` of ``actions`` (``[n, n_joints]`` float64, ``joint_names`` order) is the target for
    ``start_ns + i * dt_ns``. Published as ``~/committed_actions`` (vla_ros/ActionChunk:
    ``header.stamp = start_ns``, ``dt = dt_ns``).
    """

    start_ns: int
    dt_ns: int
    joint_names: tuple[str, ...]
    actions: np.ndarray

    @property
    def end_ns(self) -> int:
        """Time of the last committed action, ns."""
        return self.start_ns + (int(self.actions.shape[0]) - 1) * self.dt_ns


def committed_actions(
    plan: PlanFn, joint_names: tuple[str, ...], t_ns: int, period_ns: int, history: int, horizon: int
) -> CommittedActions | None:
    """The plan on the control grid ``t_ns + k * period_ns``, ``k = -history .. horizon``.

    Past points (``k < 0``) are what the chunk mode targeted then (the RTC prefix of a chunk whose
    observation is older than ``t_ns``); future ones what it will target absent new chunks.
    The run is contiguous: it starts at the first past point with a plan and ends before the
    first future point without one. None when ``t_ns`` itself has no plan.

    Raises:
        ValueError: ``period_ns <= 0`` or a negative ``history`` / ``horizon``.
    """
    if period_ns <= 0 or history < 0 or horizon < 0:
        raise ValueError(
            f"period must be > 0 and history, horizon >= 0; got {period_ns}, {history}, {horizon}"
        )
    now = plan(int(t_ns))
    if now is None:
        return None
    past: list[np.ndarray] = []
    for k in range(1, history + 1):
        p = plan(int(t_ns) - k * int(period_ns))
        if p is None:
            break
        past.append(p)
    rows = [*reversed(past), now]
    for k in range(1, horizon + 1):
        p = plan(int(t_ns) + k * int(period_ns))
        if p is None:
            break
        rows.append(p)
    return CommittedActions(
        start_ns=int(t_ns) - len(past) * int(period_ns),
        dt_ns=int(period_ns),
        joint_names=tuple(joint_names),
        actions=np.array(rows, dtype=np.float64),
    )


def committed_prefix(plan: PlanFn, stamp_ns: int, dt_ns: int, steps: int) -> np.ndarray | None:
    """``[steps, n_joints]`` float32: the plan at ``stamp_ns + i * dt_ns``, ``i < steps`` (the
    committed actions of a chunk stamped ``stamp_ns`` when the executor's plan is at hand, as in
    a simulated loop; the robot path resamples ``~/committed_actions`` instead). None when a
    grid time has no plan, or ``steps <= 0``.
    """
    if steps <= 0:
        return None
    rows = []
    for i in range(int(steps)):
        p = plan(int(stamp_ns) + i * int(dt_ns))
        if p is None:
            return None
        rows.append(p)
    return np.array(rows, dtype=np.float32)
