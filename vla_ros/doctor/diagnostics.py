"""Doctor results as ``/diagnostics`` entries, and doctor_node's options, without ROS.

``doctor_node`` turns each :class:`DiagEntry` into a ``diagnostic_msgs/DiagnosticStatus`` (levels
use its numbering) and answers its ``~/run_checks`` Trigger with :func:`trigger_reply`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vla_ros.doctor.live import TopicExpectation
from vla_ros.doctor.report import GROUP_TITLES, DoctorOptions, default_module_file, summarize
from vla_ros.doctor.result import CheckResult, Status

OK, WARN, ERROR = 0, 1, 2
#: check status -> DiagnosticStatus level (SKIP is OK; the values say status=SKIP)
LEVELS = {Status.PASS: OK, Status.SKIP: OK, Status.WARN: WARN, Status.FAIL: ERROR}
NAME_PREFIX = "vla_ros doctor"
MAX_MESSAGE = 1000
MAX_VALUE = 2000


@dataclass(frozen=True)
class DiagEntry:
    """One DiagnosticStatus as plain values."""

    level: int
    name: str
    message: str
    values: list[tuple[str, str]]


def check_entry(r: CheckResult) -> DiagEntry:
    """One check: status, id, title, fix (if any), then its details (JSON for non-strings)."""
    values = [("status", r.status.value), ("id", r.id), ("title", r.title)]
    if r.fix:
        values.append(("fix", r.fix))
    for k, v in r.to_dict()["details"].items():
        text = v if isinstance(v, str) else json.dumps(v)
        values.append((str(k), text[:MAX_VALUE]))
    msg = r.message if r.status is not Status.SKIP else f"skipped: {r.message}"
    return DiagEntry(LEVELS[r.status], f"{NAME_PREFIX}: {r.id}", msg[:MAX_MESSAGE], values)


def summary_entry(results: Sequence[CheckResult]) -> DiagEntry:
    """The summary: the worst level, counts per status and the ids that FAILed."""
    counts = summarize(list(results))
    worst = max((LEVELS[r.status] for r in results), default=OK)
    fails = [r.id for r in results if r.status is Status.FAIL]
    message = ", ".join(f"{v} {k}" for k, v in counts.items()) + (
        f"; FAIL: {', '.join(fails)}" if fails else ""
    )
    return DiagEntry(worst, f"{NAME_PREFIX}: summary", message, [(k, str(v)) for k, v in counts.items()])


def diagnostic_entries(results: Sequence[CheckResult]) -> list[DiagEntry]:
    """The summary followed by one entry per check."""
    return [summary_entry(results)] + [check_entry(r) for r in results]


def trigger_reply(results: Sequence[CheckResult]) -> tuple[bool, str]:
    """``(success, message)`` for ``~/run_checks``: success unless a check FAILed."""
    counts = summarize(list(results))
    fails = [f"{r.id}: {r.message}" for r in results if r.status is Status.FAIL]
    message = ", ".join(f"{v} {k}" for k, v in counts.items()) + ("; " + " | ".join(fails) if fails else "")
    return not fails, message


def node_options(
    *,
    expected_topics: Sequence[str] = (),
    rate_tolerance: float = 0.2,
    live_s: float = 2.0,
    card: str = "",
    workspace: str = "",
    control_rate_hz: float = 0.0,
    gpu: bool = True,
    groups: Sequence[str] = (),
    params: str = "",
    namespace: str = "/",
) -> DoctorOptions:
    """doctor_node's parameters -> :class:`DoctorOptions` (empty strings and 0 mean "not set").

    ``params`` is the nodes' parameter file (read for ``executor_node``'s timing and
    ``policy_node``'s joint names in ``namespace``).
    Raises ``ValueError`` for a negative ``live_s``, an unknown group or a malformed topic
    expectation (``NAME[:HZ[:TOL]]``).
    """
    topics = [TopicExpectation.parse(t, tolerance=float(rate_tolerance)) for t in expected_topics]
    live_s = float(live_s)
    if live_s < 0:
        raise ValueError(f"doctor_node: live_s must be >= 0, got {live_s}")
    chosen = tuple(groups or GROUP_TITLES)
    unknown = sorted(set(chosen) - set(GROUP_TITLES))
    if unknown:
        raise ValueError(f"doctor_node: unknown groups {unknown}; known: {list(GROUP_TITLES)}")
    rate = float(control_rate_hz)
    return DoctorOptions(
        workspace=Path(workspace) if workspace else None,
        card=Path(card) if card else None,
        live_s=live_s,
        topics=topics,
        gpu=bool(gpu),
        control_rate_hz=rate if rate > 0 else None,
        module_file=default_module_file(),
        groups=chosen,
        params=Path(params) if params else None,
        namespace=namespace or "/",
    )


def static_options(opts: DoctorOptions) -> DoctorOptions:
    """``opts`` without the live-graph group (for an on-demand run that must not wait)."""
    return dataclasses.replace(opts, live_s=0.0, groups=tuple(g for g in opts.groups if g != "live"))
