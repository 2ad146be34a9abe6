"""Doctor results as /diagnostics entries, the Trigger reply and doctor_node's options (no ROS)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vla_ros.doctor.diagnostics import (
    ERROR,
    OK,
    WARN,
    check_entry,
    diagnostic_entries,
    node_options,
    static_options,
    summary_entry,
    trigger_reply,
)
from vla_ros.doctor.report import GROUP_TITLES
from vla_ros.doctor.result import Status, result


def _results():
    return [
        result("ros.distro", "ROS distro", Status.PASS, "kilted", fix="ignored for PASS"),
        result("gpu.cuda", "CUDA", Status.SKIP, "no GPU"),
        result("live.clock", "Clock", Status.WARN, "skew 40 ms", fix="sync clocks", skew_ms=40.0),
        result("live.topics", "Topics", Status.FAIL, "/cam missing", fix="start it", missing=["/cam"]),
    ]


def test_check_entries() -> None:
    passed, skipped, warned, failed = (check_entry(r) for r in _results())
    assert passed.level == OK and passed.name == "vla_ros doctor: ros.distro" and passed.message == "kilted"
    assert passed.values == [("status", "PASS"), ("id", "ros.distro"), ("title", "ROS distro")]
    assert skipped.level == OK and skipped.message == "skipped: no GPU"
    assert ("status", "SKIP") in skipped.values
    assert warned.level == WARN and ("fix", "sync clocks") in warned.values
    assert ("skew_ms", "40.0") in warned.values
    assert failed.level == ERROR and dict(failed.values)["missing"] == json.dumps(["/cam"])


def test_long_messages_and_values_are_cut() -> None:
    entry = check_entry(result("card.x", "X", Status.FAIL, "m" * 5000, fix="f", blob="v" * 5000))
    assert len(entry.message) == 1000 and len(dict(entry.values)["blob"]) == 2000


def test_summary_and_trigger_reply() -> None:
    results = _results()
    summary = summary_entry(results)
    assert summary.level == ERROR and summary.name == "vla_ros doctor: summary"
    assert summary.message == "1 PASS, 1 WARN, 1 FAIL, 1 SKIP; FAIL: live.topics"
    assert summary.values == [("PASS", "1"), ("WARN", "1"), ("FAIL", "1"), ("SKIP", "1")]
    entries = diagnostic_entries(results)
    assert [e.name for e in entries][1:] == [f"vla_ros doctor: {r.id}" for r in results]
    assert entries[0] == summary

    ok, message = trigger_reply(results)
    assert ok is False and message == "1 PASS, 1 WARN, 1 FAIL, 1 SKIP; live.topics: /cam missing"
    assert trigger_reply(results[:3]) == (True, "1 PASS, 1 WARN, 0 FAIL, 1 SKIP")
    assert summary_entry(results[:3]).level == WARN
    empty = summary_entry([])
    assert empty.level == OK and empty.message == "0 PASS, 0 WARN, 0 FAIL, 0 SKIP"


def test_node_options(tmp_path: Path) -> None:
    opts = node_options(
        expected_topics=["/cam/image_raw:30", "/joint_states"],
        rate_tolerance=0.3,
        live_s=1.5,
        card=str(tmp_path / "card"),
        workspace="",
        control_rate_hz=0.0,
        gpu=False,
        groups=["ros", "live"],
    )
    assert [(t.name, t.rate_hz, t.tolerance) for t in opts.topics] == [
        ("/cam/image_raw", 30.0, 0.3),
        ("/joint_states", None, 0.3),
    ]
    assert opts.card == tmp_path / "card" and opts.workspace is None
    assert opts.control_rate_hz is None and opts.gpu is False and opts.live_s == 1.5
    assert opts.groups == ("ros", "live") and opts.module_file
    assert node_options().groups == tuple(GROUP_TITLES)
    assert node_options(control_rate_hz=100.0, workspace="/ws").control_rate_hz == 100.0

    static = static_options(opts)
    assert static.live_s == 0.0 and static.groups == ("ros",)
    assert opts.live_s == 1.5 and opts.groups == ("ros", "live")  # the original is unchanged


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"live_s": -1.0}, r"live_s must be >= 0, got -1.0"),
        ({"groups": ["ros", "gpus"]}, r"unknown groups \['gpus'\]; known: \['ros'"),
        ({"expected_topics": ["camera"]}, r"topic expectation 'camera' must look like /topic"),
    ],
)
def test_node_options_errors(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        node_options(**kwargs)


def test_imports_without_ros() -> None:
    code = "import sys, vla_ros.doctor.diagnostics; assert 'rclpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
