"""The closed-loop latency study's execution modes and one row of it, in the pure loop.

Modes (the row names of ``benchmarks/results/closed_loop.json``):

* ``sync``: synchronous execution: the robot holds while the policy infers; each chunk starts
  when it arrives and :data:`SYNC_EXECUTION_HORIZON` of its actions are executed before the
  next observation (LeRobot's and openpi's default loop).
* ``latest`` / ``temporal_ensemble`` / ``blend``: asynchronous execution with the executor's
  chunk mode of that name; one inference in flight, the next observation at the first camera
  frame after the previous chunk arrived and at least :data:`ASYNC_EXECUTION_HORIZON` actions
  after the previous observation.
* ``rtc``: asynchronous with the executor's real-time-chunking mode (Black et al. 2025,
  arXiv 2506.07339); available once the executor has the mode (``vla_ros.control.ensemble.MODES``).

Injected latency: a chunk becomes available ``latency_s`` after its observation's stamp,
on simulated time (:class:`vla_ros.sim.loop.LoopConfig`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vla_ros.control.ensemble import MODES as EXECUTOR_MODES
from vla_ros.sim.loop import (
    ExpertPolicy,
    LoopConfig,
    Policy,
    RuntimePolicy,
    evaluation_episodes,
    run_episode,
)
from vla_ros.sim.metrics import aggregate, episode_metrics
from vla_ros.sim.task import ReachTask, TaskEpisode

STUDY_MODES = ("sync", "latest", "temporal_ensemble", "blend", "rtc")
#: actions executed per chunk in ``sync`` (half the bundled flow policy's 20-action horizon)
SYNC_EXECUTION_HORIZON = 10
#: minimum actions between two observations in the asynchronous modes (0.15 s at 20 Hz): at
#: zero latency, replanning every camera frame would restart from each new chunk's first action
ASYNC_EXECUTION_HORIZON = 3


class ModeUnavailable(RuntimeError):
    """A study mode this tree cannot run yet (the message says what is missing)."""


def mode_available(mode: str) -> str | None:
    """None when ``mode`` can run, else why not. Raises ``ValueError`` for an unknown mode."""
    if mode not in STUDY_MODES:
        raise ValueError(f"unknown study mode {mode!r}; choose from {STUDY_MODES}")
    if mode == "sync" or mode in EXECUTOR_MODES:
        return None
    return f"the executor has no chunk mode {mode!r} yet (vla_ros.control.ensemble.MODES = {EXECUTOR_MODES})"


#: the study's ``rtc`` runs the executor with ``rtc_handover_steps: 2`` (a hand-over spanning two
#: chunk steps; the executor's default is 1, exact for chunks that already agree): docs/latency.md
RTC_HANDOVER_STEPS = 2


def study_config(mode: str, latency_s: float, duration_s: float, *, record: bool = True) -> LoopConfig:
    """The loop settings of study ``mode`` at ``latency_s`` (episodes end at success); ``rtc``
    with :data:`RTC_HANDOVER_STEPS`.

    Raises ``ValueError`` for an unknown mode, :class:`ModeUnavailable` for one not here yet.
    """
    why = mode_available(mode)
    if why is not None:
        raise ModeUnavailable(why)
    if mode == "sync":
        executor_mode, schedule, horizon = "latest", "sync", SYNC_EXECUTION_HORIZON
    else:
        executor_mode, schedule, horizon = mode, "one_in_flight", ASYNC_EXECUTION_HORIZON
    return LoopConfig(
        latency_s=latency_s,
        duration_s=duration_s,
        mode=executor_mode,
        schedule=schedule,
        execution_horizon=horizon,
        stop_on_success=True,
        record=record,
        rtc_handover_steps=RTC_HANDOVER_STEPS if mode == "rtc" else 1,
    )


def run_row(
    policy_for: Callable[[int, TaskEpisode], Policy],
    task: ReachTask,
    mode: str,
    latency_s: float,
    episodes: int,
    *,
    seed: int = 1234,
    duration_s: float | None = None,
) -> dict[str, Any]:
    """One study row: ``episodes`` seeded task episodes in ``mode`` at ``latency_s``.

    ``policy_for(i, episode)`` gives the policy of episode ``i`` (:func:`card_policy_for`
    reseeds one card's noise per episode so every row samples the same noise; the expert needs
    the episode). Episodes last ``duration_s`` (default: the task's deadline, else 8 s) and end
    at success. Returns ``{mode, latency_ms, episodes, success_rate, time_to_success_s,
    max_seam_jump, jerk_rms, dropped_chunks}``; raises :class:`ModeUnavailable` as
    :func:`study_config`.
    """
    deadline = getattr(task, "deadline_s", None)
    cfg = study_config(mode, latency_s, duration_s or deadline or 8.0)
    per_episode = []
    for i, ep in enumerate(evaluation_episodes(episodes, task, seed)):
        episode = run_episode(policy_for(i, ep), ep, task=task, config=cfg)
        per_episode.append(episode_metrics(episode, cfg.control_period_s))
    row = {"mode": mode, "latency_ms": round(latency_s * 1000), **aggregate(per_episode)}
    if mode == "rtc":
        row["executor_params"] = {"rtc_handover_steps": cfg.rtc_handover_steps}
    return row


def card_policy_for(policy: RuntimePolicy, seed: int = 1234) -> Callable[[int, TaskEpisode], Policy]:
    """``policy_for`` of :func:`run_row` for a loaded card: its noise reseeded to ``seed + i``."""

    def policy_for(i: int, _episode: TaskEpisode) -> Policy:
        policy.reseed(seed + i)
        return policy

    return policy_for


def expert_policy_for(task: ReachTask, horizon: int, dt: float) -> Callable[[int, TaskEpisode], Policy]:
    """``policy_for`` of :func:`run_row` for the task's scripted expert (it knows the targets)."""
    return lambda _i, episode: ExpertPolicy(task, episode, horizon, dt)


def unavailable_row(mode: str, latency_s: float, reason: str) -> dict[str, Any]:
    """The row of a mode that cannot run: numbers null, ``note`` saying why."""
    return {
        "mode": mode,
        "latency_ms": round(latency_s * 1000),
        "episodes": 0,
        "success_rate": None,
        "time_to_success_s": None,
        "max_seam_jump": None,
        "jerk_rms": None,
        "note": "not available: " + reason,
    }


def rows_for(
    policy_for: Callable[[int, TaskEpisode], Policy],
    task: ReachTask,
    modes: Sequence[str],
    latencies_s: Sequence[float],
    episodes: int,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Every (mode, latency) row; unavailable modes get :func:`unavailable_row`."""
    rows = []
    for mode in modes:
        for latency in latencies_s:
            why = mode_available(mode)
            if why is not None:
                rows.append(unavailable_row(mode, latency, why))
                continue
            rows.append(run_row(policy_for, task, mode, latency, episodes, **kwargs))
    return rows
