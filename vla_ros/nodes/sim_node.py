"""sim_node: the simulated arm on real topics, standing in for a robot's driver and cameras.

Publishes ``joint_states`` (JointState) at ``state_rate_hz`` and ``camera/<name>/image_raw``
(rgb8 Image) at ``camera_rate_hz``; follows position commands from ``vla/joint_command``
(JointState, by name) or, with ``command_type: float64_multi_array``, a forward controller's
``commands`` topic. Bad commands are refused with one log line per cause; the arm keeps its target.
Dynamics and rendering live in :mod:`vla_ros.sim`; this node only moves data.
"""

from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

from vla_ros.nodes.params import ParamSpec, declare_parameters
from vla_ros.nodes.run import run_node
from vla_ros.sim.render import render
from vla_ros.sim.robot import SimArm, SimArmConfig, SimCommandError

_DEFAULT = SimArmConfig()

SPECS = (
    ParamSpec("joint_names", list(_DEFAULT.joint_names), "Simulated joints, in state order", read_only=True),
    ParamSpec(
        "lower_limits", list(_DEFAULT.lower), "Lower position limits (rad), one per joint", read_only=True
    ),
    ParamSpec(
        "upper_limits", list(_DEFAULT.upper), "Upper position limits (rad), one per joint", read_only=True
    ),
    ParamSpec("max_velocity", list(_DEFAULT.max_velocity), "Servo velocity limits (rad/s)", read_only=True),
    ParamSpec("initial_positions", list(_DEFAULT.initial), "Start positions (rad)", read_only=True),
    ParamSpec(
        "time_constant",
        _DEFAULT.tau,
        "Servo first-order time constant (s)",
        read_only=True,
        range=(0.001, 10.0),
    ),
    ParamSpec("state_rate_hz", 100.0, "JointState publish rate", read_only=True, range=(1.0, 1000.0)),
    ParamSpec("camera_rate_hz", 30.0, "Image publish rate per camera", read_only=True, range=(0.1, 120.0)),
    ParamSpec(
        "cameras",
        ["front", "wrist"],
        "Camera names; topics are camera/<name>/image_raw (relative: a namespace moves them)",
        read_only=True,
    ),
    ParamSpec("image_width", 320, "Rendered image width (px)", read_only=True, range=(16, 4096)),
    ParamSpec("image_height", 240, "Rendered image height (px)", read_only=True, range=(16, 4096)),
    ParamSpec("command_topic", "vla/joint_command", "Where position commands arrive", read_only=True),
    ParamSpec(
        "command_type",
        "joint_state",
        "Message type of command_topic",
        read_only=True,
        choices=("joint_state", "float64_multi_array"),
    ),
)


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
        self._last_step_ns = time.monotonic_ns()
        self._logged: set[str] = set()
        self.commands_received = 0
        self.commands_rejected = 0

        self._state_pub = self.create_publisher(JointState, "joint_states", 10)
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
            pixels = render(self.arm.position, h, w, camera=name)
            msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
            msg.header.stamp = stamp
            msg.header.frame_id = f"{name}_camera"
            msg.data = np.ascontiguousarray(pixels).tobytes()
            pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    """``ros2 run vla_ros sim_node``."""
    return run_node(SimNode, args)
