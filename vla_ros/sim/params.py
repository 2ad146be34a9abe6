"""The sim node's parameters: one table of specs (:data:`SPECS`), without ROS.

``sim_node`` declares them (:func:`vla_ros.nodes.params.declare_parameters`); ``make params-docs``
writes them into docs/parameters.md and the config/*.yaml headers. A new parameter is one more
:class:`ParamSpec` entry here. Defaults are those of :class:`~vla_ros.sim.robot.SimArmConfig`.
"""

from __future__ import annotations

from vla_ros.sim.render import DEFAULT_TARGET
from vla_ros.sim.robot import SimArmConfig
from vla_ros.util.params import ParamSpec

_DEFAULT = SimArmConfig()

SPECS: tuple[ParamSpec, ...] = (
    ParamSpec("joint_names", list(_DEFAULT.joint_names), "Simulated joints, in state order", read_only=True),
    ParamSpec(
        "lower_limits",
        list(_DEFAULT.lower),
        "Lower position limits, one per joint",
        unit="rad",
        read_only=True,
    ),
    ParamSpec(
        "upper_limits",
        list(_DEFAULT.upper),
        "Upper position limits, one per joint",
        unit="rad",
        read_only=True,
    ),
    ParamSpec(
        "max_velocity", list(_DEFAULT.max_velocity), "Servo velocity limits", unit="rad/s", read_only=True
    ),
    ParamSpec("initial_positions", list(_DEFAULT.initial), "Start positions", unit="rad", read_only=True),
    ParamSpec(
        "time_constant",
        _DEFAULT.tau,
        "Servo first-order time constant",
        unit="s",
        read_only=True,
        range=(0.001, 10.0),
    ),
    ParamSpec(
        "state_rate_hz", 100.0, "JointState publish rate", unit="Hz", read_only=True, range=(1.0, 1000.0)
    ),
    ParamSpec(
        "camera_rate_hz", 30.0, "Image publish rate per camera", unit="Hz", read_only=True, range=(0.1, 120.0)
    ),
    ParamSpec(
        "cameras",
        ["front", "wrist"],
        "Camera names; topics are camera/<name>/image_raw (relative: a namespace moves them)",
        read_only=True,
    ),
    ParamSpec("image_width", 320, "Rendered image width", unit="px", read_only=True, range=(16, 4096)),
    ParamSpec("image_height", 240, "Rendered image height", unit="px", read_only=True, range=(16, 4096)),
    ParamSpec("command_topic", "vla/joint_command", "Where position commands arrive", read_only=True),
    ParamSpec(
        "command_type",
        "joint_state",
        "Message type of command_topic",
        read_only=True,
        choices=("joint_state", "float64_multi_array"),
    ),
    ParamSpec(
        "target",
        list(DEFAULT_TARGET),
        "Task target [x, y] drawn in the camera images (the arm's plane, arm length 1)",
    ),
)
