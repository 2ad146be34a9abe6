"""The executor's ``rtc`` chunk mode and expired chunks, with the right values (integer ns).

Scenario throughout: control period 10 ms, chunk dt 100 ms. Chunk A (stamp 0) ramps
``a_i = 0.01 i`` (0.1 rad/s). Chunk B is computed from an observation at 100 ms with an
inference delay of d = 3 chunk steps: its first 3 actions (100, 200, 300 ms) continue what the
executor committed (A's values there: 0.01, 0.02, 0.03), then it ramps 5x faster.
"""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.control.chunk import ChunkError
from vla_ros.control.controller import ChunkController, ControllerConfig
from vla_ros.control.safety import JointLimits

MS = 1_000_000
PERIOD = 10 * MS
DT = 100 * MS
A = 0.01 * np.arange(20)
B = np.concatenate([[0.01, 0.02, 0.03], 0.03 + 0.05 * np.arange(1, 18)])


def _ctl(mode: str, **kw) -> ChunkController:
    cfg = ControllerConfig(joint_names=("a",), period_ns=PERIOD, mode=mode, state_timeout_ns=0, **kw)
    ctl = ChunkController(cfg, JointLimits.build(["a"]), armed=True)
    ctl.update_state(0, ["a"], [0.0])
    return ctl


