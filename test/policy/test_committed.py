"""Real-time chunking on the policy side: committed actions resampled onto the chunk grid (integer
ns), the delay estimate that sizes them, staleness, and the horizon trigger; on a real ONNX card."""

from __future__ import annotations

import numpy as np
import pytest
from test_policy_step import MS, T0, feed, frames, make_step

from vla_ros.control.rtc import CommittedActions
from vla_ros.policy.committed import CommittedError, committed_from_message, horizon_due, resample
from vla_ros.runtime import load_runtime


def test_resample_onto_the_chunk_grid_in_integer_ns():
    """Committed on a 10 ms grid from 1.000 s, values 0.001 x (t in ms since 1 s) for joint a and
    minus that for b; the chunk grid starts at 1.005 s with dt 30 ms: points at 5, 35, 65 ms."""
    start = 1_000 * MS
    rows = np.stack([np.arange(11) * 0.01, -np.arange(11) * 0.01], axis=1)
    c = CommittedActions(start, 10 * MS, ("a", "b"), rows)
    out = resample(c, start + 5 * MS, 30 * MS, 3)
    assert out.dtype == np.float32 and out.shape == (3, 2)
    np.testing.assert_array_equal(
        out, np.array([[0.005, -0.005], [0.035, -0.035], [0.065, -0.065]], np.float32)
    )
    on_grid = resample(c, start + 20 * MS, 40 * MS, 3)  # 20, 60, 100 ms: rows 2, 6, 10 exactly
    np.testing.assert_array_equal(on_grid, rows[[2, 6, 10]].astype(np.float32))
    assert resample(c, start - 1, 10 * MS, 1) is None  # 1 ns before the first point
    assert resample(c, start + 5 * MS, 30 * MS, 4)[3, 0] == np.float32(0.095)
    assert resample(c, start + 5 * MS, 30 * MS, 5) is None  # 125 ms: past the last point (100 ms)
    assert resample(c, start + 1, 10 * MS, 10) is not None and resample(c, start + 1, 10 * MS, 11) is None
    assert resample(c, start, 10 * MS, 0).shape == (0, 2)


def test_committed_message_reordered_and_checked():
    c = committed_from_message(7, 10 * MS, ["b", "x", "a"], [1, 2, 3, 4, 5, 6], ("a", "b"))
    np.testing.assert_array_equal(c.actions, [[3, 1], [6, 4]])
    assert (c.start_ns, c.end_ns) == (7, 7 + 10 * MS)
    with pytest.raises(CommittedError, match=r"without the policy's action joints \['a'\]") as info:
        committed_from_message(0, MS, ["b"], [1.0], ("a", "b"))
    assert info.value.cause == "committed:joints"
    with pytest.raises(CommittedError) as info:
        committed_from_message(0, MS, ["a", "b"], [1.0, 2.0, 3.0], ("a", "b"))
    assert info.value.cause == "committed:shape"


def test_horizon_trigger_fires_at_the_right_tick():
    """Covered until 1.0 s, chunk dt 100 ms, d = 3, margin 1: due once less than 400 ms remain;
    polled every 10 ms from 0, the first due tick is 610 ms (600 ms leaves exactly 400 ms)."""
    ticks = [t for t in range(0, 1000 * MS, 10 * MS) if horizon_due(t, 1000 * MS, 100 * MS, 3, 1)]
    assert ticks[0] == 610 * MS
    assert horizon_due(0, None, 100 * MS, 3, 1)  # nothing known to be covered
    assert not horizon_due(600 * MS, 1000 * MS, 100 * MS, 3, 1)


class Recording:
    """The real runtime, keeping every Observation it is given (what the step built)."""

    def __init__(self, runtime) -> None:
        self.runtime, self.card, self.seen = runtime, runtime.card, []

    def infer(self, obs):
        self.seen.append(obs)
        return self.runtime.infer(obs)


def _committed(step, received_ns: int, start_ns: int, n: int = 40):
    """Executor joints j2, j1 (another order than the card's a1, a2 renamed below), 10 ms grid,
    values j1 = t/1 s, j2 = -t/1 s (t since T0)."""
    t = (start_ns - T0 + np.arange(n) * 10 * MS) / 1e9
    rows = np.stack([-t, t], axis=1).astype(np.float32)
    return step.push_committed(received_ns, start_ns, 10 * MS, ["j2", "j1"], rows.ravel())


