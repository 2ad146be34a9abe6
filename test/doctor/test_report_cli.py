"""`vla-ros doctor` end to end: JSON schema, exit codes, the stale-build report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from vla_ros.doctor.report import JSON_SCHEMA, SCHEMA_ID, format_text
from vla_ros.doctor.result import CheckResult, Status

REPO = Path(__file__).resolve().parents[2]


def validate(instance: Any, schema: dict, path: str = "$") -> list[str]:
    """Errors of ``instance`` against the JSON Schema subset :data:`JSON_SCHEMA` uses."""
    errs: list[str] = []
    types = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "null": type(None),
    }
    if "type" in schema:
        allowed = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            isinstance(instance, types[t]) and not (t in ("integer", "number") and isinstance(instance, bool))
            for t in allowed
        )
        if not ok:
            return [f"{path}: {instance!r} is not {allowed}"]
    if "const" in schema and instance != schema["const"]:
        errs.append(f"{path}: {instance!r} != {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errs.append(f"{path}: {instance!r} not in {schema['enum']}")
    if "pattern" in schema and not re.search(schema["pattern"], instance):
        errs.append(f"{path}: {instance!r} does not match {schema['pattern']}")
    if "minimum" in schema and instance < schema["minimum"]:
        errs.append(f"{path}: {instance} < {schema['minimum']}")
    if isinstance(instance, dict):
        errs += [f"{path}: missing {k}" for k in schema.get("required", []) if k not in instance]
        props = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            errs += [f"{path}: unexpected {k}" for k in instance if k not in props]
        for k, sub in props.items():
            if k in instance:
                errs += validate(instance[k], sub, f"{path}.{k}")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            errs += validate(item, schema["items"], f"{path}[{i}]")
    return errs


def doctor(
    *args: str, env: dict[str, str] | None = None, via_dispatcher: bool = False
) -> subprocess.CompletedProcess:
    """Run the doctor in a fresh interpreter, like a user would (``via_dispatcher``: through
    ``vla-ros doctor``, the top-level command line, which is slower to start)."""
    cmd = ["-m", "vla_ros.cli", "doctor"] if via_dispatcher else ["-m", "vla_ros.doctor.cli"]
    return subprocess.run(
        [sys.executable, *cmd, *args],
        cwd=REPO,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_json_report_validates_and_exit_code_follows_fail() -> None:
    env = dict(os.environ, ROS_DISTRO="foxy")
    proc = doctor("--json", "--no-gpu", env=env, via_dispatcher=True)
    report = json.loads(proc.stdout)
    assert validate(report, JSON_SCHEMA) == []
    assert report["schema"] == SCHEMA_ID
    by_id = {c["id"]: c for c in report["checks"]}
    assert by_id["ros.distro"]["status"] == "FAIL" and "foxy" in by_id["ros.distro"]["message"]
    assert by_id["ros.distro"]["fix"]
    assert proc.returncode == 1 and report["exit_code"] == 1 and report["ok"] is False
    assert sum(report["summary"].values()) == len(report["checks"])
    for group in ("ros", "python", "workspace", "middleware", "gpu", "inference", "card"):
        assert any(c["group"] == group for c in report["checks"]), group


def test_only_flag_and_passing_exit_code() -> None:
    env = dict(os.environ, ROS_DISTRO="jazzy", ROS_VERSION="2")
    env.pop("ROS_LOCALHOST_ONLY", None)
    proc = doctor("--only", "ros", "--json", env=dict(env, AMENT_PREFIX_PATH=""))
    report = json.loads(proc.stdout)
    assert {c["group"] for c in report["checks"]} == {"ros"}
    # empty AMENT_PREFIX_PATH warns, nothing fails: exit 0; --strict turns the WARN into exit 1
    assert proc.returncode == 0, report
    assert doctor("--only", "ros", "--strict", env=dict(env, AMENT_PREFIX_PATH="")).returncode == 1


def test_readable_checklist_prints_fixes() -> None:
    proc = doctor("--no-gpu", "--only", "ros", env=dict(os.environ, ROS_DISTRO="foxy"))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if "[FAIL] ros.distro" in line)
    assert "fix:" in lines[i + 1]
    assert "FAILED" in lines[-1]


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert doctor("--card", str(tmp_path / "nope")).returncode == 2
    assert doctor("--topic", "camera:abc").returncode == 2


def test_stale_build_reported_by_cli(workspace: Path) -> None:
    f = workspace / "src" / "vla_ros" / "vla_ros" / "doctor" / "checks.py"
    later = time.time() + 5
    os.utime(f, (later, later))
    proc = doctor("--json", "--only", "workspace", "--workspace", str(workspace))
    by_id = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    assert by_id["workspace.stale"]["status"] in ("WARN", "FAIL")
    assert "vla_ros/doctor/checks.py" in by_id["workspace.stale"]["message"]


def test_docs_carry_the_schema() -> None:
    text = (REPO / "docs" / "doctor.md").read_text()
    block = re.search(r"```json\n(\{\n  \"\$schema\".*?)\n```", text, re.S)
    assert block, "docs/doctor.md must contain the JSON schema in a ```json block"
    assert json.loads(block.group(1)) == JSON_SCHEMA


def test_text_format_groups_and_summary() -> None:
    results = [
        CheckResult("ros.distro", "ROS distro", Status.PASS, "ROS 2 jazzy"),
        CheckResult("card.files", "card files", Status.FAIL, "missing model.onnx", "re-export"),
    ]
    text = format_text(results)
    assert "ROS distro" in text and "Policy card" in text
    assert "fix: re-export" in text and "1 PASS, 0 WARN, 1 FAIL, 0 SKIP -> FAILED" in text
