"""``vla-ros demo``: parameter preparation, the report's verdict, and a real short run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vla_ros.sim.demo import (
    BUNDLED_CARD,
    DemoError,
    Report,
    default_params_file,
    prepare_params,
    resolve_card,
)


def test_default_params_and_card_resolution(repo_root: Path, tmp_path: Path, monkeypatch) -> None:
    assert default_params_file() == repo_root / "config" / "demo.yaml"
    monkeypatch.chdir(tmp_path)  # not the repository: the relative path falls back to package data
    assert resolve_card("vla_ros/sim/bundled/sim_reach_act") == BUNDLED_CARD
    assert resolve_card("") == BUNDLED_CARD
    assert resolve_card(str(tmp_path)) == tmp_path
    out, data = prepare_params(repo_root / "config" / "demo.yaml", None, tmp_path)
    written = yaml.safe_load(out.read_text())
    assert written["/**/policy_node"]["ros__parameters"]["card"] == str(BUNDLED_CARD)
    assert written["/**/sim_node"] == data["/**/sim_node"]


def test_bad_params_and_missing_card_say_how_to_fix(repo_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DemoError, match="does not exist; pass --params"):
        prepare_params(tmp_path / "nope.yaml", None, tmp_path)
    with pytest.raises(DemoError, match=r"policy card .*no_card.* not found .*train_bundled"):
        prepare_params(repo_root / "config" / "demo.yaml", str(tmp_path / "no_card"), tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    with pytest.raises(DemoError, match="not valid YAML"):
        prepare_params(bad, None, tmp_path)


def test_report_verdict() -> None:
    ok = Report(
        duration_s=5.0,
        nodes=["sim_node"],
        chunks_seen=10,
        commands_seen=50,
        start_distance=0.57,
        final_distance=0.02,
    )
    assert ok.problems() == []
    assert "result: OK" in ok.text()
    silent = Report(
        duration_s=5.0,
        nodes=[],
        start_distance=0.57,
        final_distance=0.57,
        policy_faults=["input:camera:front:missing"],
    )
    problems = silent.problems()
    assert len(problems) == 3
    assert "no action chunks" in problems[0] and "camera:front:missing" in problems[0]
    assert "armed_on_start" in problems[1]
    assert "did not do the task" in problems[2]
    assert "result: FAILED" in silent.text()
    no_state = Report(duration_s=5.0, nodes=[], chunks_seen=1, commands_seen=1)
    assert no_state.problems() == ["no joint_states from sim_node: the task metric could not be measured"]


@pytest.mark.ros
def test_demo_runs_the_whole_loop_and_exits_0(repo_root: Path) -> None:
    """The real thing, shortened: sim + bundled policy + executor; the arm reaches the target."""
    proc = subprocess.run(
        [sys.executable, "-m", "vla_ros.cli", "demo", "--duration", "8", "--json", "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo_root,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["problems"] == []
    assert report["nodes"] == ["sim_node", "policy_node", "executor_node"]
    assert report["policy_id"].startswith("sim_reach_act@")
    assert report["chunks_published"] > 20 and report["chunks_seen"] > 20
    assert report["commands_published"] > 100 and report["commands_seen"] > 100
    assert report["joint_states_seen"] > 100
    assert report["final_distance"] < 0.5 * report["start_distance"]
    assert report["infer_p50_ms"] > 0 and report["tick_period_ms"] > 0


@pytest.mark.ros
def test_demo_with_a_missing_card_fails_clearly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vla_ros.cli", "demo", "--duration", "1", "--card", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "not found" in proc.stderr and "train_bundled" in proc.stderr