def test_observation_carries_committed_actions_for_the_delay(card):
    """Card dt 50 ms. Latencies 900 (warm-up, excluded), 60, 70 ms -> p95 70 ms -> d = 2 steps.
    The next observation (stamp T0 + 200 ms) carries the committed actions at +200 and +250 ms."""
    rec = Recording(load_runtime(card, backend="onnxruntime"))
    step, logs = make_step(rec, action_joints=("j1", "j2"))
    for i, latency in enumerate((900, 60, 70)):
        feed(step, T0 + i * 50 * MS, frames(i))
        result = step.run(T0 + i * 50 * MS + MS)
        assert rec.seen[-1].committed_actions is None  # no estimate / nothing committed yet
        step.record_published(result, latency * MS)
    est = step.delay_estimate()
    assert (est.steps, est.latency_ns, est.samples) == (2, 70 * MS, 2)
    now = T0 + 210 * MS
    assert _committed(step, received_ns=now - 5 * MS, start_ns=T0 + 100 * MS)
    feed(step, T0 + 200 * MS, frames(5))
    step.run(now)
    got = rec.seen[-1].committed_actions
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.array([[0.2, -0.2], [0.25, -0.25]], np.float32))
    assert logs.having("committed") == []


def test_stale_committed_actions_are_not_used_one_log_line(card):
    rec = Recording(load_runtime(card, backend="onnxruntime"))
    step, logs = make_step(rec, action_joints=("j1", "j2"), committed_max_age_ns=100 * MS)
    step.uses_committed = True  # as a real-time chunking card (test_policy_rtc_nodes runs a real one)
    for latency in (900, 60, 70):
        step.record_latency(latency * MS)
    _committed(step, received_ns=T0 - 200 * MS, start_ns=T0 - 300 * MS, n=100)
    for i in range(3):
        feed(step, T0 + i * 20 * MS, frames(i))
        step.run(T0 + i * 20 * MS + MS)
        assert rec.seen[-1].committed_actions is None
    assert len(logs.having("not using the executor's committed actions", "committed_max_age_s 0.1")) == 1
    assert "committed:stale" in step.faults.active()
    _committed(step, received_ns=T0 + 60 * MS, start_ns=T0 - 100 * MS, n=100)
    feed(step, T0 + 60 * MS, frames(9))
    step.run(T0 + 61 * MS)
    assert rec.seen[-1].committed_actions.shape == (2, 2)
    assert "committed:stale" not in step.faults.active()


def test_a_card_without_rtc_runs_unchanged_with_committed_actions(card):
    """The tiny card has no RTC conditioning: the chunk is the same with or without them."""
    chunks = []
    for push in (False, True):
        step, _ = make_step(load_runtime(card, backend="onnxruntime"), action_joints=("j1", "j2"))
        for latency in (900, 60, 70):
            step.record_latency(latency * MS)
        if push:
            _committed(step, received_ns=T0, start_ns=T0 - 100 * MS, n=100)
        feed(step, T0, frames(3))
        chunks.append(step.run(T0 + MS).actions)
    np.testing.assert_array_equal(chunks[0], chunks[1])


def test_horizon_due_uses_the_last_chunk_and_fresh_committed_actions(card):
    """dt 50 ms, margin 1, no estimate yet (d = 0): due once less than 50 ms remain; after a
    chunk (stamp T0 + 400 ms, 4 actions: last at +550 ms) its end counts too."""
    step, _ = make_step(load_runtime(card, backend="onnxruntime"), action_joints=("j1", "j2"))
    assert step.horizon_due(T0, 1)  # nothing covered
    _committed(step, received_ns=T0, start_ns=T0, n=31)  # covered until T0 + 300 ms
    assert not step.horizon_due(T0 + 250 * MS, 1)
    assert step.horizon_due(T0 + 250 * MS + 1, 1)
    assert step.horizon_due(T0 + 300 * MS, 1)
    feed(step, T0 + 400 * MS, frames(1))
    result = step.run(T0 + 401 * MS)
    step.record_published(result, 10 * MS)
    assert not step.horizon_due(T0 + 500 * MS, 1)
    assert step.horizon_due(T0 + 500 * MS + 1, 1)