def _run(mode: str, b: np.ndarray, arrive_ms: int, until_ms: int = 600, **kw):
    """Ticks every 10 ms from 0; chunk A at 0, chunk B (stamp 100 ms) added after the tick at
    ``arrive_ms``. Returns ({tick ms: command}, B's add_chunk faults)."""
    ctl = _ctl(mode, **kw)
    ctl.add_chunk(stamp_ns=0, dt_ns=DT, joint_names=["a"], actions=A)
    out, faults = {}, []
    for k in range(until_ms // 10 + 1):
        t = k * PERIOD
        out[k * 10] = float(ctl.tick(t).positions[0])
        if k * 10 == arrive_ms:
            _, faults = ctl.add_chunk(stamp_ns=100 * MS, dt_ns=DT, joint_names=["a"], actions=b)
    return out, faults, ctl


def _b_at(t_ms: int) -> float:
    i, rem = divmod(t_ms - 100, 100)
    return float(B[i] + (rem * MS / DT) * (B[i + 1] - B[i])) if rem else float(B[i])


def _a_at(t_ms: int) -> float:
    i, rem = divmod(t_ms, 100)
    return float(A[i] + (rem * MS / DT) * (A[i + 1] - A[i])) if rem else float(A[i])


def test_rtc_takes_over_exactly_at_the_committed_boundary():
    """B arrives at 250 ms: its committed prefix ends at 300 ms (action 2), which is where it
    takes over; before, A's commands; from 300 ms to B's next action point (400 ms) the
    hand-over from (0.03 rad, A's 0.1 rad/s) to (0.08 rad, B's 0.5 rad/s); from 400 ms on, B's
    own samples, bit for bit (the default ``rtc_handover_steps`` 1)."""
    out, faults, ctl = _run("rtc", B, arrive_ms=250)
    assert faults == [] and ctl.rtc_mismatches == 0
    for t in range(0, 300, 10):
        assert out[t] == _a_at(t), t
    for t in range(300, 400, 10):
        assert out[t] == pytest.approx(_hermite(t, 300, 0.03, 0.1, 400, 0.08, 0.5), abs=1e-12), t
    for t in range(400, 601, 10):
        assert out[t] == _b_at(t), t
    steps = np.diff([out[t] for t in range(0, 601, 10)])
    assert steps.min() == pytest.approx(0.001, abs=1e-12)  # A's
    # the speed changes gradually: the largest change of step is the Hermite's at its start,
    # 0.00136 rad (the chunk's own switch from 0.001 to 0.005 rad per tick would be 0.004)
    assert np.abs(np.diff(steps)).max() == pytest.approx(0.00136, abs=1e-12)


def test_rtc_hand_over_spans_rtc_handover_steps_action_points():
    """``rtc_handover_steps`` 2 (default 1): B arriving at 250 ms takes over at 300 ms and
    reaches its action 4 (0.13 rad) at 500 ms, on the Hermite segment from (0.03 rad, 0.1 rad/s)
    to (0.13 rad, 0.5 rad/s); from 500 ms on, B's own samples. 0 is refused."""
    assert ControllerConfig(joint_names=("a",), period_ns=PERIOD).rtc_handover_steps == 1
    out, faults, _ = _run("rtc", B, arrive_ms=250, rtc_handover_steps=2)
    assert faults == []
    for t in range(300, 500, 10):
        assert out[t] == pytest.approx(_hermite(t, 300, 0.03, 0.1, 500, 0.13, 0.5), abs=1e-12), t
    for t in range(500, 601, 10):
        assert out[t] == _b_at(t), t
    with pytest.raises(Exception, match="rtc_handover_steps must be >= 1 chunk step, got 0"):
        ControllerConfig(joint_names=("a",), period_ns=PERIOD, mode="rtc", rtc_handover_steps=0)


def _hermite(t: int, t0: int, p0: float, v0: float, t1: int, p1: float, v1: float) -> float:
    """Cubic Hermite from (p0, v0 rad/s) at ``t0`` ms to (p1, v1) at ``t1`` ms, at ``t`` ms."""
    h, u = (t1 - t0) / 1000, (t - t0) / (t1 - t0)
    return (
        (2 * u**3 - 3 * u**2 + 1) * p0
        + (u**3 - 2 * u**2 + u) * h * v0
        + (-2 * u**3 + 3 * u**2) * p1
        + (u**3 - u**2) * h * v1
    )


def test_rtc_bridges_when_the_committed_prefix_is_already_past():
    """B arrives at 350 ms (latency 250 ms > (d-1) x dt): its committed actions (<= 300 ms) are
    all in the past. rtc takes over at the next tick (360 ms) from the committed value there and
    reaches B's action 3 (0.08) at 400 ms on the cubic Hermite segment from (0.036 rad, A's
    0.1 rad/s) to (0.08 rad, B's 0.5 rad/s); latest jumps to B's sample."""
    out, faults, _ = _run("rtc", B, arrive_ms=350)
    assert faults == []
    assert out[350] == pytest.approx(0.035, abs=1e-15)
    assert out[360] == pytest.approx(0.036, abs=1e-15)  # A's value: no seam
    for t in (370, 380, 390):
        assert out[t] == pytest.approx(_hermite(t, 360, 0.036, 0.1, 400, 0.08, 0.5), abs=1e-12), t
    for t in range(400, 601, 10):
        assert out[t] == _b_at(t), t
    latest, _, _ = _run("latest", B, arrive_ms=350)
    assert latest[360] == pytest.approx(0.06, abs=1e-15)  # 0.03 + 0.6 x 0.05: a 0.025 jump
    assert latest[360] - latest[350] == pytest.approx(0.025, abs=1e-15)


def test_rtc_prefix_mismatch_is_reported_and_cross_faded():
    """A B whose prefix is 0.5 does not continue what was committed: its action due last before
    the next tick (200 ms) is 0.48 from A's 0.02: a rtc_prefix_mismatch fault, and a cross-fade
    over blend_steps=3 ticks from 260 ms."""
    bad = B.copy()
    bad[:3] = 0.5
    out, faults, ctl = _run("rtc", bad, arrive_ms=250, blend_steps=3)
    assert [f.cause for f in faults] == ["rtc_prefix_mismatch"]
    assert "= 0.48 >" in faults[0].message and "rtc_tolerance 0.01" in faults[0].message
    assert ctl.rtc_mismatches == 1
    b = {t: float(np.interp(t, 100 + 100 * np.arange(20), bad)) for t in (260, 270, 280, 290)}
    for step, t in enumerate((260, 270, 280)):
        w = (step + 1) / 4
        assert out[t] == pytest.approx((1 - w) * _a_at(t) + w * b[t], abs=1e-12), t
    assert out[290] == pytest.approx(b[290], abs=1e-12)


def test_rtc_first_chunk_takes_over_at_once():
    ctl = _ctl("rtc")
    ctl.tick(0)
    ctl.add_chunk(stamp_ns=0, dt_ns=DT, joint_names=["a"], actions=A)
    assert ctl.tick(PERIOD).positions[0] == pytest.approx(0.001, abs=1e-15)


@pytest.mark.parametrize("mode", ["latest", "rtc", "temporal_ensemble", "blend"])
def test_chunks_with_every_action_in_the_past_are_dropped_and_counted(mode):
    """Executor at 1000 ms. A chunk whose last action is due at 1000 ms is expired (refused,
    counted); one whose last is due 1 ns later is accepted; a late chunk is used at the current
    time's index, never replayed from its first action."""
    ctl = _ctl(mode)
    ctl.tick(1000 * MS)
    with pytest.raises(ChunkError) as info:
        ctl.add_chunk(stamp_ns=810 * MS, dt_ns=PERIOD, joint_names=["a"], actions=np.arange(20.0))
    assert info.value.cause == "chunk_stale" and "all its actions in the past" in str(info.value)
    assert ctl.expired_chunks == 1
    ctl.add_chunk(stamp_ns=810 * MS + 1, dt_ns=PERIOD, joint_names=["a"], actions=np.arange(20.0))
    assert ctl.expired_chunks == 1
    ctl = _ctl(mode)
    ctl.tick(1000 * MS)
    ctl.add_chunk(stamp_ns=900 * MS, dt_ns=PERIOD, joint_names=["a"], actions=np.arange(20.0) / 100)
    ctl.update_state(1010 * MS, ["a"], [0.11])
    assert ctl.tick(1010 * MS).positions[0] == pytest.approx(0.11, abs=1e-15)  # index 11, not 0


def test_committed_prefix_samples_the_plan_on_the_chunk_grid():
    """The plan of A (0.1 rad/s ramp) at 130, 230, 330 ms: the committed prefix for d = 3."""
    from vla_ros.control.rtc import committed_prefix

    ctl = _ctl("rtc")
    ctl.add_chunk(stamp_ns=0, dt_ns=DT, joint_names=["a"], actions=A)
    got = committed_prefix(ctl.plan, 130 * MS, DT, 3)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[:, 0], [0.013, 0.023, 0.033], rtol=0, atol=1e-9)
    assert committed_prefix(ctl.plan, 1800 * MS, DT, 3) is None  # 2.0 s is past A's last action
    assert committed_prefix(ctl.plan, 0, DT, 0) is None


