"""A simulated position-controlled arm: the embedded default's stand-in for hardware.

Each joint is a servo that tracks its commanded position with a first-order lag (time constant
``tau``), never faster than its velocity limit and never outside its position limits, like the
position interface of a ros2_control hardware component. Time is integer nanoseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vla_ros.contract.errors import VlaRosError


class SimCommandError(VlaRosError, ValueError):
    """A command the simulated robot refuses (it keeps its previous target)."""


@dataclass(frozen=True)
class SimArmConfig:
    """Joints, limits and servo response of the simulated arm (radians, seconds)."""

    joint_names: tuple[str, ...] = ("joint_1", "joint_2", "joint_3", "joint_4", "joint_5", "joint_6")
    lower: tuple[float, ...] = (-2.9, -1.8, -2.5, -3.0, -1.8, -3.0)
    upper: tuple[float, ...] = (2.9, 1.8, 2.5, 3.0, 1.8, 3.0)
    max_velocity: tuple[float, ...] = (2.0, 2.0, 2.0, 3.0, 3.0, 3.0)
    initial: tuple[float, ...] = (0.0, 0.4, -0.8, 0.0, 0.4, 0.0)
    tau: float = 0.05

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n == 0 or len(set(self.joint_names)) != n:
            raise ValueError(f"SimArmConfig.joint_names must be non-empty and unique, got {self.joint_names}")
        for name in ("lower", "upper", "max_velocity", "initial"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"SimArmConfig.{name} has {len(getattr(self, name))} values for {n} joints "
                    f"{list(self.joint_names)}; give one per joint"
                )
        lo, hi = np.asarray(self.lower), np.asarray(self.upper)
        if np.any(lo >= hi):
            raise ValueError(f"SimArmConfig: every lower limit must be below its upper limit ({lo} vs {hi})")
        if np.any(np.asarray(self.max_velocity) <= 0) or self.tau <= 0:
            raise ValueError("SimArmConfig: max_velocity and tau must be > 0")


class SimArm:
    """State and servo dynamics of the simulated arm."""

    def __init__(self, config: SimArmConfig | None = None) -> None:
        self.config = config or SimArmConfig()
        c = self.config
        self._lower = np.asarray(c.lower, dtype=np.float64)
        self._upper = np.asarray(c.upper, dtype=np.float64)
        self._vmax = np.asarray(c.max_velocity, dtype=np.float64)
        self.position = np.clip(np.asarray(c.initial, dtype=np.float64), self._lower, self._upper)
        self.velocity = np.zeros_like(self.position)
        self.target = self.position.copy()
        self._index = {name: i for i, name in enumerate(c.joint_names)}

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Joint names in state order."""
        return self.config.joint_names

    def command(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Set target positions for the named joints; others keep their target.

        Raises :class:`SimCommandError` (and changes nothing) for unknown joints, a length
        mismatch or non-finite values. Targets outside the limits are clamped to them.
        """
        if len(names) != len(positions):
            raise SimCommandError(
                f"command has {len(names)} names but {len(positions)} positions; send one per joint"
            )
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise SimCommandError(
                f"command names unknown joints {unknown}; the simulated arm has {list(self.joint_names)}"
            )
        values = np.asarray(positions, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise SimCommandError(f"command has non-finite positions {values.tolist()}; ignored")
        idx = [self._index[n] for n in names]
        self.target[idx] = np.clip(values, self._lower[idx], self._upper[idx])

    def command_array(self, positions: Sequence[float]) -> None:
        """Set all targets, in joint order (a forward position controller's ``commands``)."""
        if len(positions) != len(self.joint_names):
            raise SimCommandError(
                f"command array has {len(positions)} values for {len(self.joint_names)} joints "
                f"{list(self.joint_names)}"
            )
        self.command(self.joint_names, positions)

    def step(self, dt_ns: int) -> None:
        """Advance the servos by ``dt_ns`` nanoseconds (exact first-order response, rate-limited)."""
        if dt_ns <= 0:
            return
        dt = dt_ns * 1e-9
        err = self.target - self.position
        # first-order response over dt, then the velocity limit
        move = err * (1.0 - np.exp(-dt / self.config.tau))
        move = np.clip(move, -self._vmax * dt, self._vmax * dt)
        self.position = np.clip(self.position + move, self._lower, self._upper)
        self.velocity = move / dt
