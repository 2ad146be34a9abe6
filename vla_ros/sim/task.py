"""The bundled policy's task: reach a target shown in the camera image with the fingertip.

The simulated arm is a planar chain (:mod:`vla_ros.sim.render`). A target point is drawn as the
white marker in both camera images; it is *only* visible there (the joint state does not carry
it), so a policy has to look. The metric is the distance from the fingertip (the chain's end) to
the target in the render's unit-free plane (the arm is 1.0 long).

The scripted expert is a deterministic, smooth function of the joint state and the target:

* the goal pose ``q*`` is taken from a two-parameter posture family, joint 1 = ``theta`` and
  joints 2..n all equal to one curl ``kappa >= 0``: the reach ``|tip|`` depends on ``kappa``
  alone (monotone on ``[0, KAPPA_MAX]``), ``theta`` turns the whole arm, so every target in
  :class:`ReachTask`'s region has exactly one goal pose (no IK ambiguity for a learner);
* the chunk moves from the current state toward ``q*`` along a first-order approach
  ``(q* - q) * (1 - exp(-t / T))``, ``T = max(time_constant, |q* - q|_inf / max_speed)`` so no
  joint starts faster than ``max_speed``.

Chunks are *delta* actions (relative to the state at the observation), the ACT convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vla_ros.sim.render import chain_points, default_link_lengths

#: the curl beyond which the reach of the 6-link arm stops shrinking (checked in test/sim)
KAPPA_MAX = 1.1


def fingertip(positions: np.ndarray, link_lengths: np.ndarray | None = None) -> np.ndarray:
    """The end of the chain ``[x, y]`` for joint positions ``positions``."""
    q = np.asarray(positions, dtype=np.float64)
    lengths = default_link_lengths(len(q)) if link_lengths is None else link_lengths
    return chain_points(q, lengths)[-1]


def _posture(theta: float, kappa: float, n: int) -> np.ndarray:
    q = np.full(n, kappa, dtype=np.float64)
    q[0] = theta
    return q


def goal_pose(target: np.ndarray | tuple[float, float], n_joints: int = 6) -> np.ndarray:
    """The expert's goal joint positions for ``target`` (posture family ``[theta, kappa, ...]``).

    Raises ``ValueError`` when the target is outside the family's reach (closer to the base than
    the fully curled arm, or further than the arm's length).
    """
    t = np.asarray(target, dtype=np.float64)
    r = float(np.hypot(t[0], t[1]))
    lengths = default_link_lengths(n_joints)
    r_min = float(np.linalg.norm(fingertip(_posture(0.0, KAPPA_MAX, n_joints), lengths)))
    if not r_min <= r <= 1.0:
        raise ValueError(
            f"target {t.tolist()} is {r:.3f} from the base; the expert reaches [{r_min:.3f}, 1.0]; "
            "pick a target inside ReachTask's region"
        )
    lo, hi = 0.0, KAPPA_MAX  # reach shrinks monotonically with kappa on [0, KAPPA_MAX]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if np.linalg.norm(fingertip(_posture(0.0, mid, n_joints), lengths)) > r:
            lo = mid
        else:
            hi = mid
    kappa = 0.5 * (lo + hi)
    tip0 = fingertip(_posture(0.0, kappa, n_joints), lengths)
    theta = float(np.arctan2(t[1], t[0]) - np.arctan2(tip0[1], tip0[0]))
    theta = (theta + np.pi) % (2 * np.pi) - np.pi
    return _posture(theta, kappa, n_joints)


@dataclass(frozen=True)
class ReachTask:
    """Target region, expert motion and success threshold of the reach task.

    Targets are drawn uniformly in a ring sector around the base: distance ``radius`` and
    angle from straight up ``angle`` (radians, positive to the right), all inside the front
    camera's view. ``success_radius`` is the fingertip distance that counts as reached.
    """

    radius: tuple[float, float] = (0.45, 0.8)
    angle: tuple[float, float] = (-0.75, 0.75)
    time_constant: float = 0.3
    max_speed: float = 1.5
    success_radius: float = 0.05

    def sample_target(self, rng: np.random.Generator) -> np.ndarray:
        """A random target ``[x, y]`` in the region."""
        r = rng.uniform(*self.radius)
        a = rng.uniform(*self.angle)
        return np.array([r * np.sin(a), r * np.cos(a)])

    def expert_chunk(self, state: np.ndarray, target: np.ndarray, horizon: int, dt: float) -> np.ndarray:
        """The expert's delta chunk ``[horizon, n]``: action ``k`` is for ``k * dt`` after the state."""
        q = np.asarray(state, dtype=np.float64)
        err = goal_pose(target, len(q)) - q
        tc = max(self.time_constant, float(np.max(np.abs(err))) / self.max_speed)
        frac = 1.0 - np.exp(-np.arange(horizon) * dt / tc)
        return (frac[:, None] * err[None, :]).astype(np.float32)

    @staticmethod
    def distance(positions: np.ndarray, target: np.ndarray) -> float:
        """Fingertip-to-target distance (the task metric; lower is better)."""
        return float(np.linalg.norm(fingertip(positions) - np.asarray(target, dtype=np.float64)))
