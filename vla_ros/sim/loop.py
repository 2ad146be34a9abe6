"""The pure closed loop: simulated arm + renderer + a policy + the executor's controller, no ROS.

One episode runs on simulated integer-nanosecond time, like the node graph does on the wall
clock: every ``control_period_s`` the controller gets the joint state and ticks
(:class:`vla_ros.control.controller.ChunkController`, the executor node's whole tick) and its
command moves the servos (:class:`vla_ros.sim.robot.SimArm`); on camera frames the arm is
rendered with the task's current target (:func:`vla_ros.sim.render.render`), the policy maps
that observation to an action chunk stamped with the observation time, and the chunk joins the
controller's buffer ``latency_s`` later (the injected inference delay).

When observations are taken is the *schedule* (:data:`SCHEDULES`):

* ``every_frame``: every camera frame, any number of inferences in flight (a pipelined policy);
* ``one_in_flight``: the first camera frame after the previous chunk arrived and at least
  ``execution_horizon`` actions after the previous observation (one inference at a time, as
  fast as possible: the asynchronous execution of ``latest``, ``temporal_ensemble``, ``blend``);
* ``sync``: synchronous execution: the robot holds while the policy infers; the chunk starts
  when it arrives (stamped with its arrival), ``execution_horizon`` actions of it are executed,
  then the next observation is taken.

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
from vla_ros.control.chunk import ChunkError
from vla_ros.control.controller import ChunkController, ControllerConfig
from vla_ros.control.delay import steps_for
from vla_ros.control.safety import JointLimits
from vla_ros.sim.render import render
from vla_ros.sim.robot import SimArm, SimArmConfig
from vla_ros.sim.task import ReachTask, TaskEpisode
from vla_ros.util.ticker import Ticker

NS = 1_000_000_000
#: simulated time starts here (positive stamps, like a real clock)
T0_NS = NS


class Policy(Protocol):
    """What the loop needs from a policy."""

    dt: float
    action_mode: str

    def __call__(self, obs: Observation) -> np.ndarray: ...


SCHEDULES = ("every_frame", "one_in_flight", "sync")


class RuntimePolicy:
    """A loaded :class:`vla_ros.runtime` runtime as a loop policy (chunks as the node publishes).

    With ``seed`` set and a card that samples noise (flow matching, diffusion), the sampler's
    initial noise comes from this object's generator (:meth:`reseed` makes episodes repeatable);
    otherwise from the runtime's own.
    """

    def __init__(self, runtime: Any, seed: int | None = None) -> None:
        card = runtime.card
        self.runtime = runtime
        self.dt = float(card.io.dt)
        converted = card.io.action_mode == "delta" and bool(card.postprocess.get("delta_to_absolute"))
        self.action_mode = "absolute" if converted else str(card.io.action_mode)
        self.cameras = tuple(card.io.camera_names)
        self.image_size = tuple(card.io.image_size)
        self.horizon = int(card.io.horizon)
        self._noise_shape = tuple(card.io.noise_shape) if card.io.needs_noise else None
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def reseed(self, seed: int) -> None:
        """Restart the noise generator at ``seed``."""
        self._rng = np.random.default_rng(seed)

    def __call__(self, obs: Observation) -> np.ndarray:
        noise = None
        if self._rng is not None and self._noise_shape is not None:
            noise = self._rng.standard_normal(self._noise_shape, dtype=np.float32)
        return self.runtime.infer(obs, noise=noise)


class ExpertPolicy:
    """The scripted expert of :class:`~vla_ros.sim.task.ReachTask` (it knows the target).

    ``target`` is a point ``[x, y]`` or a :class:`~vla_ros.sim.task.TaskEpisode`, whose current
    target it reaches for at each observation.
    """

    action_mode = "delta"

    def __init__(self, task: ReachTask, target: np.ndarray | TaskEpisode, horizon: int, dt: float) -> None:
        self.task, self.horizon, self.dt = task, horizon, dt
        self.target = target if isinstance(target, TaskEpisode) else np.asarray(target)

    def __call__(self, obs: Observation) -> np.ndarray:
        goal = self.target.target if isinstance(self.target, TaskEpisode) else self.target
        return self.task.expert_chunk(obs.state, goal, self.horizon, self.dt)


class HoldPolicy:
    """The trivial baseline: every chunk says "stay where you are"."""

    action_mode = "delta"

    def __init__(self, horizon: int, n_joints: int, dt: float) -> None:
        self.horizon, self.n_joints, self.dt = horizon, n_joints, dt

    def __call__(self, obs: Observation) -> np.ndarray:
        return np.zeros((self.horizon, self.n_joints), dtype=np.float32)


@dataclass(frozen=True)
class LoopConfig:
    """Timing, sensors and execution of the closed loop (the node graph's defaults in config/demo.yaml).

    Attributes:
        cameras, image_size: rendered cameras and their ``(height, width)``.
        control_period_s, camera_period_s: executor tick and camera frame periods.
        latency_s: injected inference delay: a chunk joins the executor this long after its
            observation's stamp (on simulated time). In ``rtc`` mode each observation carries
            what the executor will command (:func:`committed_prefix`) for the chunk's first
            ``d = steps_for(latency, policy dt) = ceil(latency / dt)`` actions
            (:func:`vla_ros.control.delay.steps_for`, the executor's and policy_node's count):
            those due before the arrival; one due exactly at the arrival tick is the chunk's
            first free action (:func:`vla_ros.control.rtc.takeover`).
        duration_s: episode length (simulated seconds).
        max_jump: the executor's ``max_jump`` (rad).
        mode: the executor's chunk mode (``temporal_ensemble`` | ``latest`` | ``blend`` | ...).
        schedule: when observations are taken (:data:`SCHEDULES`, see the module docstring).
        execution_horizon: ``sync``: actions executed of each chunk (0 = all);
            ``one_in_flight``: actions executed at least between two observations (0: none).
        stop_on_success: end the episode when the task episode succeeds.
        record: keep the per-tick commands and positions (:attr:`Episode.commands_log`).
        rtc_handover_steps: the executor's ``rtc_handover_steps`` (``rtc`` mode's hand-over span).
    """

    cameras: tuple[str, ...] = ("front", "wrist")
    image_size: tuple[int, int] = (64, 64)  # (height, width) rendered
    control_period_s: float = 0.01
    camera_period_s: float = 1.0 / 30.0
    latency_s: float = 0.01
    duration_s: float = 3.0
    max_jump: float = 0.5
    mode: str = "temporal_ensemble"
    schedule: str = "every_frame"
    execution_horizon: int = 0
    stop_on_success: bool = False
    record: bool = False
    rtc_handover_steps: int = 1

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"LoopConfig.schedule {self.schedule!r} unknown; use one of {SCHEDULES}")
        if self.latency_s < 0 or self.execution_horizon < 0:
            raise ValueError(
                f"LoopConfig.latency_s ({self.latency_s}) and execution_horizon "
                f"({self.execution_horizon}) must be >= 0"
            )


@dataclass
class Episode:
    """What one episode did. Distances are fingertip-to-current-target (the task metric).

    ``commands_log`` / ``positions_log`` (``LoopConfig.record``) hold one row per control tick
    (commanded and measured joint positions after the tick, rad; the command row repeats the
    last one on ticks without a command); ``boundaries`` the tick indices at which a new chunk
    joined the executor's buffer (chunk boundaries) and ``seam_window`` the ticks after each in
    which the executor hands over to it (one chunk step and a tick: ``rtc`` bridges from what
    it had committed to the chunk's next action, ``blend`` cross-fades); ``seam_windows`` the
    window of each boundary: ``seam_window``, or longer to reach the end of an ``rtc``
    hand-over that starts after the arrival (a committed prefix that runs on,
    ``ChunkController.handover_end_ns``); ``dropped`` counts
    chunks the executor refused (all their actions already in the past); ``rtc_mismatches``
    the chunks the ``rtc`` executor cross-faded in because they did not continue what it had
    committed.
    """

    target: np.ndarray
    initial_distance: float
    final_distance: float
    chunks: int = 0
    commands: int = 0
    reached_at_s: float | None = None  # first time the first target was within the success radius
    distances: list[float] = field(default_factory=list)  # one per control tick
    task_episode: TaskEpisode | None = None
    dropped: int = 0
    ticks: int = 0
    commands_log: list[np.ndarray] = field(default_factory=list)
    positions_log: list[np.ndarray] = field(default_factory=list)
    boundaries: list[int] = field(default_factory=list)
    seam_window: int = 1
    seam_windows: list[int] = field(default_factory=list)  # per boundary: >= seam_window
    rtc_mismatches: int = 0

    @property
    def success(self) -> bool:
        """The task episode's success (every target reached, within its deadline)."""
        return self.task_episode is not None and self.task_episode.success

    @property
    def time_to_success_s(self) -> float | None:
        """Seconds to the task episode's success, None when it did not succeed."""
        return None if self.task_episode is None else self.task_episode.time_to_success_s


def controller_for(
    arm_config: SimArmConfig,
    period_ns: int,
    max_jump: float,
    mode: str = "temporal_ensemble",
    rtc_handover_steps: int = 1,
) -> ChunkController:
    """The executor's controller with the simulated arm's limits, armed, in chunk mode ``mode``."""
    names = arm_config.joint_names
    limits = JointLimits.build(
        names,
        lower=arm_config.lower,
        upper=arm_config.upper,
        max_velocity=arm_config.max_velocity,
        max_jump=[max_jump],
    )
    return ChunkController(
        ControllerConfig(
            joint_names=names, period_ns=period_ns, mode=mode, rtc_handover_steps=rtc_handover_steps
        ),
        limits,
        armed=True,
    )


def committed_prefix(ctl: ChunkController, stamp_ns: int, dt_ns: int, d: int) -> np.ndarray | None:
    """Real-time chunking's committed actions for an observation at ``stamp_ns``: what the
    executor will command (:meth:`ChunkController.committed`: its plan through the safety
    filter) at ``stamp_ns + i * dt_ns``, ``i < d``
    (``[d, n]`` float32, absolute; the node graph's ``Observation.committed_actions``). None when
    ``d == 0`` or the plan does not cover one of those times (nothing committed yet).
    """
    if d <= 0:
        return None
    rows = [ctl.committed(stamp_ns + i * dt_ns) for i in range(d)]
    if any(r is None for r in rows):
        return None
    return np.stack(rows).astype(np.float32)


def _arm_with_initial(arm_cfg: SimArmConfig, initial: np.ndarray | None) -> SimArmConfig:
    if initial is None:
        return arm_cfg
    return SimArmConfig(
        joint_names=arm_cfg.joint_names,
        lower=arm_cfg.lower,
        upper=arm_cfg.upper,
        max_velocity=arm_cfg.max_velocity,
        initial=tuple(float(v) for v in initial),
        tau=arm_cfg.tau,
    )


def run_episode(
    policy: Policy,
    target: np.ndarray | TaskEpisode,
    *,
    task: ReachTask | None = None,
    config: LoopConfig | None = None,
    arm_config: SimArmConfig | None = None,
    initial: np.ndarray | None = None,
    on_observation: Callable[[Observation, np.ndarray], None] | None = None,
    on_tick: Callable[[int, tuple[str, ...], np.ndarray], None] | None = None,
) -> Episode:
    """Run ``policy`` in the closed loop for ``config.duration_s`` of simulated time.

    ``target`` is one point ``[x, y]`` (``task.episode(target)``) or a task episode (e.g.
    :meth:`~vla_ros.sim.task.SwitchingTargetsTask.sample_episode`); it is updated every tick
    and the cameras draw its current target. ``on_observation(obs, chunk)`` sees every
    observation and the chunk the policy returned (the training scripts record demonstrations
    through it); ``on_tick(t_ns, joint_names, positions)`` sees the measured joint state at
    every control tick (the sim bag records it).

    Raises ``ValueError`` for a bad :class:`LoopConfig`; the controller's ``ConfigError`` for an
    unknown ``config.mode``.
    """
    task = task or ReachTask()
    cfg = config or LoopConfig()
    arm_cfg = _arm_with_initial(arm_config or SimArmConfig(), initial)
    ep = target if isinstance(target, TaskEpisode) else task.episode(target)
    arm = SimArm(arm_cfg)
    names = arm.joint_names
    period_ns = round(cfg.control_period_s * NS)
    camera_ns = round(cfg.camera_period_s * NS)
    latency_ns = round(cfg.latency_s * NS)
    dt_ns = round(policy.dt * NS)
    ctl = controller_for(arm_cfg, period_ns, cfg.max_jump, cfg.mode, cfg.rtc_handover_steps)
    episode = Episode(ep.target.copy(), ep.distance(arm.position), float("nan"), task_episode=ep)
    episode.seam_window = dt_ns // period_ns + 1  # one chunk step: rtc's bridge, blend's cross-fade
    pending: list[tuple[int, int, np.ndarray]] = []  # (available at, stamp, actions)
    t, end, next_frame = T0_NS, T0_NS + round(cfg.duration_s * NS), T0_NS
    ticker = Ticker(period_ns, first_ns=t)  # the executor's schedule (util.ticker); ticks take no sim time
    next_obs = T0_NS  # one_in_flight / sync: no observation before this
    h, w = cfg.image_size
    last_cmd = arm.position.copy()

    def deliver(t_ns: int) -> None:
        for item in [p for p in pending if p[0] <= t_ns]:
            pending.remove(item)
            try:
                stored, _ = ctl.add_chunk(
                    stamp_ns=item[1],
                    dt_ns=dt_ns,
                    joint_names=names,
                    actions=item[2],
                    action_mode=policy.action_mode,
                    seq=episode.chunks,
                )
                episode.boundaries.append(episode.ticks)
                # rtc: a prefix that runs on past the arrival (its actions agree with the plan)
                # hands over later: the window reaches the hand-over's last tick
                end_ns = ctl.handover_end_ns(stored)
                late = 0 if end_ns is None else -(-(end_ns - t_ns) // period_ns) + 1
                episode.seam_windows.append(max(episode.seam_window, late))
            except ChunkError:
                episode.dropped += 1
            episode.chunks += 1

    while t <= end:
        ctl.update_state(t, names, arm.position)
        if on_tick is not None:
            on_tick(t, names, arm.position.copy())
        deliver(t)  # chunks due now, before deciding whether to observe
        if t >= next_frame:
            next_frame += camera_ns
            if t >= next_obs and (cfg.schedule == "every_frame" or not pending):
                images = {
                    c: render(arm.position, h, w, camera=c, target=tuple(ep.target)) for c in cfg.cameras
                }
                obs = Observation(images=images, state=arm.position.copy(), stamp_ns=t)
                if cfg.mode == "rtc":
                    obs.committed_actions = committed_prefix(ctl, t, dt_ns, steps_for(latency_ns, dt_ns))
                actions = np.asarray(policy(obs), dtype=np.float32)
                if on_observation is not None:
                    on_observation(obs, actions)
                arrive = t + latency_ns
                if cfg.schedule == "sync":  # the chunk starts when it arrives; part of it is run
                    keep = cfg.execution_horizon + 1 if cfg.execution_horizon else len(actions)
                    actions = actions[: max(keep, 1)]
                    next_obs = arrive + (len(actions) - 1) * dt_ns
                    pending.append((arrive, arrive, actions))
                else:
                    next_obs = t
                    if cfg.schedule == "one_in_flight":
                        next_obs = max(arrive, t + cfg.execution_horizon * dt_ns)
                    pending.append((arrive, t, actions))
                deliver(t)  # zero latency: the chunk is there for this tick
        cmd = ctl.tick(t)
        if cmd is not None:
            arm.command(names, cmd.positions)
            episode.commands += 1
            last_cmd = np.asarray(cmd.positions, dtype=np.float64)
        arm.step(period_ns)
        ticker.advance(t)
        t = ticker.deadline_ns
        episode.ticks += 1
        if cfg.record:
            episode.commands_log.append(last_cmd.copy())
            episode.positions_log.append(arm.position.copy())
        ep.update(arm.position, (t - T0_NS) / NS)
        episode.distances.append(ep.distance(arm.position))
        if episode.reached_at_s is None and ep.reached_at_s:
            episode.reached_at_s = ep.reached_at_s[0]
        if cfg.stop_on_success and ep.success:
            break
    episode.final_distance = episode.distances[-1]
    episode.rtc_mismatches = int(getattr(ctl, "rtc_mismatches", 0))
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


def evaluation_episodes(n: int, task: ReachTask, seed: int = 1234) -> list[TaskEpisode]:
    """``n`` reproducible task episodes (``task.sample_episode``) for evaluation."""
    rng = np.random.default_rng(seed)
    return [task.sample_episode(rng) for _ in range(n)]


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
