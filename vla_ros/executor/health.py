"""The executor's health as plain data: level, message and key/values for /diagnostics, and
how its faults are logged (which causes are errors, when a cause is logged again)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vla_ros.control.controller import Command
from vla_ros.executor.core import ExecutorCore, Report
from vla_ros.util.faults import Fault, FaultLog
from vla_ros.util.ns import seconds_to_ns

OK, WARN, ERROR = 0, 1, 2
#: fault causes (the part before ``:``) logged as errors; every other cause is a warning
ERROR_CAUSES = (
    "estop",
    "tracking_error",
    "tracking_error_disarm",
    "clock_backwards",
    "nonfinite_state",
    "state_outside_limits",
)
#: a fault cause that clears and stays away this long is logged again when it returns
FAULT_RECUR_AFTER_NS = 1_000_000_000


def fault_log(values: Mapping[str, Any]) -> FaultLog:
    """The executor's log-once fault book: a cause repeats every ``log_repeat_s`` while it lasts
    and is logged again when it returns :data:`FAULT_RECUR_AFTER_NS` after clearing."""
    return FaultLog(
        repeat_interval_ns=seconds_to_ns(float(values["log_repeat_s"])),
        recur_after_ns=FAULT_RECUR_AFTER_NS,
    )


def fault_report(faults: FaultLog, fault: Fault, now_ns: int) -> Report | None:
    """Book ``fault`` at ``now_ns`` (steady ns); the log line to write, or None (already logged).
    Its level is ``error`` for :data:`ERROR_CAUSES`, else ``warning``."""
    line = faults.report(fault.cause, fault.message, now_ns)
    if line is None:
        return None
    level = "error" if fault.cause.split(":", 1)[0] in ERROR_CAUSES else "warning"
    return Report(level, line, cause=fault.cause)


@dataclass(frozen=True)
class Health:
    """``level`` is OK (0), WARN (1) or ERROR (2), as diagnostic_msgs/DiagnosticStatus."""

    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


def executor_health(
    core: ExecutorCore,
    last_command: Command | None,
    *,
    dry_run: bool,
    published: int,
    faults: Mapping[str, int],
) -> Health:
    """What /diagnostics reports: limits, e-stop, holding or running; counters and fault counts.

    ``expired_chunks``: chunks dropped because every action was already in the past;
    ``rtc_prefix_mismatches``: ``rtc`` chunks that did not continue what was committed.
    """
    ctl = core.controller
    refusal = None
    estop_latched = False
    buffered = 0
    expired = mismatches = 0
    limits_state = "unknown (no joint names yet)"
    if ctl is not None:
        with core.lock:
            refusal = core.refusal()
            estop_latched = ctl.estop_latched
            buffered = len(ctl.buffer)
            expired, mismatches = ctl.expired_chunks, ctl.rtc_mismatches
            missing = any(ctl.limits.missing())
        limits_state = "incomplete" if refusal else "unlimited (allow_unlimited)" if missing else "ok"
    cmd = last_command
    if ctl is None:
        level, message = WARN, "waiting for joint names"
    elif refusal is not None:
        level, message = ERROR, refusal
    elif estop_latched:
        level, message = ERROR, "e-stop latched"
    elif cmd is None or cmd.holding:
        reason = ", ".join(f.cause for f in cmd.faults) if cmd is not None else "no state"
        level, message = WARN, f"holding ({reason})"
    else:
        level, message = OK, "running"
    values = {
        "armed": str(core.armed),
        "dry_run": str(dry_run),
        "live_chunks": str(0 if cmd is None else cmd.n_live),
        "buffered_chunks": str(buffered),
        "limits": limits_state,
        "published": str(published),
        "expired_chunks": str(expired),
        "rtc_prefix_mismatches": str(mismatches),
    }
    values.update({f"fault.{k}": str(v) for k, v in sorted(faults.items())})
    return Health(level, message, values)
