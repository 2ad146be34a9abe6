"""Which executor settings a sweep must discard: those the measured inference delay makes infeasible.

The delay comes from the replay's own chunks (observation stamp -> chunk ready, integer ns) with
:class:`vla_ros.control.delay.DelayEstimator` (first chunk excluded as warm-up, nearest-rank p95
over the run); each setting is judged by :func:`vla_ros.control.delay.feasibility` with its
``max_chunk_age_s`` and ``time_offset_s``: the delay in steps must be shorter than the execution
horizon and the chunk horizon (real-time chunking, Black, Galliker, Levine 2025, arXiv 2506.07339).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vla_ros.control.delay import DelayEstimate, DelayEstimator, feasibility
from vla_ros.util.ns import seconds_to_ns

#: chunks excluded from the delay estimate as warm-up, and its percentile (as the doctor's)
WARMUP = 1
PERCENTILE = 95.0


@dataclass(frozen=True)
class DelayScreen:
    """The measured inference delay every candidate must fit.

    Attributes:
        estimate: the delay (steps, the p95 latency in ns, the samples it is taken over).
        dt_ns: the chunks' action spacing, ns.
        horizon: actions per chunk.
    """

    estimate: DelayEstimate
    dt_ns: int
    horizon: int

    def problems(self, values: Mapping[str, Any]) -> list[str]:
        """Why executor parameter ``values`` (with ``max_chunk_age_s`` and ``time_offset_s``, s)
        cannot work with this delay; empty when they can."""
        f = feasibility(
            self.estimate.latency_ns,
            self.dt_ns,
            self.horizon,
            max_chunk_age_ns=seconds_to_ns(values["max_chunk_age_s"]),
            time_offset_ns=seconds_to_ns(values["time_offset_s"]),
        )
        return list(f.problems)

    def describe(self) -> str:
        """One line: the delay, the latency it comes from, the chunk it is counted in."""
        e = self.estimate
        return (
            f"inference delay {e.steps} step(s): p95 latency {e.latency_ns / 1e6:.1f} ms of {e.samples} "
            f"chunk(s) after warm-up, at dt {self.dt_ns / 1e6:g} ms, chunk horizon {self.horizon}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        e = self.estimate
        return {
            "steps": e.steps,
            "latency_ns": e.latency_ns,
            "samples": e.samples,
            "dt_ns": self.dt_ns,
            "horizon": self.horizon,
        }


def delay_screen(latencies_ns: Sequence[int], dt_ns: int, horizon: int) -> DelayScreen | None:
    """The screen from the chunks' latencies in arrival order (ns), or ``None`` when no latency
    remains after the warm-up (then nothing is discarded; the sweep reports what it could not judge).

    Raises:
        DelayError: ``dt_ns <= 0`` or a negative latency.
    """
    est = DelayEstimator(dt_ns, warmup=WARMUP, window=max(1, len(latencies_ns)), percentile=PERCENTILE)
    for latency in latencies_ns:
        est.add(int(latency))
    got = est.estimate()
    return DelayScreen(got, int(dt_ns), int(horizon)) if got is not None else None


def screen_from_chunks(chunks: Sequence[Any]) -> DelayScreen | None:
    """:func:`delay_screen` of a policy pass's chunk records (``ready_ns - result.stamp_ns``
    each; dt and horizon of the first chunk), ``None`` without chunks."""
    if not chunks:
        return None
    first = chunks[0].result
    latencies = [max(0, c.ready_ns - c.result.stamp_ns) for c in chunks]
    return delay_screen(latencies, first.dt_ns, first.horizon)
