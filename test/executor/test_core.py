"""ExecutorCore: the executor node's logic without ROS (limits, arming, live changes, URDF)."""

from __future__ import annotations

import numpy as np

from vla_ros.executor import params as ep
from vla_ros.executor.core import ExecutorCore

MS = 1_000_000
URDF = """<robot name="r"><link name="l0"/><link name="l1"/><link name="l2"/>
  <joint name="a" type="revolute"><parent link="l0"/><child link="l1"/>
    <limit lower="-1.0" upper="{upper}" velocity="1.0" effort="1"/></joint>
  <joint name="b" type="revolute"><parent link="l1"/><child link="l2"/>
    <limit lower="-1.0" upper="1.0" velocity="1.0" effort="1"/></joint>
</robot>"""


def _core(**params) -> ExecutorCore:
    values = {s.name: s.default for s in ep.SPECS}
    values.update({"joint_names": ["a", "b"], "control_rate_hz": 100.0}, **params)
    core = ExecutorCore(values)
    core.adopt(("a", "b"))
    return core


def _armed_at(core: ExecutorCore, q) -> None:
    core.update_state(0, ["a", "b"], q)
    core.add_chunk(stamp_ns=0, dt_ns=100 * MS, joint_names=["a", "b"], actions=np.tile(q, (20, 1)))
    assert core.arm(0)[0]
    assert np.allclose(core.tick(0).command.positions, q)


def test_a_rejected_change_applies_nothing():
    core = _core(position_lower=[-1.0], position_upper=[1.0], max_velocity=[1.0], speed_scale=0.5)
    _armed_at(core, [0.9, 0.0])
    # speed_scale is fine, the limit is not: neither is applied (validate first, then apply)
    res = core.apply_params({"speed_scale": 1.0, "position_upper": [0.5]})
    assert not res.accepted and "current command of joint 'a' at 0.9 outside [-1, 0.5]" in res.reason
    assert core.values["speed_scale"] == 0.5 and core.controller.filter.speed_scale == 0.5
    assert core.controller.limits.upper.tolist() == [1.0, 1.0]
    assert core.apply_params({"speed_scale": 1.0}).accepted and core.controller.filter.speed_scale == 1.0


def test_read_only_and_out_of_range_values_are_rejected_with_the_reason():
    core = _core(allow_unlimited=True)
    assert core.apply_params({"control_rate_hz": 50.0}).reason.startswith("control_rate_hz cannot change")
    assert not core.apply_params({"speed_scale": 1.5}).accepted


def test_arming_needs_complete_limits_and_a_urdf_under_the_command_disarms():
    core = _core()
    core.update_state(0, ["a", "b"], [0.9, 0.0])
    ok, msg = core.arm(0)
    assert not ok and "no finite position limits for ['a', 'b']" in msg
    reports = core.apply_urdf(URDF.format(upper="1.0"), "robot_description")
    assert reports[-1].text.startswith("URDF from robot_description: 2 joints")
    _armed_at(core, [0.9, 0.0])
    reports = core.apply_urdf(URDF.format(upper="0.5"), "robot_description")
    assert not core.armed
    assert any(r.level == "error" and "DISARMED" in r.text for r in reports)
    assert core.controller.limits.upper.tolist() == [0.5, 1.0]
    bad = core.apply_urdf("<robot", "robot_description")
    assert bad[0].cause == "robot_description:urdf"
