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
    takes over; before, A's commands; from 300 ms on, B's own samples, bit for bit."""
    out, faults, ctl = _run("rtc", B, arrive_ms=250)
    assert faults == [] and ctl.rtc_mismatches == 0
    for t in range(0, 300, 10):
        assert out[t] == _a_at(t), t
    for t in range(300, 601, 10):
        assert out[t] == _b_at(t), t
    steps = np.diff([out[t] for t in range(0, 601, 10)])
    assert steps.max() == pytest.approx(0.005, abs=1e-12)  # B's own slope: no seam at the switch
    assert steps.min() == pytest.approx(0.001, abs=1e-12)  # A's


def test_rtc_bridges_when_the_committed_prefix_is_already_past():
    """B arrives at 350 ms (latency 250 ms > (d-1) x dt): its committed actions (<= 300 ms) are
    all in the past. rtc takes over at the next tick (360 ms) from the committed value there and
    reaches B's action 3 (0.08) at 400 ms in a straight line; latest jumps to B's sample."""
    out, faults, _ = _run("rtc", B, arrive_ms=350)
    assert faults == []
    assert out[350] == pytest.approx(0.035, abs=1e-15)
    assert out[360] == pytest.approx(0.036, abs=1e-15)  # A's value: no seam
    for t in (370, 380, 390):
        assert out[t] == pytest.approx(0.036 + (t - 360) / 40 * (0.08 - 0.036), abs=1e-15), t
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
