"""Running all checks, and the two report forms: a readable checklist and stable JSON.

The JSON form is versioned by :data:`SCHEMA_ID` and described by :data:`JSON_SCHEMA` (a JSON
Schema, reproduced in docs/doctor.md). New checks and new ``details`` keys may appear within a
schema version; removing or renaming a top-level or per-check key bumps it.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vla_ros import __version__
from vla_ros.doctor import live
from vla_ros.doctor.facts import Facts
from vla_ros.doctor.registry import GROUP_TITLES, ID_PATTERN, run_registered
from vla_ros.doctor.result import CheckResult, DoctorContext, Status

SCHEMA_ID = "vla_ros.doctor/1"

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://vla-ros.org/schemas/doctor-1.json",
    "title": "vla-ros doctor report",
    "type": "object",
    "required": ["schema", "vla_ros_version", "created", "host", "ok", "exit_code", "summary", "checks"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "vla_ros_version": {"type": "string"},
        "created": {"type": "string", "description": "UTC time, ISO 8601"},
        "host": {"type": "string"},
        "ok": {"type": "boolean", "description": "true when no check FAILed"},
        "exit_code": {"type": "integer", "enum": [0, 1]},
        "options": {"type": "object"},
        "summary": {
            "type": "object",
            "required": ["PASS", "WARN", "FAIL", "SKIP"],
            "properties": {s: {"type": "integer", "minimum": 0} for s in ("PASS", "WARN", "FAIL", "SKIP")},
        },
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "group", "title", "status", "message", "fix", "details", "duration_s"],
                "properties": {
                    "id": {"type": "string", "pattern": ID_PATTERN},
                    "group": {"enum": list(GROUP_TITLES)},
                    "title": {"type": "string"},
                    "status": {"enum": ["PASS", "WARN", "FAIL", "SKIP"]},
                    "message": {"type": "string"},
                    "fix": {"type": ["string", "null"]},
                    "details": {"type": "object"},
                    "duration_s": {"type": "number", "minimum": 0},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


@dataclass
class DoctorOptions:
    """What to check beyond the machine itself (mirrors the CLI flags)."""

    workspace: Path | None = None
    card: Path | None = None
    live_s: float = 0.0
    topics: list[live.TopicExpectation] = field(default_factory=list)
    gpu: bool = True
    gpu_timeout_s: float = 60.0
    control_rate_hz: float | None = None
    latency_ms: float | None = None
    module_file: str | None = None
    groups: tuple[str, ...] = tuple(GROUP_TITLES)
    params: Path | None = None
    namespace: str = "/"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly echo of the options, stored in the report."""
        return {
            "workspace": str(self.workspace) if self.workspace else None,
            "card": str(self.card) if self.card else None,
            "live_s": self.live_s,
            "topics": [f"{t.name}:{t.rate_hz or ''}" for t in self.topics],
            "gpu": self.gpu,
            "control_rate_hz": self.control_rate_hz,
            "latency_ms": self.latency_ms,
            "params": str(self.params) if self.params else None,
        }


def run_checks(
    ctx: DoctorContext, opts: DoctorOptions, live_obs: live.LiveObservation | None = None
) -> list[CheckResult]:
    """Run every registered check of ``opts.groups`` (:mod:`vla_ros.doctor.registry`) on this
    run's :class:`~vla_ros.doctor.facts.Facts` and return the results in report order.

    Live checks run when ``opts.live_s > 0`` (sampling the graph with rclpy) or when ``live_obs``
    is given (the doctor node samples with its own node).
    """
    return list(run_registered(Facts(ctx, opts, live_obs), opts.groups))


def summarize(results: list[CheckResult]) -> dict[str, int]:
    """Count of results per status."""
    counts = {s.value: 0 for s in (Status.PASS, Status.WARN, Status.FAIL, Status.SKIP)}
    for r in results:
        counts[r.status.value] += 1
    return counts


def exit_code(results: list[CheckResult], strict: bool = False) -> int:
    """0 when nothing FAILed (and, with ``strict``, nothing WARNed); 1 otherwise."""
    bad = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    return 1 if any(r.status in bad for r in results) else 0


def to_json_dict(
    results: list[CheckResult], opts: DoctorOptions | None = None, strict: bool = False
) -> dict[str, Any]:
    """The JSON report (validates against :data:`JSON_SCHEMA`)."""
    code = exit_code(results, strict)
    return {
        "schema": SCHEMA_ID,
        "vla_ros_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "ok": not any(r.status is Status.FAIL for r in results),
        "exit_code": code,
        "options": opts.to_dict() if opts else {},
        "summary": summarize(results),
        "checks": [r.to_dict() for r in results],
    }


_COLORS = {"PASS": "32", "WARN": "33", "FAIL": "31", "SKIP": "90"}


def format_text(results: list[CheckResult], color: bool = False, verbose: bool = False) -> str:
    """The readable checklist: one line per check, the fix under each WARN/FAIL."""
    lines = [f"vla-ros doctor (vla_ros {__version__}, {socket.gethostname()})"]
    group = None
    width = max((len(r.id) for r in results), default=10)
    for r in results:
        if r.group != group:
            group = r.group
            lines.append("")
            lines.append(GROUP_TITLES.get(group, group))
        tag = f"[{r.status.value}]"
        if color:
            tag = f"\033[{_COLORS[r.status.value]}m{tag}\033[0m"
        lines.append(f"  {tag} {r.id:<{width}}  {r.message}")
        if r.fix and r.status in (Status.WARN, Status.FAIL):
            lines.append(f"         {'':<{width}}  fix: {r.fix}")
        if verbose and r.details:
            for k, v in r.details.items():
                lines.append(f"         {'':<{width}}  {k}: {v}")
    counts = summarize(results)
    code = exit_code(results)
    lines.append("")
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items()) + (" -> OK" if code == 0 else " -> FAILED"))
    return "\n".join(lines)


def default_module_file() -> str | None:
    """Where ``vla_ros`` is imported from in this process."""
    spec = importlib.util.find_spec("vla_ros")
    return spec.origin if spec else None