def test_rtc_hand_over_is_continuous_in_velocity_and_hits_both_ends():
    """The hand-over (rtc.bridged_sample with the committed velocity) starts at the committed
    position with the committed velocity and ends at the chunk's next action point with the
    chunk's velocity after it: one-sided differences over 100 ns agree within 1e-5 rad/s
    (the segment's acceleration, ~30 rad/s^2, moves a 100 ns difference by ~1.5e-6)."""
    from vla_ros.control.chunk import Chunk
    from vla_ros.control.rtc import Takeover, bridged_sample

    chunk = Chunk(
        stamp_ns=100 * MS, start_ns=100 * MS, dt_ns=DT, joint_names=("a",), actions=B.reshape(-1, 1)
    )
    p0, v0 = np.array([0.036]), np.array([0.1])  # committed: 0.036 rad moving at 0.1 rad/s
    take = Takeover(360 * MS, p0, False, 3, 0.0, v0)
    s_j, eps = 400 * MS, 100
    assert bridged_sample(chunk, take, 360 * MS)[0] == pytest.approx(0.036, abs=1e-15)
    assert bridged_sample(chunk, take, s_j)[0] == B[3]  # the chunk's own action point, exactly
    start_v = (bridged_sample(chunk, take, 360 * MS + eps) - p0)[0] / (eps * 1e-9)
    assert start_v == pytest.approx(0.1, abs=1e-5)
    end_v = (B[3] - bridged_sample(chunk, take, s_j - eps)[0]) / (eps * 1e-9)
    after_v = (chunk.sample(s_j + eps)[0] - B[3]) / (eps * 1e-9)
    assert after_v == pytest.approx(0.5, abs=1e-9)
    assert end_v == pytest.approx(after_v, abs=1e-5)
    linear = Takeover(360 * MS, p0, False, 3, 0.0)  # no velocity: the straight line
    assert bridged_sample(chunk, linear, 380 * MS)[0] == pytest.approx(0.058, abs=1e-15)
