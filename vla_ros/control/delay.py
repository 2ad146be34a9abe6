"""The inference delay in control steps, estimated from measured latencies (pure, integer ns).

Real-time chunking (Black, Galliker, Levine 2025, "Real-Time Execution of Action Chunking Flow
Policies", arXiv 2506.07339) freezes the first ``d`` actions of the next chunk, where ``d`` is the
number of controller steps that elapse while the policy infers: ``d = ceil(latency / dt)``. Field
reports show what goes wrong when ``d`` is estimated carelessly: a first call that includes
warm-up (0.7 s instead of 0.3 s) doubles ``d``; floating-point seconds turn ``0.1 + 0.2`` s at
``dt = 0.1`` s into 4 steps instead of 3. Here every time is an integer in nanoseconds, the
first ``warmup`` samples are excluded, and ``d`` comes from a high percentile (nearest-rank) over
a sliding window of recent latencies, so one slow outlier does not set it for good.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from vla_ros.contract.errors import VlaRosError


class DelayError(VlaRosError, ValueError):
    """Invalid delay-estimator settings or samples."""


def steps_for(latency_ns: int, dt_ns: int) -> int:
    """Control steps that elapse during ``latency_ns``: ``ceil(latency_ns / dt_ns)`` in integers.

    Raises:
        DelayError: ``dt_ns <= 0`` or ``latency_ns < 0``.
    """
    if dt_ns <= 0:
        raise DelayError(f"dt must be > 0 ns, got {dt_ns}")
    if latency_ns < 0:
        raise DelayError(f"latency must be >= 0 ns, got {latency_ns}")
    return -(-int(latency_ns) // int(dt_ns))


def percentile_ns(samples: Iterable[int], q: float) -> int:
    """Nearest-rank percentile ``q`` in (0, 100] of integer samples (a sample, never interpolated).

    Raises:
        DelayError: no samples, or ``q`` outside (0, 100].
    """
    values = sorted(int(s) for s in samples)
    if not values:
        raise DelayError("no latency samples")
    if not 0.0 < q <= 100.0:
        raise DelayError(f"percentile must be in (0, 100], got {q}")
    rank = -(-round(q * len(values) * 1000) // 100_000)  # ceil(q/100 * n) without floats drift
    return values[max(rank, 1) - 1]


@dataclass(frozen=True)
class DelayEstimate:
    """The current estimate.

    Attributes:
        steps: the inference delay ``d`` in control steps (``ceil(latency / dt)``).
        latency_ns: the percentile latency it comes from, ns.
        samples: how many samples (after warm-up) are in the window.
    """

    steps: int
    latency_ns: int
    samples: int


class DelayEstimator:
    """Sliding-window, warm-up-free estimate of the inference delay in control steps.

    Args:
        dt_ns: the control step the delay is counted in (the chunk's action spacing), ns.
        warmup: the first this many samples are ignored (JIT, allocator, caches).
        window: how many recent samples the percentile is taken over.
        percentile: nearest-rank percentile in (0, 100] (95: a slow tail is covered, one outlier
            in 20+ samples is not).

    Raises:
        DelayError: invalid settings.
    """

    def __init__(self, dt_ns: int, *, warmup: int = 1, window: int = 50, percentile: float = 95.0) -> None:
        if dt_ns <= 0:
            raise DelayError(f"dt must be > 0 ns, got {dt_ns}")
        if warmup < 0 or window < 1:
            raise DelayError(f"warmup must be >= 0 and window >= 1, got {warmup} and {window}")
        percentile_ns([0], percentile)  # validates the percentile
        self.dt_ns = int(dt_ns)
        self.warmup = int(warmup)
        self.percentile = float(percentile)
        self._seen = 0
        self._window: deque[int] = deque(maxlen=int(window))

    def add(self, latency_ns: int) -> None:
        """Record one measured latency (observation stamp -> chunk ready), ns.

        Raises:
            DelayError: a negative latency (clocks disagree: the caller should report it).
        """
        if latency_ns < 0:
            raise DelayError(f"latency must be >= 0 ns, got {latency_ns}; do the clocks agree?")
        self._seen += 1
        if self._seen > self.warmup:
            self._window.append(int(latency_ns))

    def estimate(self) -> DelayEstimate | None:
        """The current estimate, or None before the first sample after warm-up."""
        if not self._window:
            return None
        latency = percentile_ns(self._window, self.percentile)
        return DelayEstimate(
            steps=steps_for(latency, self.dt_ns), latency_ns=latency, samples=len(self._window)
        )


def schedule_problems(
    delay_steps: int, execution_horizon: int, horizon: int, *, margin: int = 0
) -> list[str]:
    """Why a chunked schedule cannot work with this delay (empty when it can).

    Args:
        delay_steps: the inference delay ``d`` in control steps.
        execution_horizon: actions executed from each chunk before the next one takes over.
        horizon: actions in a chunk (the chunk horizon ``H``).
        margin: extra steps of slack wanted before a chunk runs out.

    A new chunk must arrive before the current one is used up: ``d + margin < execution
    horizon <= H``, and the latency must fit in the chunk (``d < H``).
    """
    problems = []
    if delay_steps >= horizon:
        problems.append(
            f"the inference delay ({delay_steps} steps) is not shorter than the chunk horizon ({horizon} "
            "actions): every chunk arrives with all its actions in the past"
        )
    if delay_steps + margin >= execution_horizon:
        problems.append(
            f"the inference delay ({delay_steps} steps{f' + margin {margin}' if margin else ''}) is not "
            f"shorter than the execution horizon ({execution_horizon} steps): the robot runs out of "
            "actions before the next chunk arrives"
        )
    if execution_horizon > horizon:
        problems.append(f"the execution horizon ({execution_horizon}) exceeds the chunk horizon ({horizon})")
    return problems


@dataclass(frozen=True)
class Feasibility:
    """Whether a chunk schedule can work with a measured latency, and why not.

    Attributes:
        delay_steps: the inference delay ``d``: control steps of a chunk already due when it
            arrives (``ceil((latency - time offset) / dt)``, 0 when the offset covers it).
        execution_horizon: actions the executor can take from one chunk (the chunk horizon, or
            fewer when a maximum chunk age cuts it: ``floor(age / dt) + 1``).
        horizon: actions in a chunk (``H``).
        problems: :func:`schedule_problems`' reasons (empty: feasible).
    """

    delay_steps: int
    execution_horizon: int
    horizon: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


def execution_horizon(horizon: int, dt_ns: int, max_chunk_age_ns: int = 0) -> int:
    """Actions of an ``horizon``-action chunk the executor uses: action ``i`` is due ``i * dt``
    after the chunk's start and is used while that age is ``<= max_chunk_age_ns`` (0: no limit),
    as :class:`vla_ros.control.buffer.ChunkBuffer` does.

    Raises:
        DelayError: ``horizon < 1``, ``dt_ns <= 0`` or ``max_chunk_age_ns < 0``.
    """
    if horizon < 1 or dt_ns <= 0 or max_chunk_age_ns < 0:
        raise DelayError(
            f"horizon must be >= 1, dt > 0 ns and max chunk age >= 0 ns, got {horizon}, {dt_ns}, "
            f"{max_chunk_age_ns}"
        )
    if max_chunk_age_ns == 0:
        return int(horizon)
    return min(int(horizon), int(max_chunk_age_ns) // int(dt_ns) + 1)


def feasibility(
    latency_ns: int,
    dt_ns: int,
    horizon: int,
    *,
    max_chunk_age_ns: int = 0,
    time_offset_ns: int = 0,
    margin: int = 0,
) -> Feasibility:
    """Can an executor keep acting when every chunk arrives ``latency_ns`` after its stamp?

    Args:
        latency_ns: the measured inference latency (observation stamp -> chunk ready), ns.
        dt_ns: the chunk's action spacing (the control step the delay is counted in), ns.
        horizon: actions per chunk (the chunk horizon ``H``).
        max_chunk_age_ns: the executor's maximum chunk age (0: the whole horizon), ns.
        time_offset_ns: the executor's offset added to chunk stamps (action 0 due at
            stamp + offset), ns; it shifts the chunk later, so it subtracts from the delay.
        margin: slack steps wanted before a chunk runs out.

    The inference delay is ``d = steps_for(max(0, latency - offset), dt)``; the checks are
    :func:`schedule_problems` on ``d``, the execution horizon (:func:`execution_horizon`) and
    ``H``. A latency longer than ``H x dt`` always fails (``d > H``). Example: 0.1 + 0.2 s at dt
    0.1 s is ``d = 3``; a horizon of 3 is then refused.

    Raises:
        DelayError: a negative latency or margin, or invalid ``dt_ns`` / ``horizon`` / age.
    """
    if latency_ns < 0 or margin < 0:
        raise DelayError(f"latency and margin must be >= 0, got {latency_ns} ns and {margin}")
    d = steps_for(max(0, int(latency_ns) - int(time_offset_ns)), dt_ns)
    e = execution_horizon(horizon, dt_ns, max_chunk_age_ns)
    return Feasibility(d, e, int(horizon), tuple(schedule_problems(d, e, int(horizon), margin=margin)))
