"""sim_node: the simulated arm on real topics, standing in for a robot's driver and cameras.

Publishes ``joint_states`` (JointState) at ``state_rate_hz`` and ``camera/<name>/image_raw``
(rgb8 Image) at ``camera_rate_hz``; follows position commands from ``vla/joint_command``
(JointState, by name) or, with ``command_type: float64_multi_array``, a forward controller's
``commands`` topic. Bad commands are refused with one log line per cause; the arm keeps its target.

The task's target marker (drawn in the camera images, the reach task's goal) is the live parameter
``target`` ``[x, y]`` (the arm's plane, arm length 1); with each camera frame the node publishes it
and the fingertip on ``sim/target`` and ``sim/fingertip`` (geometry_msgs/PointStamped, frame
``sim_plane``) so recordings can plot the task (``vla-ros demo`` moves the target between
episodes). Dynamics and rendering live in :mod:`vla_ros.sim`; this node only moves data.
"""

from __future__ import annotations

import math
import time

import numpy as np
from geometry_msgs.msg import PointStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

from vla_ros.nodes.params import declare_parameters
from vla_ros.nodes.run import run_node
from vla_ros.sim.params import SPECS
from vla_ros.sim.render import render
from vla_ros.sim.robot import SimArm, SimArmConfig, SimCommandError
from vla_ros.sim.task import fingertip

#: the frame of sim/target and sim/fingertip: the arm's plane, base at the origin, y up
PLANE_FRAME = "sim_plane"


def target_problem(value: object) -> str | None:
    """Why ``value`` cannot be the ``target`` parameter (None when it can): two finite numbers."""
    try:
        xy = [float(v) for v in value]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return f"target must be a list of two numbers [x, y], got {value!r}"
    if len(xy) != 2 or not all(math.isfinite(v) for v in xy):
        return f"target must be two finite numbers [x, y] (the arm's plane, arm length 1), got {xy}"
    return None


class SimNode(Node):
    """Thin rclpy adapter around :class:`vla_ros.sim.robot.SimArm`."""

    def __init__(
        self, *, context=None, parameter_overrides=None, node_name: str = "sim_node", **node_kwargs
    ) -> None:
        super().__init__(node_name, context=context, parameter_overrides=parameter_overrides, **node_kwargs)
        p = declare_parameters(self, SPECS)
        self.arm = SimArm(
            SimArmConfig(
                joint_names=tuple(p["joint_names"]),
                lower=tuple(p["lower_limits"]),
                upper=tuple(p["upper_limits"]),
                max_velocity=tuple(p["max_velocity"]),
                initial=tuple(p["initial_positions"]),
                tau=p["time_constant"],
            )
        )
        self._size = (p["image_height"], p["image_width"])
        problem = target_problem(p["target"])
        if problem is not None:
            raise ValueError(f"{self.get_name()}: {problem}")
        self.target: tuple[float, float] = (float(p["target"][0]), float(p["target"][1]))
        self._last_step_ns = time.monotonic_ns()
        self._logged: set[str] = set()
        self.commands_received = 0
        self.commands_rejected = 0

        self._state_pub = self.create_publisher(JointState, "joint_states", 10)
        self._target_pub = self.create_publisher(PointStamped, "sim/target", 10)
        self._tip_pub = self.create_publisher(PointStamped, "sim/fingertip", 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._cam_pubs = {
            name: self.create_publisher(Image, f"camera/{name}/image_raw", qos_profile_sensor_data)
            for name in p["cameras"]
        }
        if p["command_type"] == "joint_state":
            self.create_subscription(JointState, p["command_topic"], self._on_joint_command, 10)
        else:
            self.create_subscription(Float64MultiArray, p["command_topic"], self._on_array_command, 10)
        self.create_timer(1.0 / p["state_rate_hz"], self._publish_state)
        if self._cam_pubs:
            self.create_timer(1.0 / p["camera_rate_hz"], self._publish_images)

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        for param in params:
            if param.name == "target":
                problem = target_problem(param.value)
                if problem is not None:
                    return SetParametersResult(successful=False, reason=problem)
                self.target = (float(param.value[0]), float(param.value[1]))
        return SetParametersResult(successful=True)

    def _advance(self) -> None:
        now = time.monotonic_ns()
        self.arm.step(now - self._last_step_ns)
        self._last_step_ns = now

    def _refuse(self, exc: SimCommandError) -> None:
        self.commands_rejected += 1
        cause = str(exc).split(";")[0]
        if cause not in self._logged:
            self._logged.add(cause)
            self.get_logger().warning(f"refused command: {exc}")

    def _on_joint_command(self, msg: JointState) -> None:
        self.commands_received += 1
        self._advance()
        try:
            self.arm.command(list(msg.name), list(msg.position))
        except SimCommandError as exc:
            self._refuse(exc)

    def _on_array_command(self, msg: Float64MultiArray) -> None:
        self.commands_received += 1
        self._advance()
        try:
            self.arm.command_array(list(msg.data))
        except SimCommandError as exc:
            self._refuse(exc)

    def _publish_state(self) -> None:
        self._advance()
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = list(self.arm.joint_names)
        msg.position = self.arm.position.tolist()
        msg.velocity = self.arm.velocity.tolist()
        self._state_pub.publish(msg)

    def _publish_images(self) -> None:
        self._advance()
        stamp = self.get_clock().now().to_msg()
        h, w = self._size
        for name, pub in self._cam_pubs.items():
            pixels = render(self.arm.position, h, w, camera=name, target=self.target)
            msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
            msg.header.stamp = stamp
            msg.header.frame_id = f"{name}_camera"
            msg.data = np.ascontiguousarray(pixels).tobytes()
            pub.publish(msg)
        tip = fingertip(self.arm.position)
        for pub, (x, y) in ((self._target_pub, self.target), (self._tip_pub, tip)):
            point = PointStamped()
            point.header.stamp = stamp
            point.header.frame_id = PLANE_FRAME
            point.point.x, point.point.y = float(x), float(y)
            pub.publish(point)


def main(args: list[str] | None = None) -> int:
    """``ros2 run vla_ros sim_node``."""
    return run_node(SimNode, args)
