"""The demo's episodes on the live node graph: new targets, then watch the fingertip.

Episodes follow one another as on a robot whose goal changes: the arm starts each episode where
the previous one left it (the bundled policy is trained from such poses). An episode is the
task's (``sample_episode``: one target for ``reach``, several shown in turn for tasks that have
them): its current target goes to the sim's live ``target`` parameter (the marker the cameras
show), the fingertip is watched every :data:`POLL_S`, the next target is shown as soon as the
current one is reached, and the episode ends ``settle_s`` after the last one or at the time
limit. Times count from the episode's first target being set, so they include the reaction
time: the next camera frame, the inference (and any injected latency), the executor.

Episodes come from the task with ``seed``; one whose first target is closer than
:data:`MIN_TARGET_STEP` to the previous episode's last target is drawn again (no episode starts
already reached), which keeps the sequence a function of the seed alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vla_ros.nodes.demo.config import DemoError, DemoTask
from vla_ros.nodes.demo.monitor import DemoMonitor
from vla_ros.nodes.demo.record import EpisodeResult
from vla_ros.sim.task import ReachTask, TaskEpisode

POLL_S = 0.02
#: an episode's first target is at least this far from the last one (the arm's plane, arm length 1)
MIN_TARGET_STEP = 0.15


@dataclass(frozen=True)
class EpisodeConfig:
    """Timing of the episodes (seconds)."""

    episode_s: float = 6.0  # time limit of one episode
    settle_s: float = 0.4  # kept running after the last target is reached, so the plots show it
    start_timeout_s: float = 20.0  # at most this long for the first chunk and joint state


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(POLL_S)
    return condition()


def task_episodes(model: ReachTask, n: int, seed: int) -> list[TaskEpisode]:
    """``n`` episodes of ``model`` (``seed``), each starting >= MIN_TARGET_STEP from the last target."""
    rng = np.random.default_rng(seed)
    out: list[TaskEpisode] = []
    while len(out) < n:
        ep = model.sample_episode(rng)
        if not out or np.linalg.norm(ep.targets[0] - out[-1].targets[-1]) >= MIN_TARGET_STEP:
            out.append(ep)
    return out


def time_limit(model: ReachTask, config: EpisodeConfig) -> float:
    """``config.episode_s``, at least 1 s past the task's deadline when it has one."""
    deadline = getattr(model, "deadline_s", None)  # SwitchingTargetsTask has one
    return max(config.episode_s, deadline + 1.0) if deadline else config.episode_s


def run_episode(
    monitor: DemoMonitor, task: DemoTask, index: int, episode: TaskEpisode, config: EpisodeConfig
) -> EpisodeResult:
    """One episode (see the module docstring); ``episode`` is fresh from :func:`task_episodes`."""
    limit = time_limit(task.model, config)
    monitor.set_target(episode.target)
    start_ns = monitor.now_ns()
    q0 = monitor.latest_state()
    start_d = task.model.distance(q0, episode.target) if q0 is not None else float("nan")
    distances: list[float] = []
    while True:
        time.sleep(POLL_S)
        t_s = (monitor.now_ns() - start_ns) / 1e9
        q = monitor.latest_state()
        if q is not None:
            if episode.update(q, t_s):  # the next target is shown from now on
                monitor.set_target(episode.target)
            distances.append(task.model.distance(q, episode.target))
        if t_s >= limit or (episode.done and t_s >= episode.reached_at_s[-1] + config.settle_s):
            break
    return EpisodeResult(
        index=index,
        targets=[(float(x), float(y)) for x, y in np.asarray(episode.targets)],
        start_ns=start_ns,
        end_ns=monitor.now_ns(),
        reached_at_s=[round(r, 3) for r in episode.reached_at_s],
        time_to_success_s=None if episode.time_to_success_s is None else round(episode.time_to_success_s, 3),
        start_distance=start_d,
        final_distance=distances[-1] if distances else float("nan"),
        min_distance=min(distances) if distances else float("nan"),
    )


def progress_line(e: EpisodeResult, total: int, limit_s: float) -> str:
    """``episode  3/10  target (+0.21, 0.55)  reached in 1.84 s  distance 0.571 -> 0.031``."""
    where = (
        f"target ({e.targets[0][0]:+.2f}, {e.targets[0][1]:.2f})"
        if len(e.targets) == 1
        else f"{len(e.targets)} targets, {len(e.reached_at_s)} reached"
    )
    outcome = f"done in {e.time_to_success_s:.2f} s" if e.success else f"FAILED (limit {limit_s:g} s)"
    return (
        f"episode {e.index:>{len(str(total))}}/{total}  {where}  {outcome:<20}  "
        f"distance {e.start_distance:.3f} -> {e.final_distance:.3f}"
    )


def run_episodes(
    monitor: DemoMonitor,
    task: DemoTask,
    episodes: int,
    seed: int,
    config: EpisodeConfig,
    say: Callable[[str], None] = print,
) -> list[EpisodeResult]:
    """Wait for the loop to run (a chunk and a joint state), arm, then ``episodes`` episodes.

    Raises :class:`DemoError` when no chunk or joint state arrives within ``start_timeout_s``,
    or the executor refuses to arm (its reason).
    """
    if not _wait(
        lambda: monitor.chunk_count() > 0 and monitor.latest_state() is not None, config.start_timeout_s
    ):
        raise DemoError(
            f"the loop did not start within {config.start_timeout_s:g} s: {monitor.chunk_count()} action "
            f"chunks, {'a' if monitor.latest_state() is not None else 'no'} joint state seen (is the "
            "policy card right for the sim: cameras front/wrist, joints joint_1..6?)"
        )
    monitor.set_armed(True)
    limit = time_limit(task.model, config)
    results = []
    for k, episode in enumerate(task_episodes(task.model, episodes, seed), start=1):
        result = run_episode(monitor, task, k, episode, config)
        results.append(result)
        say(progress_line(result, episodes, limit))
    return results
