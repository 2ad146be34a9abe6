"""The latency study's metrics and modes (pure loop, the scripted expert, a few short episodes)."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.control.ensemble import MODES as EXECUTOR_MODES
from vla_ros.sim.metrics import aggregate, episode_metrics, jerk_rms, seam_jumps
from vla_ros.sim.study import (
    ASYNC_EXECUTION_HORIZON,
    STUDY_MODES,
    SYNC_EXECUTION_HORIZON,
    ModeUnavailable,
    expert_policy_for,
    mode_available,
    rows_for,
    run_row,
    study_config,
)
from vla_ros.sim.task import SwitchingTargetsTask

TASK = SwitchingTargetsTask()


def test_seam_jump_is_the_departure_from_constant_velocity_at_each_boundary() -> None:
    ramp = np.outer(np.arange(10) * 0.02, [1.0, -1.0])  # 2 joints at constant velocity
    spliced = ramp.copy()
    spliced[6:] += [0.1, 0.03]  # a chunk that starts 0.1 rad off at tick 6
    np.testing.assert_allclose(seam_jumps(ramp, [3, 6]), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(seam_jumps(spliced, [3, 6, 7]), [0.0, 0.1, 0.1], atol=1e-12)
    assert seam_jumps(spliced, [0, 1]).size == 0  # no two commands before them
    # a window of ticks after the boundary (an executor that switches later), cut at the next one
    np.testing.assert_allclose(seam_jumps(spliced, [3], window=4), [0.1], atol=1e-12)
    np.testing.assert_allclose(seam_jumps(spliced, [3, 5], window=4), [0.0, 0.1], atol=1e-12)
    with pytest.raises(ValueError, match="boundary tick 10 is outside the 10 recorded ticks"):
        seam_jumps(spliced, [10])
    # one window per boundary (an rtc hand-over that starts late gets a longer one)
    np.testing.assert_allclose(seam_jumps(spliced, [2, 3], window=[9, 1]), [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(seam_jumps(spliced, [2, 3], window=[1, 4]), [0.0, 0.1], atol=1e-12)
    with pytest.raises(ValueError, match="got 1 windows for 2 boundaries"):
        seam_jumps(spliced, [2, 3], window=[4])


def test_jerk_rms_of_a_cubic_is_its_constant_third_derivative() -> None:
    t = np.arange(50) * 0.01
    c = np.stack([t**3, 2 * t**3], axis=1)  # d3/dt3 = 6 and 12
    assert jerk_rms(c, 0.01) == pytest.approx(np.sqrt((36 + 144) / 2), rel=1e-6)
    assert jerk_rms(c[:3], 0.01) == 0.0
    with pytest.raises(ValueError, match="period_s must be > 0"):
        jerk_rms(c, 0.0)


def test_modes_map_to_loop_settings_and_rtc_waits_for_the_executor() -> None:
    sync = study_config("sync", 0.3, 8.0)
    assert (sync.schedule, sync.mode, sync.execution_horizon) == ("sync", "latest", SYNC_EXECUTION_HORIZON)
    for mode in ("latest", "temporal_ensemble", "blend"):
        cfg = study_config(mode, 0.3, 8.0)
        assert (cfg.schedule, cfg.mode, cfg.execution_horizon) == (
            "one_in_flight",
            mode,
            ASYNC_EXECUTION_HORIZON,
        )
        assert cfg.latency_s == 0.3 and cfg.stop_on_success and cfg.record
    if "rtc" in EXECUTOR_MODES:
        assert mode_available("rtc") is None
    else:
        assert "no chunk mode 'rtc'" in mode_available("rtc")
        with pytest.raises(ModeUnavailable, match="no chunk mode 'rtc'"):
            study_config("rtc", 0.3, 8.0)
    with pytest.raises(ValueError, match="unknown study mode 'fast'"):
        mode_available("fast")


def test_a_row_of_the_expert_has_the_studys_fields_and_right_values() -> None:
    expert = expert_policy_for(TASK, 20, 0.05)
    row = run_row(expert, TASK, "sync", 0.3, 2, seed=5)
    assert set(row) == {
        "mode",
        "latency_ms",
        "episodes",
        "success_rate",
        "time_to_success_s",
        "max_seam_jump",
        "median_seam_jump",
        "jerk_rms",
        "dropped_chunks",
    }
    assert (row["mode"], row["latency_ms"], row["episodes"], row["success_rate"]) == ("sync", 300, 2, 1.0)
    # each of the 3 targets costs at least one 0.3 s wait before the robot moves
    assert 3 * 0.3 < row["time_to_success_s"] <= TASK.deadline_s
    latest = run_row(expert, TASK, "latest", 0.3, 2, seed=5)
    assert latest["success_rate"] == 1.0 and latest["time_to_success_s"] < row["time_to_success_s"]
    # the velocity limit bounds every jump: up to 3 rad/s x 10 ms, reversing: 2 x 0.03
    assert 0.0 < latest["max_seam_jump"] <= 0.06 + 1e-9
    unavailable = [m for m in STUDY_MODES if mode_available(m) is not None]
    rows = rows_for(expert, TASK, unavailable, [0.1], 1)
    assert all(
        r["episodes"] == 0 and r["success_rate"] is None and "not available" in r["note"] for r in rows
    )


def test_metrics_need_a_recorded_episode_and_rows_need_episodes() -> None:
    from vla_ros.sim.loop import Episode

    with pytest.raises(ValueError, match="run it with LoopConfig\\(record=True\\)"):
        episode_metrics(Episode(np.zeros(2), 1.0, 1.0), 0.01)
    with pytest.raises(ValueError, match="no episodes"):
        aggregate([])
