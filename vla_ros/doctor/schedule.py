"""Delay feasibility (issue 16): can the executor keep acting with the measured inference delay?

The judgement :func:`check_delay` counts the inference delay in control steps in integer
nanoseconds (:func:`vla_ros.control.delay.feasibility`: ``d = ceil((latency - time offset) / dt)``,
a live window's p95 with the first sample excluded as warm-up) and refuses a schedule where
``d >= execution horizon`` (the actions the executor takes from one chunk: the chunk horizon, or
fewer under ``max_chunk_age_s``) or ``d >= H`` (a latency longer than the chunk). Rules from
real-time chunking (Black, Galliker, Levine 2025, arXiv 2506.07339: the delay must be shorter
than the execution horizon).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vla_ros.control.delay import DelayEstimator, Feasibility, feasibility
from vla_ros.doctor.card_checks import CardLoad, card_latency_s, loaded_card
from vla_ros.doctor.registry import Verdict, check, verdict
from vla_ros.doctor.result import DoctorContext, Status

if TYPE_CHECKING:
    from vla_ros.doctor.facts import ExecutorSettings, Latency

NS = 1_000_000_000
#: live latency percentile and warm-up the delay is estimated with (as the executor's estimator)
LIVE_PERCENTILE = 95.0
LIVE_WARMUP = 1


def delay_latency_ns(
    latency: Latency | None, loaded: CardLoad, reported: tuple[int, str] | None = None
) -> tuple[int, str] | None:
    """The latency the delay is counted from, ns, and where it came from: the live chunks' p95
    (warm-up excluded), else the policy node's ``reported`` estimate (its /diagnostics
    ``delay_ns``), else the measured latency given, else the card's record; ``None``."""
    if latency is not None and len(latency.samples_ns) > LIVE_WARMUP:
        dt_ns = round(loaded.card.io.dt * NS) if loaded.card else NS
        est = DelayEstimator(max(dt_ns, 1), warmup=LIVE_WARMUP, percentile=LIVE_PERCENTILE)
        for s in latency.samples_ns:
            est.add(max(0, int(s)))
        got = est.estimate()
        if got is not None:
            return got.latency_ns, f"{latency.source}: p95 of {got.samples} chunks after warm-up"
    if reported is not None:
        return reported
    if latency is not None:
        return round(latency.seconds * NS), latency.source
    found = card_latency_s(loaded.card) if loaded.card else None
    return (round(found[0] * NS), found[1]) if found else None


def fix_for(f: Feasibility, dt_s: float, settings: ExecutorSettings) -> str:
    """What to change so that the delay fits (one sentence, the values named)."""
    need_s = f.delay_steps * dt_s  # an age of d x dt keeps d + 1 actions: one after the delay
    if f.delay_steps < f.horizon and f.execution_horizon < f.horizon:
        return (
            f"raise executor_node max_chunk_age_s from {settings.max_chunk_age_s:g} to >= {need_s:g} s "
            "(or 0: the whole chunk), or make inference faster"
        )
    return (
        f"make inference faster than {(f.horizon - 1) * dt_s:g} s (tensorrt, fp16, a smaller model), "
        f"export with a chunk horizon > {f.delay_steps} actions, or set executor_node time_offset_s "
        "near the latency"
    )


@check(
    "card.delay",
    "inference delay vs execution horizon",
    args=lambda f: (f.ctx, f.card_load, f.latency, f.executor_settings, f.policy_delay),
)
def check_delay(
    ctx: DoctorContext,
    loaded: CardLoad | None,
    latency: Latency | None = None,
    settings: ExecutorSettings | None = None,
    reported: tuple[int, str] | None = None,
) -> Verdict:
    """The inference delay in steps against the execution horizon and the chunk horizon
    (``latency``: the measured one; ``reported``: a policy node's own ``delay_ns``, ns, and
    where it came from; ``settings``: the executor's, its defaults when not given)."""
    from vla_ros.doctor.facts import ExecutorSettings

    settings = settings or ExecutorSettings()
    card = loaded_card(loaded)
    if isinstance(card, Verdict):
        return card
    if settings.error:
        return verdict(
            Status.FAIL,
            f"cannot read the executor's settings from {settings.source}: {settings.error}",
            "fix the parameter file (vla-ros doctor --params YAML reads executor_node's section)",
        )
    horizon, dt_s = card.io.chunk_shape[0], card.io.dt
    dt_ns = round(dt_s * NS)
    found = delay_latency_ns(latency, loaded, reported)
    details = {
        "horizon": horizon,
        "dt_s": dt_s,
        "max_chunk_age_s": settings.max_chunk_age_s,
        "time_offset_s": settings.time_offset_s,
        "executor_settings": settings.source,
    }
    if found is None:
        return verdict(
            Status.SKIP,
            "no measured latency (use --live with a running policy_node, or --latency-ms)",
            **details,
        )
    latency_ns, source = found
    f = feasibility(
        latency_ns,
        dt_ns,
        horizon,
        max_chunk_age_ns=round(settings.max_chunk_age_s * NS),
        time_offset_ns=round(settings.time_offset_s * NS),
    )
    details.update(
        latency_ns=latency_ns,
        latency_source=source,
        delay_steps=f.delay_steps,
        execution_horizon=f.execution_horizon,
        problems=list(f.problems),
    )
    head = (
        f"inference delay {f.delay_steps} step(s) ({latency_ns / 1e6:.0f} ms at dt {dt_s * 1e3:g} ms), "
        f"execution horizon {f.execution_horizon} of {horizon} actions"
    )
    if f.problems:
        return verdict(Status.FAIL, f"{head}: {'; '.join(f.problems)}", fix_for(f, dt_s, settings), **details)
    return verdict(Status.PASS, head, **details)
