"""The executor's health as plain data: level, message and key/values for /diagnostics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vla_ros.control.controller import Command
from vla_ros.executor.core import ExecutorCore

OK, WARN, ERROR = 0, 1, 2


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
