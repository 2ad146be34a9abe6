"""The simulated arm's tasks: reach a target shown in the camera image with the fingertip.

:data:`TASKS` names them: ``reach`` (:class:`ReachTask`, one fixed target; the bundled ACT's
task) and ``switching_targets`` (:class:`SwitchingTargetsTask`, a sequence of targets under a
deadline, where inference latency matters). An episode's targets and progress are a
:class:`TaskEpisode`; the closed loop (:mod:`vla_ros.sim.loop`) draws its current target and
updates it every control tick.

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

from collections.abc import Sequence
from dataclasses import dataclass, field

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
        return self.approach(q, goal_pose(target, len(q)), horizon, dt)

    def approach(self, start: np.ndarray, goal: np.ndarray, horizon: int, dt: float) -> np.ndarray:
        """The expert's motion from joint positions ``start`` to ``goal`` as a delta chunk
        ``[horizon, n]`` float32 relative to ``start`` (row 0 is zero; module docstring)."""
        q = np.asarray(start, dtype=np.float64)
        err = np.asarray(goal, dtype=np.float64) - q
        tc = max(self.time_constant, float(np.max(np.abs(err))) / self.max_speed)
        frac = 1.0 - np.exp(-np.arange(horizon) * dt / tc)
        return (frac[:, None] * err[None, :]).astype(np.float32)

    def continuation(
        self, state: np.ndarray, committed: np.ndarray, goal: np.ndarray, horizon: int, dt: float
    ) -> np.ndarray:
        """The expert's chunk that continues ``d`` committed actions (real-time chunking).

        ``committed`` ``[d, n]`` (absolute, for ``k * dt`` after the state, ``d < horizon``) are
        the chunk's first ``d`` actions; from the last of them the expert approaches ``goal``
        (:meth:`approach`), its first step bent to continue the committed velocity: with
        ``dv`` the committed last step minus the approach's first, ``dv * k * exp(-(k - 1) /
        2)`` is added to approach step ``k`` (exactly the committed step at ``k = 1``, gone by
        ~15 steps), so the chunk has no kink where the committed actions end. Returns the
        delta chunk ``[horizon, n]`` float32 relative to ``state``; ``d == 0`` is
        :meth:`approach` from the state.
        """
        q = np.asarray(state, dtype=np.float64)
        c = np.asarray(committed, dtype=np.float64).reshape(-1, len(q))
        d = len(c)
        if d == 0:
            return self.approach(q, goal, horizon, dt)
        if d >= horizon:
            raise ValueError(f"{d} committed actions leave nothing of a {horizon}-action chunk to plan")
        path = self.approach(c[-1], goal, horizon - d + 1, dt).astype(np.float64)
        if d >= 2:
            k = np.arange(horizon - d + 1, dtype=np.float64)[:, None]
            dv = (c[-1] - c[-2]) - path[1]
            path = path + dv[None, :] * k * np.exp(-(k - 1.0) / 2.0)
        rest = path[1:] + (c[-1] - q)[None, :]
        return np.concatenate([c - q[None, :], rest]).astype(np.float32)

    @staticmethod
    def distance(positions: np.ndarray, target: np.ndarray) -> float:
        """Fingertip-to-target distance (the task metric; lower is better)."""
        return float(np.linalg.norm(fingertip(positions) - np.asarray(target, dtype=np.float64)))

    def sample_episode(self, rng: np.random.Generator) -> TaskEpisode:
        """A random one-target episode (no deadline)."""
        return self.episode(self.sample_target(rng))

    def episode(self, target: np.ndarray | Sequence[float]) -> TaskEpisode:
        """The one-target episode for ``target`` ``[x, y]`` (no deadline)."""
        return TaskEpisode(np.asarray(target, dtype=np.float64)[None, :], self.success_radius, None)


@dataclass
class TaskEpisode:
    """The targets of one episode, shown one at a time, and the progress through them.

    ``targets`` is ``[K, 2]``; the current one (``target``) is drawn in the cameras. When the
    fingertip comes within ``success_radius`` of it, that time is recorded and the next target
    replaces it at once (the last one stays shown). The episode succeeds when every target was
    reached within ``deadline_s`` seconds of its start (``None``: no deadline).
    """

    targets: np.ndarray
    success_radius: float
    deadline_s: float | None
    reached_at_s: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.float64)
        if self.targets.ndim != 2 or self.targets.shape[1] != 2 or len(self.targets) == 0:
            raise ValueError(
                f"TaskEpisode.targets must be [K >= 1, 2] points, got shape {self.targets.shape}"
            )
        if not self.success_radius > 0:
            raise ValueError(f"TaskEpisode.success_radius must be > 0, got {self.success_radius}")

    @property
    def index(self) -> int:
        """Index of the target shown now (``K - 1`` once all are reached)."""
        return min(len(self.reached_at_s), len(self.targets) - 1)

    @property
    def target(self) -> np.ndarray:
        """The target shown now ``[x, y]``."""
        return self.targets[self.index]

    @property
    def done(self) -> bool:
        """Every target has been reached (in time or not)."""
        return len(self.reached_at_s) == len(self.targets)

    @property
    def success(self) -> bool:
        """Every target reached, the last one no later than the deadline."""
        return self.done and (self.deadline_s is None or self.reached_at_s[-1] <= self.deadline_s + 1e-9)

    @property
    def time_to_success_s(self) -> float | None:
        """Seconds from the start to reaching the last target, when the episode succeeded."""
        return self.reached_at_s[-1] if self.success else None

    def distance(self, positions: np.ndarray) -> float:
        """Fingertip distance to the current target."""
        return ReachTask.distance(positions, self.target)

    def update(self, positions: np.ndarray, t_s: float) -> bool:
        """Record a reach of the current target at ``t_s``; True when the shown target changed."""
        if self.done or self.distance(positions) > self.success_radius:
            return False
        self.reached_at_s.append(float(t_s))
        return not self.done


@dataclass(frozen=True)
class SwitchingTargetsTask(ReachTask):
    """Reach ``n_targets`` targets in turn before ``deadline_s``: the latency-sensitive task.

    Each target appears when the previous one is reached (fingertip within ``success_radius``),
    drawn in the camera images only; successive targets are at least ``min_separation`` apart,
    so every switch is a new reach. Why this task for latency: a policy sees a switch only in
    an observation taken after it, and its chunk acts ``latency`` later, so every switch costs
    at least the inference delay; executing synchronously (hold while inferring) also pays it
    on every chunk; and chunks that disagree at their boundaries (a new target, a new noise
    sample of a flow-matching policy) show as seams. A moving target was not chosen: the
    policies see one frame (no history), so they cannot tell a target's velocity.

    Success: all targets reached, the last within ``deadline_s`` seconds of the start. Time to
    success: the time the last target was reached. Expert and region as :class:`ReachTask`.
    """

    n_targets: int = 3
    min_separation: float = 0.35
    deadline_s: float = 8.0

    def __post_init__(self) -> None:
        if self.n_targets < 1:
            raise ValueError(f"SwitchingTargetsTask.n_targets must be >= 1, got {self.n_targets}")
        if not self.deadline_s > 0:
            raise ValueError(f"SwitchingTargetsTask.deadline_s must be > 0, got {self.deadline_s}")
        r_hi = self.radius[1]
        if not 0 <= self.min_separation < 2 * r_hi:
            raise ValueError(
                f"SwitchingTargetsTask.min_separation {self.min_separation} cannot be met in the region "
                f"(radius up to {r_hi}); use a value in [0, {2 * r_hi})"
            )

    def sample_targets(self, rng: np.random.Generator) -> np.ndarray:
        """``[n_targets, 2]`` targets, each at least ``min_separation`` from the one before."""
        out = [self.sample_target(rng)]
        while len(out) < self.n_targets:
            cand = self.sample_target(rng)
            if np.linalg.norm(cand - out[-1]) >= self.min_separation:
                out.append(cand)
        return np.stack(out)

    def sample_episode(self, rng: np.random.Generator) -> TaskEpisode:
        """A random episode: :meth:`sample_targets` with this task's radius and deadline."""
        return TaskEpisode(self.sample_targets(rng), self.success_radius, self.deadline_s)

    def episode(self, target: np.ndarray | Sequence[float]) -> TaskEpisode:
        """The episode for given targets ``[K, 2]`` (or one ``[x, y]``) with this task's deadline."""
        pts = np.asarray(target, dtype=np.float64).reshape(-1, 2)
        return TaskEpisode(pts, self.success_radius, self.deadline_s)


#: the simulated arm's tasks by name (``vla_ros.sim`` tools take ``--task NAME``)
TASKS: dict[str, type[ReachTask]] = {"reach": ReachTask, "switching_targets": SwitchingTargetsTask}


def make_task(name: str, **settings: float) -> ReachTask:
    """The task ``name`` of :data:`TASKS` with ``settings`` (its dataclass fields).

    Raises ``ValueError`` naming the known tasks for an unknown name.
    """
    if name not in TASKS:
        raise ValueError(f"unknown sim task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name](**settings)
