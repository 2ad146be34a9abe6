"""The safety filter: position, velocity, acceleration and jump limits; NaN/Inf rejection; hold.

The rule every command leaving :meth:`SafetyFilter.filter` or :meth:`SafetyFilter.hold` obeys,
per joint, whatever the chunks, the measured state or a live limit change say:

* ``lower <= q <= upper`` (position limits, always);
* ``|q - q_prev| <= v_max * speed_scale * dt`` (velocity, relative to the previous *command*,
  never to the measured state: a lagging or outlier measurement cannot make the command jump);
* ``|q - q_measured| <= max_jump`` where ``max_jump`` is set, for every command that moves;
* acceleration ``|v - v_prev| <= a_max * speed_scale**2 * dt`` where that is compatible with the
  constraints above (it is relaxed, and reported as ``acceleration_relaxed``, when a position
  limit or the jump bound forces a harder stop; a hold stops at once).

When these cannot all hold (the measured state is further than ``max_jump`` from every command
the velocity limit allows: the robot was blocked, moved by hand, or one sample is an outlier),
**nothing moves**: the filter reports ``tracking_error`` and holds the previous command. It never
"catches up" to the measured position in one tick. Non-finite targets are rejected
(``nonfinite_target``) and the previous command is held.

The filter starts (after :meth:`SafetyFilter.reset` with no position, i.e. on arming) from the
measured position **only when that position is inside the position limits**; a measured joint
outside them yields no command at all (``None``): a clipped start would be a step of
``|q_measured - limit|`` in one tick. The executor refuses to arm then, and disarms when an armed
robot's measured state leaves the limits (:func:`state_outside_limits`). Invariant: the previous
command is always inside the position limits, so the velocity box around it always intersects
them; :meth:`SafetyFilter.set_limits` keeps it so (a change that would put the previous command
outside the new range raises :class:`LimitsError`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vla_ros.contract.errors import VlaRosError
from vla_ros.control.urdf import UrdfJointLimit, limits_hint, uncommandable


class LimitsError(VlaRosError, ValueError):
    """Inconsistent or malformed limit parameters."""


def _vector(name: str, values: Sequence[float] | None, n: int) -> np.ndarray | None:
    """Broadcast a parameter list of length 0 (None), 1 or n to an n-vector."""
    if values is None or len(values) == 0:
        return None
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    if np.any(np.isnan(arr)):
        raise LimitsError(f"{name} contains NaN ({arr.tolist()}); use .inf for 'no limit'")
    if arr.size == 1:
        return np.full(n, arr[0])
    if arr.size != n:
        raise LimitsError(f"{name} has {arr.size} values but there are {n} joints; give 1 value (all) or {n}")
    return arr


@dataclass(frozen=True)
class JointLimits:
    """Per-joint limits in the controller's joint order; ``inf`` means unlimited.

    ``continuous`` names the joints the URDF declares ``continuous`` (no position limits by
    design); see :meth:`missing`. ``urdf`` is the URDF the limits were built with (None: none),
    kept so :func:`arming_refusal` can say what it lacks.
    """

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray
    max_jump: np.ndarray
    continuous: tuple[str, ...] = ()
    urdf: Mapping[str, UrdfJointLimit] | None = None

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        *,
        lower: Sequence[float] | None = None,
        upper: Sequence[float] | None = None,
        max_velocity: Sequence[float] | None = None,
        max_acceleration: Sequence[float] | None = None,
        max_jump: Sequence[float] | None = None,
        urdf: Mapping[str, UrdfJointLimit] | None = None,
    ) -> JointLimits:
        """Combine explicit parameters (they win) with URDF limits (else unlimited); validate."""
        names = tuple(names)
        n = len(names)
        urdf = urdf or {}
        inf = np.full(n, math.inf)
        u_lo = np.array([urdf[j].lower if j in urdf else -math.inf for j in names], dtype=float)
        u_hi = np.array([urdf[j].upper if j in urdf else math.inf for j in names], dtype=float)
        u_v = np.array([urdf[j].velocity if j in urdf else math.inf for j in names], dtype=float)
        lo = _vector("position_lower", lower, n)
        hi = _vector("position_upper", upper, n)
        v = _vector("max_velocity", max_velocity, n)
        a = _vector("max_acceleration", max_acceleration, n)
        j = _vector("max_jump", max_jump, n)
        limits = cls(
            names=names,
            lower=u_lo if lo is None else lo,
            upper=u_hi if hi is None else hi,
            max_velocity=u_v if v is None else v,
            max_acceleration=inf.copy() if a is None else a,
            max_jump=inf.copy() if j is None else j,
            continuous=tuple(name for name in names if name in urdf and urdf[name].continuous),
            urdf=urdf or None,
        )
        limits.validate()
        return limits

    def validate(self) -> None:
        """Raise :class:`LimitsError` naming the joint and value when a limit is inconsistent."""
        for i, name in enumerate(self.names):
            if not self.lower[i] <= self.upper[i]:
                raise LimitsError(
                    f"joint {name!r}: position_lower {self.lower[i]} > position_upper "
                    f"{self.upper[i]}; swap or fix them"
                )
            for label, arr in (
                ("max_velocity", self.max_velocity),
                ("max_acceleration", self.max_acceleration),
                ("max_jump", self.max_jump),
            ):
                if not arr[i] > 0:
                    raise LimitsError(
                        f"joint {name!r}: {label} must be > 0 (use .inf for no limit), got {arr[i]}"
                    )

    def unlimited(self) -> list[str]:
        """Joints with no position limit on at least one side."""
        return [
            n
            for i, n in enumerate(self.names)
            if not (np.isfinite(self.lower[i]) and np.isfinite(self.upper[i]))
        ]

    def missing(self) -> tuple[list[str], list[str]]:
        """``(joints without finite position limits, joints without a finite velocity limit)``.

        A joint the URDF declares ``continuous`` needs no position limits (it has none by design)
        unless a parameter gave it one side; it still needs a finite velocity limit.
        """
        position = []
        for i, n in enumerate(self.names):
            finite = np.isfinite(self.lower[i]), np.isfinite(self.upper[i])
            if all(finite) or (n in self.continuous and not any(finite)):
                continue
            position.append(n)
        velocity = [n for i, n in enumerate(self.names) if not np.isfinite(self.max_velocity[i])]
        return position, velocity


def arming_refusal(limits: JointLimits, allow_unlimited: bool = False) -> str | None:
    """Why a robot must not be armed with ``limits``, or None when it may.

    Arming needs finite position limits (both sides) and a finite velocity limit on every joint,
    unless ``allow_unlimited`` (simulation/bench only): otherwise only ``max_jump`` bounds a
    command and a bad chunk could drive a joint into its end stop at full speed. A joint the URDF
    declares mimic (it follows its leader) or fixed/floating/planar is refused even then.
    """
    if (blocked := uncommandable(limits.names, limits.urdf)) is not None:
        return f"refusing to arm: {blocked}"
    if allow_unlimited:
        return None
    position, velocity = limits.missing()
    if not position and not velocity:
        return None
    parts = []
    if position:
        parts.append(f"no finite position limits for {position} (set position_lower and position_upper)")
    if velocity:
        parts.append(f"no finite velocity limit for {velocity} (set max_velocity)")
    return (
        "refusing to arm: "
        + "; ".join(parts)
        + limits_hint([n for n in limits.names if n in position or n in velocity], limits.urdf)
        + "; allow_unlimited: true skips this check (simulation/bench only, never on a real robot)"
    )


def outside_limits(limits: JointLimits, q: np.ndarray) -> list[tuple[str, float, float, float]]:
    """Joints of ``q`` (``[n_joints]``, rad or m) outside ``[lower, upper]``: ``(name, value, lower, upper)``.

    A non-finite value counts as outside.
    """
    q = np.asarray(q, dtype=np.float64)
    bad = ~((q >= limits.lower) & (q <= limits.upper))
    return [
        (limits.names[i], float(q[i]), float(limits.lower[i]), float(limits.upper[i]))
        for i in np.flatnonzero(bad)
    ]


def describe_outside(what: str, outside: Sequence[tuple[str, float, float, float]]) -> str:
    """One phrase naming each joint of :func:`outside_limits`, its value and its limits."""
    parts = [f"{name!r} at {value:.4g} outside [{lo:.4g}, {hi:.4g}]" for name, value, lo, hi in outside]
    return f"{what} of joint " + ", ".join(parts)


@dataclass(frozen=True)
class FilterResult:
    """Output of one filter step: the command, its velocity, and why it differs from the target."""

    positions: np.ndarray
    velocities: np.ndarray
    reasons: tuple[str, ...] = ()
    held: bool = False


class SafetyFilter:
    """Stateful limit filter run once per control period (see the module docstring for the rule).

    Args:
        limits: the joint limits.
        period_ns: control period (the ``dt`` of the velocity/acceleration limits), ns.
        speed_scale: in ``(0, 1]``; scales velocity limits by it and acceleration by its square.

    Raises:
        LimitsError: ``period_ns <= 0`` or a speed scale outside ``(0, 1]``.
    """

    def __init__(self, limits: JointLimits, period_ns: int, speed_scale: float = 1.0) -> None:
        if period_ns <= 0:
            raise LimitsError(f"period_ns must be > 0, got {period_ns}")
        self.limits = limits
        self.period_ns = int(period_ns)
        self.speed_scale = check_speed_scale(speed_scale)
        n = len(limits.names)
        #: the previous command; None before the first one (then it starts from the measured state)
        self.last_command: np.ndarray | None = None
        self.last_velocity = np.zeros(n)

    def copy(self, period_ns: int | None = None) -> SafetyFilter:
        """An independent copy (for look-ahead), optionally with another period."""
        other = copy.copy(self)
        other.last_velocity = self.last_velocity.copy()
        if period_ns is not None:
            other.period_ns = int(period_ns)
        return other

    def reset(self, position: np.ndarray | None = None) -> None:
        """Forget the previous command (e.g. on arming); start from ``position`` at rest.

        Raises:
            LimitsError: ``position`` is outside the position limits (naming the joint).
        """
        if position is not None:
            position = np.asarray(position, dtype=np.float64).copy()
            if outside := outside_limits(self.limits, position):
                raise LimitsError(describe_outside("cannot start at the position", outside))
        self.last_command = position
        self.last_velocity = np.zeros(len(self.limits.names))

    def set_limits(self, limits: JointLimits) -> None:
        """Replace the limits, keeping the invariant that the previous command is inside them.

        Raises:
            LimitsError: the previous command is outside the new range (naming the joint, its
                command and the new range); the old limits stay in force.
        """
        limits.validate()
        if self.last_command is not None and (outside := outside_limits(limits, self.last_command)):
            raise LimitsError(
                describe_outside("the new limits would put the current command", outside)
                + "; move the joint inside the new range first, or disarm before changing them"
            )
        self.limits = limits

    def hold(self, measured: np.ndarray | None, reason: str = "hold") -> FilterResult | None:
        """Hold the previous command, else the measured position; None if neither can be held.

        The measured position is held only when it is finite and inside the position limits
        (a clipped hold would step to the limit in one tick).
        """
        if self.last_command is None:
            if measured is None:
                return None
            measured = np.asarray(measured, dtype=np.float64)
            if outside_limits(self.limits, measured):
                return None
            self.last_command = measured.copy()
        self.last_velocity = np.zeros(len(self.limits.names))
        return FilterResult(
            positions=self.last_command.copy(),
            velocities=self.last_velocity.copy(),
            reasons=(reason,),
            held=True,
        )

    def filter(self, target: np.ndarray, measured: np.ndarray) -> FilterResult | None:
        """Limit ``target`` (``[n_joints]``) given the measured position; updates the filter state.

        Returns None when there is no previous command and the measured state is outside the
        position limits (nothing may be commanded; the caller reports it).

        Raises:
            LimitsError: the measured state is non-finite and there is no command to hold.
        """
        lim = self.limits
        target = np.asarray(target, dtype=np.float64)
        measured = np.asarray(measured, dtype=np.float64)
        if not np.all(np.isfinite(measured)):
            res = self.hold(None, "nonfinite_state")
            if res is None:
                raise LimitsError("measured state is non-finite and there is no command to hold")
            return res
        if self.last_command is None and outside_limits(lim, measured):
            return None
        if target.shape != lim.lower.shape or not np.all(np.isfinite(target)):
            return self.hold(measured, "nonfinite_target")
        dt = self.period_ns * 1e-9
        prev = self.last_command if self.last_command is not None else measured
        pv = self.last_velocity
        vmax = lim.max_velocity * self.speed_scale
        amax = lim.max_acceleration * (self.speed_scale * self.speed_scale)
        step = vmax * dt
        lo = np.maximum(np.maximum(lim.lower, prev - step), measured - lim.max_jump)
        hi = np.minimum(np.minimum(lim.upper, prev + step), measured + lim.max_jump)
        if np.any(lo > hi):
            self.last_command = prev.copy()
            return self.hold(measured, "tracking_error")
        reasons: list[str] = []
        dv = amax * dt
        alo = prev + (pv - dv) * dt
        ahi = prev + (pv + dv) * dt
        lo2 = np.maximum(lo, alo)
        hi2 = np.minimum(hi, ahi)
        ok = lo2 <= hi2
        if not np.all(ok):
            reasons.append("acceleration_relaxed")
        lo = np.where(ok, lo2, lo)
        hi = np.where(ok, hi2, hi)
        cmd = np.clip(target, lo, hi)
        if np.any(cmd != target):
            reasons.append("clamped")
        vel = (cmd - prev) / dt
        self.last_command = cmd
        self.last_velocity = vel
        return FilterResult(positions=cmd.copy(), velocities=vel, reasons=tuple(reasons))


def check_speed_scale(value: float) -> float:
    """Validate a speed scale in ``(0, 1]``."""
    value = float(value)
    if not 0.0 < value <= 1.0:
        raise LimitsError(f"speed_scale must be in (0, 1], got {value}")
    return value
