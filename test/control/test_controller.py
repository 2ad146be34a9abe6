"""ChunkController: ACT equivalence, modes, watchdog, e-stop, faults, delta, clock jumps."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_ros.control.chunk import ChunkError
from vla_ros.control.controller import ChunkController, ConfigError, ControllerConfig
from vla_ros.control.safety import JointLimits

P = 5_000_000  # 5 ms control period
NAMES = ("a", "b")


def make(mode="temporal_ensemble", limits=None, names=NAMES, **kw):
    cfg = ControllerConfig(joint_names=names, period_ns=P, mode=mode, **kw)
    ctl = ChunkController(cfg, limits or JointLimits.build(names), armed=True)
    ctl.update_state(0, names, [0.0] * len(names))
    return ctl


def act_reference(chunks: list[np.ndarray], m: float) -> list[np.ndarray]:
    """ACT's online temporal ensembling: a [T, T+k, D] table of predictions, one chunk per step;
    at step t average column t over the steps that predicted it, weights exp(-m*i), i=0 oldest."""
    t_max, k, d = len(chunks), chunks[0].shape[0], chunks[0].shape[1]
    table = np.zeros((t_max, t_max + k, d))
    filled = np.zeros((t_max, t_max + k), dtype=bool)
    out = []
    for t, chunk in enumerate(chunks):
        table[t, t : t + k] = chunk
        filled[t, t : t + k] = True
        preds = table[filled[:, t], t]
        w = np.exp(-m * np.arange(len(preds)))
        w = w / w.sum()
        out.append((preds * w[:, None]).sum(axis=0))
    return out


@pytest.mark.parametrize("m", [0.0, 0.01, 0.5])
def test_temporal_ensemble_equals_act_exactly(m):
    rng = np.random.default_rng(1)
    horizon, steps = 8, 30
    chunks = [rng.normal(size=(horizon, 2)) for _ in range(steps)]
    ctl = make(ensemble_coefficient=m, state_timeout_ns=0)
    got = []
    for t, chunk in enumerate(chunks):
        ctl.add_chunk(stamp_ns=t * P, dt_ns=P, joint_names=NAMES, actions=chunk.ravel())
        cmd = ctl.tick(t * P)
        assert cmd is not None and not cmd.holding
        assert cmd.n_live == min(t + 1, horizon)
        got.append(cmd.positions)
    for g, r in zip(got, act_reference(chunks, m)):
        assert g.tobytes() == r.tobytes()


def test_latest_mode_uses_newest_chunk_and_interpolates():
    ctl = make("latest")
    ctl.add_chunk(stamp_ns=0, dt_ns=4 * P, joint_names=NAMES, actions=[0, 0, 4, 8, 8, 16])
    ctl.add_chunk(stamp_ns=P, dt_ns=4 * P, joint_names=NAMES, actions=[1, 1, 1, 1])
    np.testing.assert_array_equal(ctl.tick(0).positions, [0, 0])  # only the first is live at 0
    np.testing.assert_array_equal(ctl.tick(P).positions, [1, 1])
    ctl2 = make("latest")
    ctl2.add_chunk(stamp_ns=0, dt_ns=4 * P, joint_names=NAMES, actions=[0, 0, 4, 8])
    np.testing.assert_allclose(ctl2.tick(P).positions, [1, 2])  # 1/4 of the way to [4, 8]


def test_blend_cross_fades_over_k_steps():
    ctl = make("blend", blend_steps=3)
    ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=NAMES, actions=np.zeros((20, 2)).ravel())
    assert ctl.tick(0).positions.tolist() == [0, 0]
    ctl.add_chunk(stamp_ns=P, dt_ns=P, joint_names=NAMES, actions=np.ones((20, 2)).ravel())
    seq = [ctl.tick(t * P).positions[0] for t in range(1, 7)]
    np.testing.assert_allclose(seq, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0])


def test_watchdog_holds_within_one_period_after_last_chunk_ends():
    ctl = make("latest")
    ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=NAMES, actions=[[0.1, 0.2], [0.3, 0.4]])
    ctl.tick(0)
    c1 = ctl.tick(P)
    assert not c1.holding
    c2 = ctl.tick(2 * P)  # the chunk covers [0, 2P): this first uncovered tick holds
    assert c2.holding and [f.cause for f in c2.faults] == ["no_live_chunk"]
    np.testing.assert_array_equal(c2.positions, c1.positions)
    np.testing.assert_array_equal(c2.velocities, [0, 0])


def test_max_chunk_age_ends_chunk_early():
    ctl = make("latest", max_chunk_age_ns=2 * P)
    ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=NAMES, actions=np.ones((100, 2)).ravel())
    assert not ctl.tick(2 * P).holding
    assert ctl.tick(3 * P).holding


def test_estop_latches_until_rearmed_with_input_released():
    ctl = make("latest")
    ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=NAMES, actions=np.ones((100, 2)).ravel() * 0.5)
    ctl.tick(0)
    ctl.set_estop(True)
    assert not ctl.armed
    ctl.set_estop(False)
    cmd = ctl.tick(P)
    assert cmd.holding and cmd.faults[0].cause == "estop"
    ctl.set_estop(True)
    ok, msg = ctl.arm()
    assert not ok and "e-stop input is still active" in msg
    ctl.set_estop(False)
    ok, _ = ctl.arm()
    assert ok and ctl.armed and not ctl.tick(2 * P).holding


def test_missing_joint_state_holds_with_one_fault_per_joint():
    cfg = ControllerConfig(joint_names=("a", "b", "c"), period_ns=P)
    ctl = ChunkController(cfg, JointLimits.build(cfg.joint_names))
    ctl.update_state(0, ["a", "b", "extra"], [0.0, 0.0, 9.0])
    ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=cfg.joint_names, actions=np.ones((10, 3)).ravel())
    ctl2 = ChunkController(cfg, JointLimits.build(cfg.joint_names))
    ctl2.tick(0)
    assert ctl2.tick(P) is None
    assert ctl.tick(0) is None  # nothing to hold at yet: publish nothing
    ctl.update_state(0, ["c"], [0.0])  # partial messages merge
    assert not ctl.tick(P).holding


def test_stale_state_holds_last_command():
    ctl = make("latest", state_timeout_ns=3 * P)
    ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=NAMES, actions=np.ones((100, 2)).ravel())
    first = ctl.tick(P)
    cmd = ctl.tick(4 * P)
    assert cmd.holding and [f.cause for f in cmd.faults] == ["state_missing:a,b"]
    np.testing.assert_array_equal(cmd.positions, first.positions)


def test_nan_and_foreign_chunks_rejected_and_do_not_move():
    ctl = make("latest")
    with pytest.raises(ChunkError) as info:
        ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=NAMES, actions=[math.nan, 0.0])
    assert info.value.cause == "chunk_nonfinite"
    with pytest.raises(ChunkError) as info:
        ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=("a", "z"), actions=[1.0, 1.0])
    assert info.value.cause == "chunk_joints"
    with pytest.raises(ChunkError) as info:
        ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=NAMES, actions=[1, 1], action_mode="vel")
    assert info.value.cause == "chunk_mode"
    cmd = ctl.tick(0)
    assert cmd.holding and cmd.positions.tolist() == [0.0, 0.0]


def test_reordered_chunk_is_mapped_by_name():
    ctl = make("latest")
    ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=("b", "a"), actions=[2.0, 1.0])
    assert ctl.tick(0).positions.tolist() == [1.0, 2.0]


def test_delta_chunk_adds_state_at_its_stamp():
    ctl = make("latest", delta_state_tolerance_ns=P)
    ctl.update_state(10 * P, NAMES, [1.0, 2.0])
    ctl.update_state(20 * P, NAMES, [5.0, 5.0])
    ctl.add_chunk(stamp_ns=10 * P, dt_ns=P, joint_names=NAMES, actions=[0.5, 0.5] * 20, action_mode="delta")
    assert ctl.tick(20 * P).positions.tolist() == [1.5, 2.5]
    with pytest.raises(ChunkError) as info:
        ctl.add_chunk(
            stamp_ns=15 * P,
            dt_ns=P,
            joint_names=NAMES,
            actions=[0.0, 0.0] * 20,
            action_mode="delta",
        )
    assert info.value.cause == "chunk_delta_no_state"


def test_clock_backwards_drops_chunks_and_holds():
    ctl = make("latest")
    ctl.add_chunk(stamp_ns=100 * P, dt_ns=P, joint_names=NAMES, actions=np.ones((50, 2)).ravel())
    ctl.update_state(100 * P, NAMES, [0.0, 0.0])
    before = ctl.tick(101 * P)
    assert not before.holding
    after = ctl.tick(10 * P)
    assert after.holding and after.faults[0].cause == "clock_backwards"
    assert len(ctl.buffer) == 0
    np.testing.assert_array_equal(after.positions, before.positions)


def test_stale_and_far_future_chunks_rejected():
    ctl = make("latest")
    ctl.tick(100 * P)
    with pytest.raises(ChunkError) as info:
        ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=NAMES, actions=np.ones((10, 2)).ravel())
    assert info.value.cause == "chunk_stale"
    with pytest.raises(ChunkError) as info:
        ctl.add_chunk(stamp_ns=100 * P + 11 * 10**9, dt_ns=P, joint_names=NAMES, actions=[1, 1])
    assert info.value.cause == "chunk_future"


def test_flood_keeps_newest_and_reports():
    ctl = make("temporal_ensemble", max_chunks=4)
    faults = []
    for s in range(50):
        _, f = ctl.add_chunk(stamp_ns=s, dt_ns=P, joint_names=NAMES, actions=[s, s] * 2)
        faults += f
    assert len(ctl.buffer) == 4 and [c.stamp_ns for c in ctl.buffer.chunks] == [46, 47, 48, 49]
    assert {f.cause for f in faults} == {"chunk_flood"}


def test_arm_resets_filter_to_measured():
    lim = JointLimits.build(NAMES, max_velocity=[1.0])
    ctl = make("latest", limits=lim)
    ctl.disarm()
    ctl.update_state(0, NAMES, [0.3, 0.3])
    ctl.filter.last_command = np.array([0.0, 0.0])
    ok, _ = ctl.arm(0)
    assert ok
    ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=NAMES, actions=[0.3, 0.3] * 4)
    assert ctl.tick(0).positions.tolist() == [0.3, 0.3]


def test_trajectory_lookahead_is_limited():
    lim = JointLimits.build(NAMES, max_velocity=[1.0])
    ctl = make("temporal_ensemble", limits=lim, trajectory_points=5)
    ramp = np.stack([np.arange(10) * 1.0, np.zeros(10)], axis=1)
    ctl.add_chunk(stamp_ns=0, dt_ns=P, joint_names=NAMES, actions=ramp.ravel())
    cmd = ctl.tick(0)
    assert [t for t, _ in cmd.trajectory] == [P * j for j in range(1, 6)]
    prev = cmd.positions
    for _, q in cmd.trajectory:
        assert np.all(np.abs(q - prev) <= 1.0 * P * 1e-9 + 1e-12)
        prev = q


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"mode": "avg"}, "mode must be one of"),
        ({"period_ns": 0}, "period_ns must be > 0"),
        ({"ensemble_coefficient": -1.0}, "ensemble_coefficient must be >= 0"),
        ({"joint_names": ()}, "joint_names is empty"),
        ({"speed_scale": 0.0}, "speed_scale"),
    ],
)
def test_bad_config(kw, msg):
    args = {"joint_names": NAMES, "period_ns": P} | kw
    with pytest.raises(ValueError, match=msg):
        ControllerConfig(**args)


def test_limits_must_match_joints():
    with pytest.raises(ConfigError, match="limits are for joints"):
        ChunkController(ControllerConfig(joint_names=NAMES, period_ns=P), JointLimits.build(["a"]))


# ---------------------------------------------------------------- property: any chunk stream
action_value = st.one_of(st.floats(-5, 5, allow_nan=False), st.sampled_from([math.nan, math.inf, 1e9, -1e9]))
chunk_event = st.tuples(
    st.integers(-20, 20),  # stamp offset from "now" in periods
    st.integers(1, 6),  # horizon
    st.integers(1, 4),  # dt in periods
    st.booleans(),  # swap joint order
    st.lists(action_value, min_size=12, max_size=12),
    st.integers(0, 3),  # ticks until the next chunk
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["temporal_ensemble", "latest", "blend", "rtc"]), st.lists(chunk_event, max_size=25))
def test_any_chunk_stream_respects_limits(mode, events):
    lim = JointLimits.build(
        NAMES, lower=[-1.0, -0.5], upper=[1.0, 0.5], max_velocity=[2.0, 1.0], max_jump=[0.2]
    )
    ctl = make(mode, limits=lim, blend_steps=2, state_timeout_ns=0)
    t, prev = 0, np.zeros(2)
    for offset, horizon, dt, swap, vals, gap in events:
        names = NAMES[::-1] if swap else NAMES
        try:
            ctl.add_chunk(
                stamp_ns=t + offset * P,
                dt_ns=dt * P,
                joint_names=names,
                actions=vals[: horizon * 2],
            )
        except ChunkError as exc:
            assert exc.cause in ("chunk_nonfinite", "chunk_stale")
        for _ in range(gap + 1):
            cmd = ctl.tick(t)
            q = cmd.positions
            assert np.all(np.isfinite(q))
            assert np.all(q >= lim.lower) and np.all(q <= lim.upper)
            assert np.all(np.abs(q - prev) <= lim.max_velocity * P * 1e-9 + 1e-12)
            prev = q
            ctl.update_state(t, NAMES, q)  # the robot tracks perfectly
            t += P
