"""Pure metrics of a replay: reference interpolation, chunk error, smoothness, gap masking."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from vla_ros.eval.metrics import MetricsError, Track, chunk_errors, compute_metrics, derivatives_rms
from vla_ros.eval.replay import ExecutorTrace, PolicyTrace, StateSample

MS = 1_000_000


def _track(times_ms, values, max_gap_ms=250) -> Track:
    return Track(("a", "b"), np.asarray(times_ms, np.int64) * MS, np.asarray(values, float), max_gap_ms * MS)


def test_track_interpolates_and_never_bridges_gaps_or_extrapolates() -> None:
    tr = _track([0, 100, 200, 1000, 1100], [[0, 0], [1, 10], [2, 20], [5, 50], [6, 60]])
    got = tr.at(np.array([0, 50, 200, 150, 600, -10, 1050, 1200]) * MS)
    np.testing.assert_allclose(got[:5], [[0, 0], [0.5, 5], [2, 20], [1.5, 15], [np.nan, np.nan]])
    assert np.isnan(got[5]).all()  # before the track
    np.testing.assert_allclose(got[6], [5.5, 55])
    assert np.isnan(got[7]).all()  # after the track


def test_track_from_samples_orders_by_stamp_and_maps_names() -> None:
    samples = [
        StateSample(5, 200 * MS, ("b", "a"), np.array([20.0, 2.0])),
        StateSample(4, 100 * MS, ("a", "b", "c"), np.array([1.0, 10.0, 7.0])),
        StateSample(6, 300 * MS, ("a",), np.array([3.0])),  # only a: b keeps its latest value
    ]
    tr = Track.from_samples(samples, ("a", "b"))
    np.testing.assert_array_equal(tr.times_ns, [100 * MS, 200 * MS, 300 * MS])
    np.testing.assert_allclose(tr.values, [[1, 10], [2, 20], [3, 20]])
    with pytest.raises(MetricsError, match=r"never gives the joints \['x'\] \(it has \['a', 'b', 'c'\]"):
        Track.from_samples(samples, ("x",))


def test_track_merges_a_joint_state_split_over_two_publishers() -> None:
    """Arm (a, b) and gripper (g) in separate messages: latest value per joint, as the executor."""
    samples = [
        StateSample(0, 0 * MS, ("a", "b"), np.array([0.0, 0.0])),  # before any gripper value: no row
        StateSample(1, 5 * MS, ("g",), np.array([0.5])),
        StateSample(2, 10 * MS, ("a", "b"), np.array([1.0, -1.0])),
        StateSample(3, 20 * MS, ("g",), np.array([0.7])),
        StateSample(4, 20 * MS, ("a", "b"), np.array([2.0, -2.0])),  # same stamp: one row
        StateSample(5, 30 * MS, ("g",), np.array([np.nan])),  # non-finite: skipped
        StateSample(6, 40 * MS, ("a", "b"), np.array([4.0])),  # malformed: skipped
    ]
    tr = Track.from_samples(samples, ("g", "a", "b"))
    np.testing.assert_array_equal(tr.times_ns, [5 * MS, 10 * MS, 20 * MS])
    np.testing.assert_allclose(tr.values, [[0.5, 0.0, 0.0], [0.5, 1.0, -1.0], [0.7, 2.0, -2.0]])
    np.testing.assert_allclose(tr.at(np.array([15 * MS])), [[0.6, 1.5, -1.5]])
    with pytest.raises(MetricsError, match=r"every reference message naming the joints \['a'\] is malformed"):
        Track.from_samples([samples[-1]], ("a",))


def test_chunk_errors_compare_action_i_with_the_reference_at_t0_plus_i_dt() -> None:
    tr = _track([0, 1000], [[0, 0], [1, 1]], max_gap_ms=2000)  # value = t in seconds
    actions = np.array([[0.1, 0.1], [0.2, 0.3], [0.3, 0.3]])  # reference at 0, 0.1, 0.2 s: 0.0, 0.1, 0.2
    err = chunk_errors([(0, 100 * MS, actions)], tr)
    np.testing.assert_allclose(err[0], [[0.1, 0.1], [0.1, 0.2], [0.1, 0.1]])
    late = chunk_errors([(950 * MS, 100 * MS, actions)], tr)
    assert np.isfinite(late[0, 0]).all() and np.isnan(late[0, 1:]).all()  # past the end: not compared


def test_derivatives_of_a_cubic() -> None:
    dt = 0.01
    t = np.arange(200) * dt
    pos = (t**3)[:, None]
    d = derivatives_rms(pos, int(dt * 1e9))
    assert d["jerk_rms"] == pytest.approx(6.0, rel=1e-6)  # d3/dt3 t^3 = 6 exactly for differences
    assert d["max_speed"] == pytest.approx(((t[-1] ** 3) - (t[-2] ** 3)) / dt)
    gap = pos.copy()
    gap[100] = np.nan  # a missing command breaks the sequence; nothing across it is counted
    assert derivatives_rms(gap, int(dt * 1e9))["jerk_rms"] == pytest.approx(6.0, rel=1e-6)


def test_compute_metrics_masks_the_jump_after_a_state_gap() -> None:
    """A recording reset (no state, then the arm elsewhere) must not count as commanded jerk."""
    period = 10 * MS
    times = np.arange(0, 60) * period
    pos = np.zeros((60, 2))
    pos[30:] = 1.0  # the arm is elsewhere after the gap
    holding = np.zeros(60, bool)
    no_state = np.zeros(60, bool)
    no_state[20:29] = True
    holding[20:30] = True
    pos[20:30] = 0.0  # held at the old position, incl. one hold after the state returned
    ex = ExecutorTrace(("a", "b"), period, times, pos, holding, no_state, Counter(), Counter(), Counter(), [])
    ref = Track(("a", "b"), times.copy(), np.where(np.arange(60)[:, None] >= 29, 1.0, 0.0), period * 2)
    policy = PolicyTrace(start_ns=0, end_ns=int(times[-1]) + period)
    m = compute_metrics(policy, ex, ref)
    assert m["commands"]["jerk_rms"] == 0.0 and m["commands"]["max_speed"] == 0.0
    assert m["commands"]["hold_fraction"] == pytest.approx(10 / 60)
    # the command error counts the held tick where the arm was already elsewhere
    assert m["commands"]["mae"] == pytest.approx(1 / 60)