def test_delay_reported_in_status_values():
    """0.1 + 0.2 s latencies at dt 0.1 s after a warm-up sample: 3 steps, 300000000 ns."""
    from vla_ros.control.delay import DelayEstimator
    from vla_ros.policy import PolicyStats, status_values

    est = DelayEstimator(100 * MS)
    for latency in (700 * MS, 100 * MS + 200 * MS):
        est.add(latency)
    values = dict(
        status_values(
            policy_id="p",
            backend="onnxruntime",
            rate_hz=1.0,
            stats=PolicyStats().snapshot(),
            inputs={},
            active={},
            delay=est.estimate(),
        )
    )
    assert (values["delay_steps"], values["delay_ns"], values["delay_samples"]) == ("3", "300000000", "1")


def _rate_triggered(step, start_ms: int, stop_ms: int, committed_until_ms: int) -> None:
    """Inference every 100/3 ms (``rate_hz`` 30; each chunk published 20 ms after its stamp) while
    the executor publishes committed actions every 100 ms (``committed_rate_hz`` 10) until
    ``committed_until_ms``, in phase with every third inference; times in ms after T0."""
    next_committed = start_ms
    for i in range(start_ms * 3 // 100, stop_ms * 3 // 100):
        t = T0 + i * 100 * MS // 3
        while T0 + next_committed * MS <= t and next_committed <= committed_until_ms:
            r = T0 + next_committed * MS
            assert _committed(step, received_ns=r, start_ns=r - 100 * MS, n=40)
            next_committed += 100
        feed(step, t, frames(i % 7))
        step.record_published(step.run(t + MS), 20 * MS)


@pytest.mark.parametrize("rtc", [False, True])
def test_committed_actions_predating_the_last_chunk_are_counted_not_logged(card, rtc: bool):
    """Rate triggering (30 Hz inference, committed actions at 10 Hz): most inferences find the
    latest committed actions older than the last chunk. That is normal: counted, never logged.
    Then the executor stops for 1.5 s: a card that does not use committed actions has nothing
    to warn about; a real-time chunking card has one fault line for the whole outage (none
    usable for longer than committed_max_age 250 ms) and one "recovered" line once they have
    been used again for fault_settle (1 s)."""
    from vla_ros.policy.from_params import SETTLING_SOURCES
    from vla_ros.util.faults import FaultLog

    step, logs = make_step(
        load_runtime(card, backend="onnxruntime"),
        action_joints=("j1", "j2"),
        faults=FaultLog(settle_ns=1000 * MS, settle_prefixes=SETTLING_SOURCES),  # as policy_node's
        committed_max_age_ns=250 * MS,
    )
    assert step.uses_committed is False  # the tiny card has no RTC conditioning
    step.uses_committed = rtc  # as a real-time chunking card (test_policy_rtc_nodes runs a real one)
    _rate_triggered(step, 0, 1500, committed_until_ms=1500)
    assert step.tracker.not_fresh >= 20  # about 2 of every 3 of the 46 inferences
    assert logs.having("committed") == [] and step.faults.active() == {}
    _rate_triggered(step, 1500, 4500, committed_until_ms=3000)  # nothing from 3.0 to 4.5 s
    lines = logs.having("not using the executor's committed actions")
    recovered = logs.having("recovered: committed")
    if not rtc:
        assert lines == [] and recovered == [] and step.faults.active() == {}
        return
    assert len(lines) == 1 and "received " in lines[0][1] and "committed_max_age_s 0.25" in lines[0][1]
    assert "committed:stale" in step.faults.active()
    _rate_triggered(step, 4500, 5400, committed_until_ms=5400)  # used again, 0.9 s < settle
    assert "committed:stale" in step.faults.active() and recovered == []
    _rate_triggered(step, 5400, 6000, committed_until_ms=6000)
    assert "committed:stale" not in step.faults.active()
    assert len(logs.having("recovered: committed:stale")) == 1
    assert len(logs.having("not using the executor's committed actions")) == 1
