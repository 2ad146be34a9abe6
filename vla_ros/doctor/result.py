"""The result every doctor check returns, and the context every check reads its inputs from.

A check is a plain function ``check_x(ctx: DoctorContext, ...) -> CheckResult``: it reads the
environment, the filesystem and the clock only through ``ctx`` (so tests build real situations in
temporary folders), never prints, and never raises for a problem it is meant to find.
"""

from __future__ import annotations

import enum
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: a probe script prints its findings as one line: PROBE_MARK + a JSON object
PROBE_MARK = "@@DOCTOR@@"


class Status(str, enum.Enum):
    """Outcome of one check; ordered PASS < SKIP < WARN < FAIL by :attr:`severity`."""

    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"

    @property
    def severity(self) -> int:
        """0 PASS, 0 SKIP, 1 WARN, 2 FAIL."""
        return {"PASS": 0, "SKIP": 0, "WARN": 1, "FAIL": 2}[self.value]


@dataclass
class CheckResult:
    """One line of the checklist.

    ``id`` is stable and dot-separated (``group.name``); ``message`` is one line; ``fix`` is what to
    do about a WARN/FAIL (``None`` for PASS/SKIP); ``details`` is JSON-serializable data.
    """

    id: str
    title: str
    status: Status
    message: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def group(self) -> str:
        """The part of ``id`` before the first dot."""
        return self.id.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form used by the JSON report (see docs/doctor.md for the schema)."""
        return {
            "id": self.id,
            "group": self.group,
            "title": self.title,
            "status": self.status.value,
            "message": self.message,
            "fix": self.fix,
            "details": _jsonable(self.details),
            "duration_s": round(float(self.duration_s), 4),
        }


def _jsonable(value: Any) -> Any:
    """Recursively turn paths, tuples, sets and enums into JSON-friendly values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        seq = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_jsonable(v) for v in seq]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def worst(statuses: list[Status]) -> Status:
    """The most severe status in ``statuses`` (PASS for an empty list; SKIP only if all SKIP)."""
    if not statuses:
        return Status.PASS
    if all(s is Status.SKIP for s in statuses):
        return Status.SKIP
    return max((s for s in statuses if s is not Status.SKIP), key=lambda s: s.severity, default=Status.PASS)


@dataclass
class CommandResult:
    """What :meth:`DoctorContext.run` returns: exit code and captured text (``rc=None``: timeout)."""

    rc: int | None
    stdout: str
    stderr: str


@dataclass
class DoctorContext:
    """Everything a check may read from the outside world.

    - ``env``: the environment variables (defaults to a copy of ``os.environ``).
    - ``root``: the filesystem root that absolute system paths (``/etc``, ``/proc``, ``/sys``)
      are resolved under; tests point it at a temporary folder.
    - ``clock``: wall-clock seconds (``time.time``), used to compare mtimes with "now".
    - ``python``: the interpreter whose imports are checked (defaults to this one).
    """

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    root: Path = Path("/")
    clock: Callable[[], float] = time.time
    python: str = field(
        default_factory=lambda: os.environ.get("VLA_ROS_DOCTOR_PYTHON", "") or _sys_executable()
    )

    def path(self, system_path: str | os.PathLike[str]) -> Path:
        """``/etc/x`` resolved under :attr:`root`."""
        p = Path(system_path)
        return self.root / p.relative_to(p.anchor) if p.is_absolute() else self.root / p

    def split(self, var: str) -> list[str]:
        """A ``:``-separated path variable as a list without empty entries."""
        return [p for p in self.env.get(var, "").split(os.pathsep) if p]

    def which(self, tool: str) -> str | None:
        """``tool`` looked up on this context's ``PATH``."""
        return shutil.which(tool, path=self.env.get("PATH", ""))

    def run(self, argv: list[str], timeout: float = 10.0, input_text: str | None = None) -> CommandResult:
        """Run a command with this context's environment; never raises for the command failing."""
        try:
            proc = subprocess.run(
                argv,
                env=dict(self.env),
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input_text,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return CommandResult(None, out, f"timed out after {timeout:g} s")
        except OSError as exc:
            return CommandResult(127, "", f"{argv[0]}: {exc}")
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def probe(
        self, script: str, what: str, *args: str, timeout: float = 60.0, stderr_tail: bool = False
    ) -> dict[str, Any]:
        """Run the Python ``script`` in :attr:`python` (``-c``, time-boxed) and return its findings.

        ``script`` prints one line ``PROBE_MARK + json.dumps(findings)``; ``args`` follow it on the
        command line. With ``stderr_tail`` the findings get ``"stderr_tail"``: the last 2000
        characters of its stderr. When no such line comes (a crash, a timeout) the answer is
        ``{"error": ...}`` naming ``what`` (``"TensorRT probe"``), the exit code or the timeout,
        and the end of stderr. Never raises for the probe failing.
        """
        res = self.run([self.python, "-c", script, *args], timeout=timeout)
        if res.rc is None:
            return {"error": f"{what} timed out after {timeout:g} s"}
        for line in res.stdout.splitlines():
            if line.startswith(PROBE_MARK):
                findings = json.loads(line[len(PROBE_MARK) :])
                if stderr_tail:
                    findings["stderr_tail"] = res.stderr[-2000:]
                return findings
        return {"error": f"{what} exited {res.rc}: {res.stderr.strip()[-400:]}"}


def _sys_executable() -> str:
    import sys

    return sys.executable


def result(
    id_: str, title: str, status: Status, message: str, fix: str | None = None, **details: Any
) -> CheckResult:
    """Shorthand constructor; PASS and SKIP results never carry a fix."""
    if status in (Status.PASS, Status.SKIP):
        fix = None
    return CheckResult(id_, title, status, message, fix, dict(details))
