"""What a demo run saw, as plain data (no ROS): episodes, time series, timings, settings.

Filled by the demo's monitor node from the topics (and from the policy and executor nodes'
own counters); read by :mod:`vla_ros.nodes.demo.report`, which writes the report folder.
All times are integer nanoseconds on the ROS clock (header stamps), except the executor's tick
times, which are its steady clock's (only their differences are used).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class EpisodeResult:
    """One episode: its targets (shown one at a time), when it ran and how the fingertip did.

    ``reached_at_s[i]``: seconds from the episode's start (its first target shown) to the
    fingertip's first arrival within the success radius of target ``i``; the next target is
    shown from then on. ``time_to_success_s``: when the episode succeeded (every target reached,
    within the task's deadline if it has one), the time the last target was reached; else None.
    Distances are fingertip-to-current-target in the arm's plane (arm length 1).
    """

    index: int
    targets: list[tuple[float, float]]
    start_ns: int
    end_ns: int
    reached_at_s: list[float]
    time_to_success_s: float | None
    start_distance: float
    final_distance: float
    min_distance: float

    @property
    def success(self) -> bool:
        """Whether every target was reached (in time)."""
        return self.time_to_success_s is not None

    @property
    def duration_s(self) -> float:
        """Length of the episode (seconds)."""
        return (self.end_ns - self.start_ns) / 1e9

    def target_at(self, t_s: float) -> tuple[float, float]:
        """The target shown ``t_s`` seconds into the episode."""
        shown = sum(1 for r in self.reached_at_s if r <= t_s)
        return self.targets[min(shown, len(self.targets) - 1)]


@dataclass
class RunRecord:
    """Everything the report is made of.

    ``state_t_ns [N]`` / ``state [N, J]``: measured joint positions (rad) from ``joint_states``;
    ``command_t_ns [M]`` / ``command [M, J]``: the executor's commands; ``chunk_arrival_ns [K]``:
    when each action chunk arrived (the chunk boundaries), ``chunk_stamp_ns [K]`` its observation
    stamp; ``infer_ns`` / ``latency_ns``: per published chunk, ``runtime.infer`` time and
    observation stamp -> chunk published; ``tick_ns``: the executor's control ticks (steady clock)
    at the nominal period ``control_period_ns``.
    """

    joint_names: list[str]
    episodes: list[EpisodeResult]
    state_t_ns: np.ndarray
    state: np.ndarray
    command_t_ns: np.ndarray
    command: np.ndarray
    chunk_arrival_ns: np.ndarray
    chunk_stamp_ns: np.ndarray
    infer_ns: list[int] = field(default_factory=list)
    latency_ns: list[int] = field(default_factory=list)
    tick_ns: list[int] = field(default_factory=list)
    control_period_ns: int = 10_000_000
    overruns: int = 0
    chunks_published: int = 0
    commands_published: int = 0
    success_radius: float = 0.05
    settings: dict[str, Any] = field(default_factory=dict)

    def state_at(self, t_ns: int) -> np.ndarray | None:
        """The last measured positions at or before ``t_ns`` (None before the first)."""
        i = int(np.searchsorted(self.state_t_ns, t_ns, side="right")) - 1
        return None if i < 0 else self.state[i]
