"""The per-joint limits map on a real rclpy executor_node: declared per joint with descriptors,
read from a parameter file, live-settable; the deprecated arrays warn once; both forms refuse."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from node_rigs import ros_args_context  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

YAML = """/**/executor_node:
  ros__parameters:
    joint_names: [a, b]
    limits:
      a: {lower: -1.0, upper: 1.0, velocity: 0.5}
      b: {lower: -2.0, upper: 2.0, velocity: 0.75, acceleration: 3.0}
"""


def test_the_map_from_a_parameter_file_is_declared_per_joint_and_live(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    from vla_ros.nodes.executor_node import ExecutorNode

    f = tmp_path / "limits.yaml"
    f.write_text(YAML)
    ctx = ros_args_context(["--params-file", str(f)])
    node = ExecutorNode(context=ctx)
    try:
        limits = node.controller.limits
        assert limits.lower.tolist() == [-1.0, -2.0] and limits.upper.tolist() == [1.0, 2.0]
        assert limits.max_velocity.tolist() == [0.5, 0.75]
        assert limits.max_acceleration.tolist() == [math.inf, 3.0]
        assert "[WARN]" not in capfd.readouterr().err  # no unknown key, no deprecation
        # every field of every joint_names joint is declared (unset ones without a value)
        names = set(node.list_parameters(["limits"], 0).names)
        assert names == {
            f"limits.{j}.{f}" for j in "ab" for f in ("lower", "upper", "velocity", "acceleration")
        }
        assert node.values["limits.a.acceleration"] is None  # declared, typed, without a value
        assert node.describe_parameters(["limits.a.acceleration"])[0].type == Parameter.Type.DOUBLE.value
        desc = node.describe_parameters(["limits.a.velocity"])[0]
        assert desc.floating_point_range[0].from_value == 0.0
        assert desc.floating_point_range[0].to_value == math.inf
        assert "Unit: rad or m/s." in desc.description and not desc.read_only
        # live, through the core: applied when valid, refused with the reason otherwise
        res = node.set_parameters([Parameter("limits.a.velocity", value=0.25)])[0]
        assert res.successful and node.controller.limits.max_velocity.tolist() == [0.25, 0.75]
        res = node.set_parameters([Parameter("limits.a.velocity", value=-1.0)])[0]
        assert not res.successful and node.controller.limits.max_velocity.tolist() == [0.25, 0.75]
        res = node.set_parameters([Parameter("max_velocity", value=[1.0])])[0]
        assert not res.successful and "['max_velocity'] (deprecated) and" in res.reason
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_the_deprecated_arrays_give_the_same_limits_with_one_warning(capfd: pytest.CaptureFixture) -> None:
    from vla_ros.nodes.executor_node import ExecutorNode

    ctx = ros_args_context([])
    overrides = [
        Parameter("joint_names", value=["a", "b"]),
        Parameter("position_lower", value=[-1.0, -2.0]),
        Parameter("position_upper", value=[1.0, 2.0]),
        Parameter("max_velocity", value=[0.5, 0.75]),
    ]
    node = ExecutorNode(context=ctx, parameter_overrides=overrides)
    try:
        limits = node.controller.limits
        assert limits.lower.tolist() == [-1.0, -2.0] and limits.max_velocity.tolist() == [0.5, 0.75]
        lines = [x for x in capfd.readouterr().err.splitlines() if "deprecated parameters" in x]
        assert len(lines) == 1 and lines[0].startswith("[WARN]")
        assert "position_lower -> limits.<joint>.lower" in lines[0]
        assert "max_velocity -> limits.<joint>.velocity" in lines[0]
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def test_a_file_with_both_forms_refuses_to_start_naming_both(tmp_path: Path) -> None:
    from vla_ros.control.controller import ConfigError
    from vla_ros.nodes.executor_node import ExecutorNode

    f = tmp_path / "both.yaml"
    f.write_text(YAML + "    max_velocity: [1.0]\n")
    ctx = ros_args_context(["--params-file", str(f)])
    try:
        with pytest.raises(ConfigError) as err:
            ExecutorNode(context=ctx)
        text = str(err.value)
        assert "['max_velocity'] (deprecated) and ['limits.a.lower'," in text, text
        assert "keep only the limits.<joint>.velocity form" in text
    finally:
        rclpy.try_shutdown(context=ctx)
