"""The policy's health as plain values: a level, a one-line message and key/value pairs.

The policy node turns them into a ``diagnostic_msgs/DiagnosticStatus``; offline evaluation can
print or record them. Levels use the ``DiagnosticStatus`` numbering.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from vla_ros.control.delay import DelayEstimate
from vla_ros.policy.stats import RateMeter, StatsSnapshot
from vla_ros.util.faults import Fault

if TYPE_CHECKING:
    from vla_ros.policy.step import PolicyStep

#: ``(level, message, key/value pairs)``: one DiagnosticStatus's content
Status = tuple[int, str, list[tuple[str, str]]]

OK, WARN, ERROR = 0, 1, 2
#: fault causes with these prefixes stop chunks from being published (level ERROR)
BLOCKING_PREFIXES = ("input:", "output:", "inference:", "worker:")
MAX_MESSAGE = 1000


def health(active: Mapping[str, Fault], rate_hz: float, latency_p50_ms: float) -> tuple[int, str]:
    """``(level, message)``: ERROR naming the blocking faults, WARN naming the others, else OK."""
    blocking = [k for k in active if k.startswith(BLOCKING_PREFIXES)]
    if blocking:
        level = ERROR
        message = "no chunks: " + "; ".join(active[k].message for k in sorted(blocking))
    elif active:
        level = WARN
        message = "; ".join(active[k].message for k in sorted(active))
    else:
        level = OK
        message = f"ok: {rate_hz:.1f} chunks/s, latency p50 {latency_p50_ms:.1f} ms"
    return level, message[:MAX_MESSAGE]


def status_values(
    *,
    policy_id: str,
    backend: str,
    rate_hz: float,
    stats: StatsSnapshot,
    inputs: Mapping[str, Mapping[str, int]],
    active: Mapping[str, Fault],
    delay: DelayEstimate | None = None,
) -> list[tuple[str, str]]:
    """The diagnostics key/value pairs, in their reported order.

    ``inputs`` is :meth:`ObservationAssembler.counters` (received/dropped per input); ``active``
    the active faults (one ``fault:<cause>`` pair each, sorted); ``delay`` the inference delay
    estimate: ``delay_steps`` (chunk steps), ``delay_ns`` (the p95 latency it comes from),
    ``delay_samples`` (``n/a`` before the first sample after warm-up).
    """
    values = [
        ("policy_id", policy_id),
        ("backend", backend),
        ("chunk_rate_hz", f"{rate_hz:.2f}"),
        ("latency_p50_ms", f"{stats.latency_p50_ms:.3f}"),
        ("latency_p99_ms", f"{stats.latency_p99_ms:.3f}"),
        ("infer_p50_ms", f"{stats.infer_p50_ms:.3f}"),
        ("infer_p99_ms", f"{stats.infer_p99_ms:.3f}"),
        ("delay_steps", "n/a" if delay is None else str(delay.steps)),
        ("delay_ns", "n/a" if delay is None else str(delay.latency_ns)),
        ("delay_samples", "0" if delay is None else str(delay.samples)),
    ]
    values += [(k, str(v)) for k, v in stats.counts.items()]
    for source, c in inputs.items():
        values.append((f"dropped:{source}", str(c["dropped"])))
        values.append((f"received:{source}", str(c["received"])))
    values += [(f"fault:{k}", f.message) for k, f in sorted(active.items())]
    return values


def step_status(step: PolicyStep, *, backend: str, rate: RateMeter, now_s: float) -> Status:
    """The running policy's status: :func:`health` and :func:`status_values` from ``step``'s
    stats, faults, inputs and delay estimate, plus ``committed_not_fresh`` (inferences that went
    without the executor's committed actions because they were stale); the chunk rate read from
    ``rate`` at ``now_s`` (steady seconds)."""
    snap = step.stats.snapshot()
    rate_hz = rate.update(now_s, snap.counts["chunks_published"])
    active = step.faults.active()
    level, message = health(active, rate_hz, snap.latency_p50_ms)
    values = status_values(
        policy_id=step.policy_id,
        backend=backend,
        rate_hz=rate_hz,
        stats=snap,
        inputs=step.assembler.counters(),
        active=active,
        delay=step.delay_estimate(),
    )
    at = len(values) - len(active)  # before the fault pairs
    values.insert(at, ("committed_not_fresh", str(step.tracker.not_fresh)))
    return level, message, values


def not_loaded_status(card: str, load_error: str | None, load_retry_s: float) -> Status:
    """ERROR while the policy card is not loaded: the load error (or "not loaded yet"), the card
    and the retry period (s)."""
    values = [("card", card), ("load_retry_s", f"{load_retry_s:g}")]
    return ERROR, load_error or "policy card not loaded yet", values
