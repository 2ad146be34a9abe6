"""The simulated arm's servo dynamics and command checks."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.sim.render import chain_points, default_link_lengths, render
from vla_ros.sim.robot import SimArm, SimArmConfig, SimCommandError

MS = 1_000_000


def test_tracks_a_target_with_first_order_lag():
    arm = SimArm(
        SimArmConfig(
            joint_names=("a",), lower=(-1.0,), upper=(1.0,), max_velocity=(100.0,), initial=(0.0,), tau=0.1
        )
    )
    arm.command(["a"], [0.5])
    arm.step(100 * MS)  # one time constant: 1 - e^-1 of the way
    assert arm.position[0] == pytest.approx(0.5 * (1 - np.exp(-1)), rel=1e-12)
    for _ in range(100):
        arm.step(10 * MS)
    assert arm.position[0] == pytest.approx(0.5, abs=1e-4)


def test_velocity_and_position_limits_hold():
    arm = SimArm(
        SimArmConfig(
            joint_names=("a", "b"),
            lower=(-1.0, -1.0),
            upper=(1.0, 1.0),
            max_velocity=(0.5, 2.0),
            initial=(0.0, 0.0),
            tau=0.01,
        )
    )
    arm.command(["a", "b"], [10.0, -10.0])  # clamped to the limits
    np.testing.assert_array_equal(arm.target, [1.0, -1.0])
    prev = arm.position.copy()
    for _ in range(300):
        arm.step(10 * MS)
        step = np.abs(arm.position - prev)
        assert np.all(step <= np.array([0.5, 2.0]) * 0.01 + 1e-12)
        assert np.all(arm.position <= 1.0) and np.all(arm.position >= -1.0)
        prev = arm.position.copy()
    np.testing.assert_allclose(arm.position, [1.0, -1.0], atol=1e-6)


@pytest.mark.parametrize(
    ("names", "values", "needle"),
    [
        (["joint_1", "elbow"], [0.0, 0.0], "unknown joints ['elbow']"),
        (["joint_1"], [0.0, 1.0], "1 names but 2 positions"),
        (["joint_1"], [float("nan")], "non-finite"),
    ],
)
def test_bad_commands_are_refused_and_change_nothing(names, values, needle):
    arm = SimArm()
    before = arm.target.copy()
    with pytest.raises(SimCommandError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        arm.command(names, values)
    np.testing.assert_array_equal(arm.target, before)


def test_command_array_needs_one_value_per_joint():
    arm = SimArm()
    with pytest.raises(SimCommandError, match="3 values for 6 joints"):
        arm.command_array([0.0, 0.0, 0.0])


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"SimArmConfig\.upper has 1 values for 2 joints"):
        SimArmConfig(
            joint_names=("a", "b"),
            lower=(0.0, 0.0),
            upper=(1.0,),
            max_velocity=(1.0, 1.0),
            initial=(0.0, 0.0),
        )


def test_render_shows_the_arm_where_kinematics_puts_it():
    q = np.array([0.3, -0.5, 0.2, 0.0, 0.1, 0.0])
    img = render(q, 120, 160, camera="front", target=None)
    assert img.shape == (120, 160, 3) and img.dtype == np.uint8
    tip = chain_points(q, default_link_lengths(6))[-1]
    scale = 0.8 * 120
    tx, ty = round(80 + tip[0] * scale), round(60 - (tip[1] - 0.5) * scale)
    patch = img[max(ty - 2, 0) : ty + 3, max(tx - 2, 0) : tx + 3].astype(int)
    assert np.abs(patch - np.array([40, 44, 52])).sum(axis=-1).max() > 60  # something drawn at the tip
    moved = render(q + 0.4, 120, 160, camera="front", target=None)
    assert np.any(moved != img)
    np.testing.assert_array_equal(render(q, 120, 160, camera="front", target=None), img)  # deterministic
