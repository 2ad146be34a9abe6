"""A real executor_node handed the URDFs users hand over (real rclpy; /rosout read back)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from node_rigs import log_lines, rosout_qos  # noqa: E402
from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from support.urdf_samples import SO101_LIMITS, SO101_NAMES, UR_XACRO, VX_ARM, so101, vx300s  # noqa: E402

# /rosout keeps its history for late joiners: the constructor's log lines are read too
ROSOUT_QOS = rosout_qos()


def _executor(ros, name, names, urdf):
    from vla_ros.nodes.executor_node import ExecutorNode

    params = {
        "joint_names": list(names),
        "armed_on_start": True,
        "robot_description": urdf,
        "robot_description_topic": "",
    }
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    return ros.add_node(ExecutorNode(name, context=ros.context, parameter_overrides=overrides))


def test_unexpanded_xacro_parameter_is_a_config_error(ros):
    from vla_ros.control.controller import ConfigError

    with pytest.raises(
        ConfigError, match="robot_description: robot_description is unexpanded xacro: run xacro"
    ):
        _executor(ros, "exec_xacro", ["shoulder_pan_joint"], UR_XACRO)


def test_degrees_warned_once_and_unprefixed_names_refused_naming_both_lists(ros):
    logs = ros.subscribe("/rosout", Log, qos=ROSOUT_QOS)
    degrees = {n: (-180, 180) for n in SO101_LIMITS}
    node = _executor(ros, "exec_degrees", SO101_NAMES, so101(degrees))
    assert node.armed  # the limits are finite: only a warning
    assert ros.wait_until(lambda: log_lines(logs, node, "degrees?", Log.WARN))
    (line,) = log_lines(logs, node, "degrees?", Log.WARN)
    assert line.startswith("robot_description: revolute limits beyond ±2π rad")

    vx = _executor(ros, "exec_vx_prefix", VX_ARM, vx300s(prefixes=("left_",)))
    assert not vx.armed
    assert ros.wait_until(lambda: log_lines(logs, vx, "armed_on_start ignored", Log.ERROR))
    (refusal,) = log_lines(logs, vx, "armed_on_start ignored", Log.ERROR)
    assert f"joint_names {list(VX_ARM)} are not in the URDF <robot name='vx300s'>" in refusal
    assert "the URDF's names carry the prefix 'left_'" in refusal
