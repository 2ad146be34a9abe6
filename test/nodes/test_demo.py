"""``vla-ros demo``: its settings (YAML, card, task, mode) and one real episode on the node graph."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from vla_ros.nodes.demo.config import (
    BUNDLED_CARD,
    DemoError,
    chunk_modes,
    default_card,
    default_params_file,
    prepare_params,
    resolve_card,
    resolve_task,
)
from vla_ros.nodes.demo.episodes import MIN_TARGET_STEP, task_episodes


def test_default_params_and_card_resolution(repo_root: Path, tmp_path: Path, monkeypatch) -> None:
    assert default_params_file() == repo_root / "config" / "demo.yaml"
    monkeypatch.chdir(tmp_path)  # not the repository: the relative path falls back to package data
    assert resolve_card("vla_ros/sim/bundled/sim_reach_act") == BUNDLED_CARD
    assert resolve_card("sim_reach_act") == BUNDLED_CARD  # a bundled card's name
    assert resolve_card("") == BUNDLED_CARD
    assert resolve_card(str(tmp_path)) == tmp_path
    out, data = prepare_params(
        repo_root / "config" / "demo.yaml", None, tmp_path, mode="latest", modes=chunk_modes()
    )
    written = yaml.safe_load(out.read_text())
    assert written["/**/policy_node"]["ros__parameters"]["card"] == str(BUNDLED_CARD)
    assert written["/**/executor_node"]["ros__parameters"]["mode"] == "latest"
    assert written["/**/sim_node"] == data["/**/sim_node"]


def test_bad_params_card_and_mode_say_how_to_fix(repo_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DemoError, match="does not exist; pass --params"):
        prepare_params(tmp_path / "nope.yaml", None, tmp_path)
    with pytest.raises(DemoError, match=r"policy card .*no_card.* not found .*train_bundled"):
        prepare_params(repo_root / "config" / "demo.yaml", str(tmp_path / "no_card"), tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    with pytest.raises(DemoError, match="not valid YAML"):
        prepare_params(bad, None, tmp_path)
    with pytest.raises(DemoError, match=r"--mode 'fast' is not an executor chunk mode; use one of .*latest"):
        prepare_params(repo_root / "config" / "demo.yaml", None, tmp_path, mode="fast", modes=chunk_modes())


def test_tasks_and_their_cards() -> None:
    assert {"temporal_ensemble", "latest", "blend"} <= set(chunk_modes())
    reach = resolve_task("reach")
    assert reach.name == "reach" and reach.card == "sim_reach_act" == default_card("reach")
    with pytest.raises(DemoError, match=r"no sim task 'fly'; choose one of .*reach"):
        resolve_task("fly")


def test_episode_targets_follow_the_seed_and_never_start_reached() -> None:
    model = resolve_task("reach").model
    first = task_episodes(model, 12, seed=3)
    again = task_episodes(model, 12, seed=3)
    assert [e.targets.tolist() for e in first] == [e.targets.tolist() for e in again]
    assert [e.targets.tolist() for e in task_episodes(model, 12, seed=4)] != [
        e.targets.tolist() for e in first
    ]
    for prev, cur in itertools.pairwise(first):
        assert np.linalg.norm(cur.targets[0] - prev.targets[-1]) >= MIN_TARGET_STEP


def test_bad_arguments_exit_2_with_the_reason(capsys) -> None:
    from vla_ros.cli import main

    assert main(["demo", "--episodes", "0"]) == 2
    assert "--episodes must be >= 1, got 0" in capsys.readouterr().err
    assert main(["demo", "--latency-ms", "-5"]) == 2
    assert "--latency-ms must be in [0, 60000) ms, got -5.0" in capsys.readouterr().err
    assert main(["demo", "--mode", "fast"]) == 2
    assert "--mode 'fast' is not an executor chunk mode" in capsys.readouterr().err
    assert main(["demo", "--task", "fly"]) == 1
    assert "no sim task 'fly'" in capsys.readouterr().err


@pytest.mark.ros
@pytest.mark.slow
def test_one_episode_on_the_node_graph_writes_the_report_folder(repo_root: Path, tmp_path: Path) -> None:
    """The real thing, shortened: sim + bundled policy (100 ms injected) + executor (latest), recorded."""
    from PIL import Image
    from rosbags.rosbag2 import Reader

    from vla_ros.nodes.demo.recorder import typestore

    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "vla_ros.cli", "demo", "--episodes", "1", "--episode-s", "5"]
    cmd += [
        "--mode",
        "latest",
        "--latency-ms",
        "100",
        "--record",
        "--json",
        "--out",
        str(out),
        "--log-level",
        "error",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=repo_root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert sum(line.startswith("episode 1/1  target (") for line in lines) == 1  # one progress line
    assert f"report: {out}/" in proc.stdout
    report = json.loads(lines[-1])
    assert report == json.loads((out / "report.json").read_text())
    s = report["settings"]
    assert (s["task"], s["mode"], s["latency_ms"], s["episodes"]) == ("reach", "latest", 100.0, 1)
    assert s["policy_id"].startswith("sim_reach_act@")
    assert report["episodes"] == 1 and report["success_rate"] in (0.0, 1.0)
    (episode,) = report["per_episode"]
    assert episode["success"] == (report["success_rate"] == 1.0)
    assert episode["start_distance"] > 0.15  # a new target, not one already reached
    # the injected 100 ms is in every inference the node timed (a lower bound: sleep never returns early)
    assert report["inference_latency_ms"]["p50"] >= 100.0 and report["inference_latency_ms"]["count"] > 0
    assert report["chunks"]["published"] > 0 and report["chunks"]["received"] > 0
    assert report["commands"]["received"] > 0 and report["control"]["ticks"] > 0
    with Image.open(out / "trajectories.png") as png:
        assert png.format == "PNG"
    with Image.open(out / "camera.gif") as gif:
        # one frame per 100 ms of the episode (duration_s is rounded to 1 ms in the JSON)
        assert gif.n_frames == report["gif_frames"]
        assert episode["duration_s"] * 10 - 0.01 <= gif.n_frames <= episode["duration_s"] * 10 + 1.01
    # the recording: every topic of the run, as many messages as the recorder wrote, all decodable
    recorded = report["recorded_messages"]
    expected = {"/joint_states", "/vla/action_chunk", "/vla/joint_command", "/camera/front/image_raw"}
    expected |= {"/camera/wrist/image_raw", "/sim/target", "/sim/fingertip", "/diagnostics"}
    assert expected <= set(recorded) and all(recorded[t] > 0 for t in expected)
    store = typestore()
    with Reader(Path(report["files"]["mcap"]).parent) as reader:
        assert {c.topic: c.msgcount for c in reader.connections} == recorded
        chunks = [
            store.deserialize_cdr(raw, c.msgtype)
            for c, _, raw in reader.messages()
            if c.topic == "/vla/action_chunk"
        ]
    assert {c.horizon for c in chunks} == {10} and chunks[0].policy_id == s["policy_id"]
