"""config/executor.yaml: every key is a declared parameter with a valid value, and the node
starts from it (real rclpy, so the YAML types must match the declared parameter types)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CONFIG = Path(__file__).resolve().parents[2] / "config" / "executor.yaml"


def _params() -> dict:
    return yaml.safe_load(CONFIG.read_text())["executor_node"]["ros__parameters"]


def test_yaml_keys_are_declared_and_valid():
    from vla_ros.executor.params import SPEC_BY_NAME, check_value

    params = _params()
    unknown = sorted(set(params) - set(SPEC_BY_NAME))
    assert not unknown, f"config/executor.yaml has undeclared parameters {unknown}"
    for name, value in params.items():
        spec = SPEC_BY_NAME[name]
        assert check_value(spec, value) is None
        if spec.default is not None:
            assert type(value) is type(spec.default), f"{name}: YAML type {type(value)}"
    assert params["armed_on_start"] is False  # documented hardware-safe default
    assert params["allow_unlimited"] is False  # limits are required on a robot


def test_shipped_robot_yamls_require_limits_before_arming():
    """executor.yaml and vla.yaml's executor section ship without limits and without
    allow_unlimited, so the executor refuses to arm until the user fills the limits in."""
    from vla_ros.control.safety import JointLimits, arming_refusal
    from vla_ros.executor.params import joint_limits, urdf_limits

    vla = yaml.safe_load((CONFIG.parent / "vla.yaml").read_text())["/**/executor_node"]["ros__parameters"]
    for params in (_params(), vla):
        assert params["allow_unlimited"] is False and params["robot_description"] == ""
        assert not {"position_lower", "position_upper", "max_velocity"} & set(params)
        limits = joint_limits(params, ("a", "b"), urdf_limits(params))
        assert isinstance(limits, JointLimits)
        assert "refusing to arm" in (arming_refusal(limits, params["allow_unlimited"]) or "")


@pytest.mark.ros
def test_node_starts_from_yaml(ros):
    from rclpy.parameter import Parameter

    from vla_ros.nodes.executor_node import ExecutorNode

    overrides = [Parameter(k, value=v) for k, v in _params().items()]
    overrides.append(Parameter("joint_names", value=["a", "b"]))
    node = ros.add_node(ExecutorNode("executor_node", context=ros.context, parameter_overrides=overrides))
    assert not node.armed
    assert node.controller.limits.max_jump.tolist() == [0.5, 0.5]
    assert node.controller.limits.missing() == (["a", "b"], ["a", "b"])  # fill in before arming
    assert node.get_parameter("mode").value == "temporal_ensemble"


@pytest.mark.ros
def test_params_file_through_rcl():
    """The YAML as ROS itself reads it (rcl's parser: `.inf`, arrays, types)."""
    import rclpy
    from rclpy.context import Context

    from vla_ros.nodes.executor_node import ExecutorNode

    ctx = Context()
    rclpy.init(
        args=["--ros-args", "--params-file", str(CONFIG), "-p", "joint_names:=[a, b, c]"],
        context=ctx,
    )
    try:
        node = ExecutorNode(context=ctx)
        assert node.get_name() == "executor_node"
        assert node.controller.config.joint_names == ("a", "b", "c")
        assert node.controller.config.period_ns == 10_000_000
        assert node.controller.limits.max_acceleration.tolist() == [float("inf")] * 3
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
