"""The demo's report folder from a short run of the pure closed loop: JSON values, PNG, GIF frames."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vla_ros.nodes.demo.record import EpisodeResult, RunRecord
from vla_ros.nodes.demo.report import GIF_SIZE, gif_frame_times, jitter_ms, summary, write_report
from vla_ros.sim.loop import NS, T0_NS, ExpertPolicy, HoldPolicy, LoopConfig, run_episode
from vla_ros.sim.render import to_pixels
from vla_ros.sim.robot import SimArmConfig
from vla_ros.sim.task import ReachTask, fingertip

MS = 1_000_000
EPISODE_S = 2.0


def _short_run() -> RunRecord:
    """Two 2 s episodes of the pure loop, back to back: the expert (reaches) then holding still."""
    task = ReachTask()
    names = list(SimArmConfig().joint_names)
    cfg = LoopConfig(duration_s=EPISODE_S)
    targets = [np.array([-0.2, 0.6]), np.array([0.4, 0.55])]
    policies = [ExpertPolicy(task, targets[0], 10, 0.05), HoldPolicy(10, 6, 0.05)]
    t_all: list[int] = []
    q_all: list[np.ndarray] = []
    episodes, start, q = [], 0, None
    for k, (policy, target) in enumerate(zip(policies, targets, strict=True), start=1):
        ticks: list[tuple[int, np.ndarray]] = []
        ep = run_episode(
            policy,
            target,
            task=task,
            config=cfg,
            initial=q,
            on_tick=lambda t, _n, p, ts=ticks: ts.append((t, p)),
        )
        t_all += [start + t for t, _ in ticks]
        q_all += [p for _, p in ticks]
        q = ticks[-1][1]
        episodes.append(
            EpisodeResult(
                index=k,
                targets=[(float(target[0]), float(target[1]))],
                start_ns=start + T0_NS,
                end_ns=start + T0_NS + round(EPISODE_S * NS),
                reached_at_s=[] if ep.reached_at_s is None else [ep.reached_at_s],
                time_to_success_s=ep.reached_at_s,
                start_distance=ep.initial_distance,
                final_distance=ep.final_distance,
                min_distance=min(ep.distances),
            )
        )
        start += round(EPISODE_S * NS) + 10 * MS
    t = np.asarray(t_all, dtype=np.int64)
    states = np.stack(q_all)
    return RunRecord(
        joint_names=names,
        episodes=episodes,
        state_t_ns=t,
        state=states,
        command_t_ns=t[::2],
        command=states[::2],
        chunk_arrival_ns=T0_NS + np.arange(0, 4 * NS, 200 * MS),
        chunk_stamp_ns=T0_NS + np.arange(0, 4 * NS, 200 * MS) - 5 * MS,
        infer_ns=[1 * MS, 2 * MS, 3 * MS, 4 * MS],
        latency_ns=[10 * MS, 20 * MS, 30 * MS, 40 * MS, 50 * MS],
        tick_ns=[0, 10 * MS, 21 * MS, 30 * MS, 40 * MS],
        control_period_ns=10 * MS,
        overruns=2,
        chunks_published=20,
        commands_published=300,
        success_radius=task.success_radius,
        settings={"task": "reach", "mode": "latest", "latency_ms": 0.0},
    )


@pytest.fixture(scope="module")
def run() -> RunRecord:
    return _short_run()


def test_summary_values(run: RunRecord) -> None:
    assert run.episodes[0].success and not run.episodes[1].success  # the expert reaches, holding does not
    s = summary(run)
    assert s["episodes"] == 2 and s["successes"] == 1 and s["success_rate"] == 0.5
    reached = run.episodes[0].time_to_success_s
    assert 0 < reached < EPISODE_S
    assert s["time_to_success_s"] == {
        "per_episode": [round(reached, 3), None],
        "mean": round(reached, 3),
        "p50": round(reached, 3),
        "max": round(reached, 3),
    }
    # numpy linear percentiles of 1..4 ms: p50 2.5, p99 3.97; of 10..50 ms: 30 and 49.6
    assert s["inference_latency_ms"] == {"p50": 2.5, "p99": 3.97, "count": 4}
    assert s["observation_to_chunk_ms"] == {"p50": 30.0, "p99": 49.6, "count": 5}
    # tick periods 10, 11, 9, 10 ms at a 10 ms period: |deviation| 0, 1, 1, 0
    assert s["control"] == {
        "rate_hz": 100.0,
        "tick_period_p50_ms": 10.0,
        "jitter_p50_ms": 0.5,
        "jitter_p99_ms": 1.0,
        "overruns": 2,
        "ticks": 5,
    }
    assert s["chunks"] == {"published": 20, "received": 20}
    assert s["commands"] == {"published": 300, "received": len(run.command_t_ns)}
    first = s["per_episode"][0]
    assert first["targets"] == [[-0.2, 0.6]] and first["success"] is True and first["duration_s"] == EPISODE_S
    assert s["per_episode"][1]["min_distance"] == pytest.approx(run.episodes[1].start_distance, abs=1e-3)
    assert s["settings"]["mode"] == "latest"
    json.dumps(s, allow_nan=False)  # no NaN reaches the file


def test_no_samples_give_null_not_nan() -> None:
    assert all(np.isnan(v) for v in jitter_ms([5], 10))
    empty = RunRecord(
        joint_names=["a"],
        episodes=[],
        state_t_ns=np.zeros(0, np.int64),
        state=np.zeros((0, 1)),
        command_t_ns=np.zeros(0, np.int64),
        command=np.zeros((0, 1)),
        chunk_arrival_ns=np.zeros(0, np.int64),
        chunk_stamp_ns=np.zeros(0, np.int64),
    )
    s = summary(empty)
    assert s["success_rate"] is None and s["inference_latency_ms"]["p50"] is None
    assert s["control"]["jitter_p99_ms"] is None
    json.dumps(s, allow_nan=False)


def test_report_folder_opens_as_pictures(run: RunRecord, tmp_path: Path) -> None:
    report = write_report(run, tmp_path, {"mcap": "x.mcap"}, {"/joint_states": 3})
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert on_disk["files"]["mcap"] == "x.mcap" and on_disk["recorded_messages"] == {"/joint_states": 3}
    with Image.open(tmp_path / "trajectories.png") as png:
        assert png.format == "PNG" and png.size == (1080, 972)  # 12 x 10.8 in at 90 dpi
    # 10 fps: twenty frames in each 2 s episode
    times = gif_frame_times(run)
    assert len(times) == 40 and times[20] == (1, run.episodes[1].start_ns)
    with Image.open(tmp_path / "camera.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 40 == report["gif_frames"]
        assert gif.size == (2 * GIF_SIZE, GIF_SIZE + 22)
        assert gif.info["duration"] == 100
        frame = np.asarray(gif.convert("RGB"))
    # the fingertip ring is drawn in magenta around the fingertip's pixel in the front view
    q0 = run.state_at(run.episodes[0].start_ns)
    px, py = np.rint(to_pixels(fingertip(q0)[None], q0, GIF_SIZE, GIF_SIZE, "front")[0]).astype(int)
    patch = frame[py - 7 : py + 8, px - 7 : px + 8].reshape(-1, 3).astype(int)
    assert np.any(np.abs(patch - [255, 0, 255]).sum(axis=1) < 60)


def test_gif_needs_an_episode(tmp_path: Path, run: RunRecord) -> None:
    from vla_ros.nodes.demo.report import write_gif

    bare = RunRecord(**{**run.__dict__, "episodes": []})
    with pytest.raises(ValueError, match="no episode"):
        write_gif(bare, tmp_path / "x.gif")


def test_long_runs_get_a_lower_gif_frame_rate(run: RunRecord) -> None:
    from vla_ros.nodes.demo.report import GIF_MAX_FRAMES, gif_fps

    assert gif_fps(run) == 10.0  # 4 s of episodes: 40 frames at the full rate
    start = run.episodes[0].start_ns
    long = RunRecord(**{**run.__dict__, "episodes": [replace(run.episodes[0], end_ns=start + 300 * NS)]})
    assert gif_fps(long) == 4.0  # 300 s in 1200 frames
    assert len(gif_frame_times(long, gif_fps(long))) == GIF_MAX_FRAMES
