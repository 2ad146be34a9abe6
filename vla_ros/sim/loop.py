"""The pure closed loop: simulated arm + renderer + a policy + the executor's controller, no ROS.

One episode runs on simulated integer-nanosecond time, like the node graph does on the wall
clock: every ``control_period_s`` the controller gets the joint state and ticks
(:class:`vla_ros.control.controller.ChunkController`, the executor node's whole tick) and its
command moves the servos (:class:`vla_ros.sim.robot.SimArm`); every camera period the arm is
rendered (:func:`vla_ros.sim.render.render`), the policy maps that observation to an action chunk
stamped with the observation time, and the chunk joins the controller's buffer ``latency_s``
later (the inference time the node graph would add).

Policies are small objects with ``dt`` (seconds between actions), ``action_mode``
(``absolute`` | ``delta``) and ``__call__(Observation) -> [horizon, n]``: :class:`RuntimePolicy`
(a loaded policy card), :class:`ExpertPolicy` (the scripted expert) and :class:`HoldPolicy`
(the trivial baseline: stay where you are).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from vla_ros.contract.observation import Observation
from vla_ros.control.controller import ChunkController, ControllerConfig
from vla_ros.control.safety import JointLimits
from vla_ros.sim.render import render
from vla_ros.sim.robot import SimArm, SimArmConfig
from vla_ros.sim.task import ReachTask

NS = 1_000_000_000
#: simulated time starts here (positive stamps, like a real clock)
T0_NS = NS


class Policy(Protocol):
    """What the loop needs from a policy."""

    dt: float
    action_mode: str

    def __call__(self, obs: Observation) -> np.ndarray: ...


class RuntimePolicy:
    """A loaded :class:`vla_ros.runtime` runtime as a loop policy (chunks as the node publishes)."""

    def __init__(self, runtime: Any) -> None:
        card = runtime.card
        self.runtime = runtime
        self.dt = float(card.io.dt)
        self.action_mode = card.output_action_mode
        self.cameras = tuple(card.io.camera_names)
        self.image_size = tuple(card.io.image_size)

    def __call__(self, obs: Observation) -> np.ndarray:
        return self.runtime.infer(obs)


class ExpertPolicy:
    """The scripted expert of :class:`~vla_ros.sim.task.ReachTask` (it knows the target)."""

    action_mode = "delta"

    def __init__(self, task: ReachTask, target: np.ndarray, horizon: int, dt: float) -> None:
        self.task, self.target, self.horizon, self.dt = task, np.asarray(target), horizon, dt

    def __call__(self, obs: Observation) -> np.ndarray:
        return self.task.expert_chunk(obs.state, self.target, self.horizon, self.dt)


class HoldPolicy:
    """The trivial baseline: every chunk says "stay where you are"."""

    action_mode = "delta"

    def __init__(self, horizon: int, n_joints: int, dt: float) -> None:
        self.horizon, self.n_joints, self.dt = horizon, n_joints, dt

    def __call__(self, obs: Observation) -> np.ndarray:
        return np.zeros((self.horizon, self.n_joints), dtype=np.float32)


@dataclass(frozen=True)
class LoopConfig:
    """Timing and sensors of the closed loop (the node graph's defaults in config/demo.yaml)."""

    cameras: tuple[str, ...] = ("front", "wrist")
    image_size: tuple[int, int] = (64, 64)  # (height, width) rendered
    control_period_s: float = 0.01
    camera_period_s: float = 1.0 / 30.0
    latency_s: float = 0.01
    duration_s: float = 3.0
    max_jump: float = 0.5


@dataclass
class Episode:
    """What one episode did. Distances are fingertip-to-target (the task metric)."""

    target: np.ndarray
    initial_distance: float
    final_distance: float
    chunks: int = 0
    commands: int = 0
    reached_at_s: float | None = None  # first time within the task's success radius
    distances: list[float] = field(default_factory=list)  # one per control tick


def controller_for(arm_config: SimArmConfig, period_ns: int, max_jump: float) -> ChunkController:
    """The executor's controller with the simulated arm's limits, armed."""
    names = arm_config.joint_names
    limits = JointLimits.build(
        names,
        lower=arm_config.lower,
        upper=arm_config.upper,
        max_velocity=arm_config.max_velocity,
        max_jump=[max_jump],
    )
    return ChunkController(ControllerConfig(joint_names=names, period_ns=period_ns), limits, armed=True)


def run_episode(
    policy: Policy,
    target: np.ndarray,
    *,
    task: ReachTask | None = None,
    config: LoopConfig | None = None,
    arm_config: SimArmConfig | None = None,
    initial: np.ndarray | None = None,
    on_observation: Callable[[Observation, np.ndarray], None] | None = None,
    on_tick: Callable[[int, tuple[str, ...], np.ndarray], None] | None = None,
) -> Episode:
    """Run ``policy`` in the closed loop for ``config.duration_s`` of simulated time.

    ``on_observation(obs, chunk)`` sees every observation and the chunk the policy returned
    (the training script records demonstrations through it); ``on_tick(t_ns, joint_names,
    positions)`` sees the measured joint state at every control tick (the sim bag records it).
    """
    task = task or ReachTask()
    cfg = config or LoopConfig()
    arm_cfg = arm_config or SimArmConfig()
    if initial is not None:
        arm_cfg = SimArmConfig(
            joint_names=arm_cfg.joint_names,
            lower=arm_cfg.lower,
            upper=arm_cfg.upper,
            max_velocity=arm_cfg.max_velocity,
            initial=tuple(float(v) for v in initial),
            tau=arm_cfg.tau,
        )
    arm = SimArm(arm_cfg)
    names = arm.joint_names
    target = np.asarray(target, dtype=np.float64)
    period_ns = round(cfg.control_period_s * NS)
    camera_ns = round(cfg.camera_period_s * NS)
    latency_ns = round(cfg.latency_s * NS)
    dt_ns = round(policy.dt * NS)
    ctl = controller_for(arm_cfg, period_ns, cfg.max_jump)
    episode = Episode(target, task.distance(arm.position, target), float("nan"))
    pending: list[tuple[int, int, np.ndarray]] = []  # (available at, stamp, actions)
    t, end, next_frame = T0_NS, T0_NS + round(cfg.duration_s * NS), T0_NS
    h, w = cfg.image_size
    while t <= end:
        ctl.update_state(t, names, arm.position)
        if on_tick is not None:
            on_tick(t, names, arm.position.copy())
        if t >= next_frame:
            images = {c: render(arm.position, h, w, camera=c, target=tuple(target)) for c in cfg.cameras}
            obs = Observation(images=images, state=arm.position.copy(), stamp_ns=t)
            actions = np.asarray(policy(obs), dtype=np.float32)
            if on_observation is not None:
                on_observation(obs, actions)
            pending.append((t + latency_ns, t, actions))
            next_frame += camera_ns
        for item in [p for p in pending if p[0] <= t]:
            pending.remove(item)
            ctl.add_chunk(
                stamp_ns=item[1],
                dt_ns=dt_ns,
                joint_names=names,
                actions=item[2],
                action_mode=policy.action_mode,
                seq=episode.chunks,
            )
            episode.chunks += 1
        cmd = ctl.tick(t)
        if cmd is not None:
            arm.command(names, cmd.positions)
            episode.commands += 1
        arm.step(period_ns)
        t += period_ns
        d = task.distance(arm.position, target)
        episode.distances.append(d)
        if episode.reached_at_s is None and d <= task.success_radius:
            episode.reached_at_s = (t - T0_NS) / NS
    episode.final_distance = episode.distances[-1]
    return episode


@dataclass(frozen=True)
class Evaluation:
    """Episodes of one policy on a fixed set of targets."""

    episodes: tuple[Episode, ...]
    success_radius: float

    @property
    def mean_final_distance(self) -> float:
        """Mean fingertip-to-target distance at the end of the episodes."""
        return float(np.mean([e.final_distance for e in self.episodes]))

    @property
    def success_rate(self) -> float:
        """Share of episodes that end within the success radius."""
        return float(np.mean([e.final_distance <= self.success_radius for e in self.episodes]))


def evaluation_targets(n: int, seed: int = 1234, task: ReachTask | None = None) -> list[np.ndarray]:
    """``n`` reproducible targets for evaluation (a different stream from training's)."""
    rng = np.random.default_rng(seed)
    task = task or ReachTask()
    return [task.sample_target(rng) for _ in range(n)]


def evaluate(
    make_policy: Callable[[np.ndarray], Policy],
    targets: list[np.ndarray],
    *,
    task: ReachTask | None = None,
    config: LoopConfig | None = None,
) -> Evaluation:
    """Run one episode per target from the arm's default start; ``make_policy(target)``."""
    task = task or ReachTask()
    episodes = tuple(run_episode(make_policy(t), t, task=task, config=config) for t in targets)
    return Evaluation(episodes, task.success_radius)
