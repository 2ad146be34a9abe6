"""Safety filter: limits as properties (hypothesis), NaN rejection, holds, parameter validation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vla_ros.control.safety import (
    JointLimits,
    LimitsError,
    SafetyFilter,
    arming_refusal,
    check_speed_scale,
)
from vla_ros.control.urdf import UrdfJointLimit

PERIOD = 5_000_000  # 200 Hz
DT = PERIOD * 1e-9
EPS = 1e-9

values = st.one_of(
    st.floats(-10, 10, allow_nan=False),
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.floats(-1e6, 1e6, allow_nan=False),
)


@st.composite
def limits_and_stream(draw):
    n = draw(st.integers(1, 3))
    lower = draw(st.lists(st.floats(-3, 0), min_size=n, max_size=n))
    width = draw(st.lists(st.floats(0.0, 3), min_size=n, max_size=n))
    vmax = draw(st.lists(st.floats(0.01, 5), min_size=n, max_size=n))
    amax = draw(st.lists(st.floats(0.1, 50), min_size=n, max_size=n))
    jump = draw(st.lists(st.floats(0.001, 1), min_size=n, max_size=n))
    lim = JointLimits.build(
        [f"j{i}" for i in range(n)],
        lower=lower,
        upper=[lo + w for lo, w in zip(lower, width)],
        max_velocity=vmax,
        max_acceleration=amax,
        max_jump=jump,
    )
    targets = draw(st.lists(st.lists(values, min_size=n, max_size=n), min_size=1, max_size=30))
    # measured state: somewhere near the limits (may lag behind the commands)
    lag = draw(st.lists(st.floats(0, 1), min_size=len(targets), max_size=len(targets)))
    return lim, targets, lag


@settings(max_examples=200, deadline=None)
@given(limits_and_stream())
def test_every_command_respects_limits(case):
    lim, targets, lag = case
    f = SafetyFilter(lim, PERIOD)
    measured = np.clip(np.zeros(len(lim.names)), lim.lower, lim.upper)
    prev = None
    for target, alpha in zip(targets, lag):
        res = f.filter(np.array(target), measured)
        q = res.positions
        assert np.all(np.isfinite(q))
        assert np.all(q >= lim.lower - EPS) and np.all(q <= lim.upper + EPS)
        if "tracking_error" in res.reasons:
            np.testing.assert_array_equal(q, prev if prev is not None else measured)
        else:
            assert np.all(np.abs(q - measured) <= lim.max_jump + EPS)
            if prev is not None:
                assert np.all(np.abs(q - prev) <= lim.max_velocity * DT + EPS)
        if not np.all(np.isfinite(target)):
            assert res.held and "nonfinite_target" in res.reasons
            if prev is not None:
                np.testing.assert_array_equal(q, prev)
        prev = q
        # the robot follows part of the way
        measured = measured + alpha * (q - measured)


@settings(max_examples=100, deadline=None)
@given(limits_and_stream())
def test_acceleration_respected_unless_reported(case):
    lim, targets, _ = case
    f = SafetyFilter(lim, PERIOD)
    prev_v = np.zeros(len(lim.names))
    measured = np.clip(np.zeros(len(lim.names)), lim.lower, lim.upper)
    for target in targets:
        res = f.filter(np.array(target), measured)
        if not res.held and "acceleration_relaxed" not in res.reasons:
            assert np.all(np.abs(res.velocities - prev_v) <= lim.max_acceleration * DT * (1 + 1e-9) + 1e-9)
        prev_v = res.velocities
        measured = res.positions


def test_unlimited_filter_is_identity_bit_exact():
    lim = JointLimits.build(["a", "b"])
    f = SafetyFilter(lim, PERIOD)
    rng = np.random.default_rng(0)
    for _ in range(20):
        target = rng.normal(size=2) * 100
        res = f.filter(target, np.zeros(2))
        assert res.positions.tobytes() == target.tobytes() and not res.reasons


def test_speed_scale_scales_velocity_limit():
    lim = JointLimits.build(["a"], max_velocity=[2.0])
    f = SafetyFilter(lim, PERIOD, speed_scale=0.5)
    res = f.filter(np.array([1.0]), np.zeros(1))
    assert res.positions[0] == pytest.approx(2.0 * 0.5 * DT)
    assert "clamped" in res.reasons
    with pytest.raises(LimitsError, match=r"speed_scale must be in \(0, 1\], got 1.5"):
        check_speed_scale(1.5)


def test_tracking_error_holds_the_previous_command():
    lim = JointLimits.build(["a"], max_jump=[0.1], max_velocity=[1.0])
    f = SafetyFilter(lim, PERIOD)
    f.reset(np.array([0.0]))
    res = f.filter(np.array([0.0]), np.array([0.5]))  # robot pushed away by 0.5 > max_jump
    assert res.held and res.reasons == ("tracking_error",)
    assert res.positions[0] == 0.0  # nothing moves: never a catch-up jump to the measured state


def test_hold_without_anything_known_returns_none():
    f = SafetyFilter(JointLimits.build(["a"]), PERIOD)
    assert f.hold(None) is None
    held = f.hold(np.array([0.3]))
    assert held.positions[0] == 0.3 and held.held


def test_limits_from_urdf_and_params_override():
    urdf = {"a": UrdfJointLimit(-1.0, 1.0, 2.0), "b": UrdfJointLimit(velocity=3.0)}
    lim = JointLimits.build(["a", "b"], urdf=urdf, upper=[0.5], max_jump=[0.2, 0.3])
    assert lim.lower.tolist() == [-1.0, -math.inf]
    assert lim.upper.tolist() == [0.5, 0.5]
    assert lim.max_velocity.tolist() == [2.0, 3.0]
    assert lim.max_jump.tolist() == [0.2, 0.3]
    assert lim.unlimited() == ["b"]


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"lower": [1.0], "upper": [0.0]}, "position_lower 1.0 > position_upper 0.0"),
        ({"max_velocity": [0.0]}, "max_velocity must be > 0"),
        ({"max_jump": [1.0, 2.0, 3.0]}, "max_jump has 3 values but there are 2 joints"),
        ({"max_acceleration": [math.nan]}, "NaN"),
    ],
)
def test_bad_limits(kw, msg):
    with pytest.raises(LimitsError, match=msg):
        JointLimits.build(["a", "b"], **kw)


def test_arming_needs_finite_position_and_velocity_limits_on_every_joint():
    names = ["a", "b"]
    full = JointLimits.build(names, lower=[-1.0], upper=[1.0], max_velocity=[0.5, 2.0])
    assert full.missing() == ([], []) and arming_refusal(full) is None
    bare = JointLimits.build(names, max_jump=[0.1])  # max_jump alone is not enough
    assert bare.missing() == (["a", "b"], ["a", "b"])
    msg = arming_refusal(bare)
    assert msg is not None and msg.startswith("refusing to arm")
    assert "no finite position limits for ['a', 'b']" in msg
    assert "no finite velocity limit for ['a', 'b']" in msg
    assert "position_lower" in msg and "max_velocity" in msg and "robot_description" in msg
    assert arming_refusal(bare, allow_unlimited=True) is None
    one_sided = JointLimits.build(names, lower=[-1.0], upper=[1.0, math.inf], max_velocity=[1.0, math.inf])
    assert one_sided.missing() == (["b"], ["b"])
    speed_only = JointLimits.build(names, lower=[-1.0], upper=[1.0], max_velocity=[1.0, math.inf])
    msg = arming_refusal(speed_only)
    assert msg is not None and "['b']" in msg and "no finite position" not in msg


def test_urdf_continuous_joint_needs_only_velocity_to_arm():
    urdf = {
        "a": UrdfJointLimit(lower=-1.0, upper=1.0, velocity=1.0),
        "wrist": UrdfJointLimit(velocity=3.0, continuous=True),
    }
    lim = JointLimits.build(["a", "wrist"], urdf=urdf)
    assert lim.continuous == ("wrist",) and lim.unlimited() == ["wrist"]
    assert lim.missing() == ([], []) and arming_refusal(lim) is None
    # a parameter giving the continuous joint one side only is a mistake, not "continuous"
    half = JointLimits.build(["a", "wrist"], lower=[-1.0], urdf=urdf)
    assert half.missing() == (["wrist"], [])
    # no velocity anywhere: refused even for a continuous joint
    slow = JointLimits.build(["wrist"], urdf={"wrist": UrdfJointLimit(continuous=True)})
    assert slow.missing() == ([], ["wrist"]) and arming_refusal(slow) is not None
    # an ordinary joint without a URDF lower/upper is not continuous
    assert JointLimits.build(["x"], urdf={"x": UrdfJointLimit(velocity=1.0)}).missing() == (["x"], [])
