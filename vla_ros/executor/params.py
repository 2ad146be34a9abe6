"""The executor node's parameters: one table of specs, declared with descriptors, validated.

Kept apart from the node so the table (names, defaults, ranges, which are live) is the single
source for declaration, YAML (config/executor.yaml) and live-change validation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vla_ros.control.controller import ControllerConfig
from vla_ros.control.ensemble import MODES
from vla_ros.control.safety import JointLimits
from vla_ros.control.urdf import UrdfJointLimit, parse_urdf_limits
from vla_ros.util.ns import seconds_to_ns
from vla_ros.util.params import ParamSpec

OUTPUT_TYPES = ("joint_state", "float64_multi_array", "joint_trajectory")
LIMIT_PARAMS = ("position_lower", "position_upper", "max_velocity", "max_acceleration", "max_jump")


def _spec(
    name: str,
    default: Any,
    description: str,
    *,
    live: bool = False,
    array: str | None = None,
    range: tuple[float, float] | None = None,
    choices: tuple[str, ...] = (),
) -> ParamSpec:
    """A :class:`ParamSpec`; ``live`` parameters may change while running, the rest are read-only.

    ``array`` names the list type (``"double_array"``, ``"string_array"``); an array parameter
    starts empty (unset).
    """
    if not live:
        description += " Read-only: set at start (YAML or launch), restart to change."
    return ParamSpec(
        name,
        [] if array else default,
        description,
        type=array,
        read_only=not live,
        range=range,
        choices=choices,
    )


SPECS: tuple[ParamSpec, ...] = (
    _spec(
        "joint_names",
        None,
        "Commanded joints in output order (empty: take the first chunk's joint_names).",
        array="string_array",
    ),
    _spec("control_rate_hz", 100.0, "Control timer rate [Hz].", range=(1.0, 2000.0)),
    _spec("mode", "temporal_ensemble", "How live chunks combine at a tick.", choices=MODES),
    _spec(
        "ensemble_coefficient",
        0.01,
        "ACT m in weights exp(-m*i), i=0 the oldest chunk.",
        live=True,
        range=(0.0, 100.0),
    ),
    _spec(
        "blend_steps", 5, "blend mode: ticks of cross-fade at a chunk switch.", live=True, range=(0, 10000)
    ),
    _spec(
        "time_offset_s",
        0.0,
        "Added to chunk stamps: action 0 is due at stamp + offset [s].",
        range=(-10.0, 10.0),
    ),
    _spec(
        "max_chunk_age_s",
        0.0,
        "Use a chunk at most this long after its start (0: whole horizon) [s].",
        range=(0.0, 3600.0),
    ),
    _spec(
        "max_chunks",
        0,
        "Chunk buffer capacity; beyond it the oldest are dropped (0: auto, as many as overlap at "
        "one chunk per control period: ceil(horizon x dt / period) + 1).",
        range=(0, 10000),
    ),
    _spec(
        "tracking_error_timeout_s",
        0.2,
        "A tracking error (robot further than max_jump from every allowed command) lasting this "
        "long while armed disarms; shorter ones only hold the previous command [s].",
        range=(0.0, 60.0),
    ),
    _spec(
        "max_chunk_dt_s",
        1.0,
        "Chunks whose action spacing dt is larger are rejected [s].",
        range=(0.001, 3600.0),
    ),
    _spec(
        "max_chunk_span_s",
        10.0,
        "Chunks covering longer than this ((horizon - 1) x dt) are rejected [s].",
        range=(0.001, 3600.0),
    ),
    _spec(
        "state_timeout_s",
        0.5,
        "joint_states older than this hold the robot (0: never) [s].",
        range=(0.0, 3600.0),
    ),
    _spec(
        "delta_state_tolerance_s",
        0.05,
        "Delta chunks: max distance between the chunk stamp and the joint state used as base [s].",
        range=(0.0, 10.0),
    ),
    _spec(
        "position_lower",
        None,
        "Lower position limits (1 value for all joints, or one per joint; empty: URDF, else none). "
        "Arming needs finite position and velocity limits on every joint (see allow_unlimited).",
        live=True,
        array="double_array",
    ),
    _spec(
        "position_upper",
        None,
        "Upper position limits (like position_lower).",
        live=True,
        array="double_array",
    ),
    _spec(
        "max_velocity",
        None,
        "Velocity limits [unit/s] (empty: URDF, else none); required to arm (see allow_unlimited).",
        live=True,
        array="double_array",
    ),
    _spec(
        "max_acceleration",
        None,
        "Acceleration limits [unit/s^2] (empty: none).",
        live=True,
        array="double_array",
    ),
    _spec(
        "max_jump",
        None,
        "Max distance of a command from the measured position (empty: none).",
        live=True,
        array="double_array",
    ),
    _spec(
        "speed_scale",
        1.0,
        "Scales velocity limits (acceleration by its square).",
        live=True,
        range=(0.001, 1.0),
    ),
    _spec("robot_description", "", "URDF string; its joint limits apply where parameters give none."),
    _spec(
        "robot_description_topic",
        "robot_description",
        "std_msgs/String topic carrying the URDF (robot_state_publisher's latched topic); each "
        "message received replaces the URDF limits (parameters still win). Empty: do not subscribe.",
    ),
    _spec(
        "allow_unlimited",
        False,
        "SIMULATION/BENCH ONLY. Arm even when a joint lacks finite position limits or a finite "
        "velocity limit (from the parameters above or robot_description). False (the default): "
        "~/arm and armed_on_start are refused until every joint has them.",
    ),
    _spec("armed_on_start", False, "Publish commands from the start (default false: call ~/arm first)."),
    _spec("dry_run", False, "Publish only to ~/command_preview, never to the command topic."),
    _spec("publish_preview", False, "Also publish every command to ~/command_preview."),
    _spec(
        "output_type",
        "joint_state",
        "Command message: joint_state (vla/joint_command), "
        "float64_multi_array (commands) or joint_trajectory (joint_trajectory).",
        choices=OUTPUT_TYPES,
    ),
    _spec("trajectory_points", 10, "joint_trajectory: future points per message.", range=(1, 1000)),
    _spec(
        "trajectory_dt_s", 0.0, "joint_trajectory: point spacing (0: control period) [s].", range=(0.0, 10.0)
    ),
    _spec(
        "timer",
        "thread",
        "What drives the control tick: a dedicated thread on steady-clock deadlines (lowest "
        "jitter; falls back to a ROS timer under use_sim_time) or an rclpy timer.",
        choices=("thread", "ros_timer"),
    ),
    _spec(
        "thread_priority",
        0,
        "SCHED_FIFO priority of the control thread (0: leave normal; needs rtprio rights).",
        range=(0, 99),
    ),
    _spec(
        "gil_switch_interval_s",
        0.0005,
        "timer=thread: sys.setswitchinterval for this process (0: leave), so the control "
        "thread gets the GIL promptly.",
        range=(0.0, 0.1),
    ),
    _spec("diagnostics_period_s", 1.0, "Period of /diagnostics status [s].", range=(0.05, 60.0)),
    _spec(
        "log_repeat_s",
        30.0,
        "The same fault is logged at most once per this period [s].",
        range=(0.0, 86400.0),
    ),
)

SPEC_BY_NAME = {s.name: s for s in SPECS}
LIVE = frozenset(s.name for s in SPECS if not s.read_only)


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """Why ``value`` is invalid for ``spec`` (range/choices), or None if it is fine."""
    try:
        spec.check(value)
    except ValueError as exc:
        return str(exc)
    return None


def controller_config(values: Mapping[str, Any], joint_names: tuple[str, ...]) -> ControllerConfig:
    """Build the :class:`ControllerConfig` from parameter values."""
    period_ns = seconds_to_ns(1.0 / float(values["control_rate_hz"]))
    traj = values["trajectory_points"] if values["output_type"] == "joint_trajectory" else 0
    return ControllerConfig(
        joint_names=joint_names,
        period_ns=period_ns,
        mode=values["mode"],
        ensemble_coefficient=float(values["ensemble_coefficient"]),
        blend_steps=int(values["blend_steps"]),
        time_offset_ns=seconds_to_ns(values["time_offset_s"]),
        max_chunk_age_ns=seconds_to_ns(values["max_chunk_age_s"]),
        max_chunks=int(values["max_chunks"]),
        max_chunk_dt_ns=seconds_to_ns(values["max_chunk_dt_s"]),
        max_chunk_span_ns=seconds_to_ns(values["max_chunk_span_s"]),
        tracking_error_timeout_ns=seconds_to_ns(values["tracking_error_timeout_s"]),
        state_timeout_ns=seconds_to_ns(values["state_timeout_s"]),
        delta_state_tolerance_ns=seconds_to_ns(values["delta_state_tolerance_s"]),
        trajectory_points=int(traj),
        trajectory_dt_ns=seconds_to_ns(values["trajectory_dt_s"]),
        speed_scale=float(values["speed_scale"]),
    )


def urdf_limits(values: Mapping[str, Any]) -> dict[str, UrdfJointLimit]:
    """Joint limits from the ``robot_description`` parameter ({} when empty)."""
    text = values.get("robot_description") or ""
    return parse_urdf_limits(text) if text.strip() else {}


def joint_limits(
    values: Mapping[str, Any], joint_names: tuple[str, ...], urdf: Mapping[str, UrdfJointLimit]
) -> JointLimits:
    """Build (and validate) :class:`JointLimits` from parameter values and URDF limits."""

    def arr(name: str) -> list[float] | None:
        v = values.get(name)
        return None if v is None or len(v) == 0 else [float(x) for x in v]

    return JointLimits.build(
        joint_names,
        lower=arr("position_lower"),
        upper=arr("position_upper"),
        max_velocity=arr("max_velocity"),
        max_acceleration=arr("max_acceleration"),
        max_jump=arr("max_jump"),
        urdf=urdf,
    )


def describe_limits(limits: JointLimits) -> str:
    """One line summarizing the limits, for the startup log."""
    parts = []
    for i, n in enumerate(limits.names):
        lo, hi, v = limits.lower[i], limits.upper[i], limits.max_velocity[i]
        parts.append(f"{n}[{_f(lo)}, {_f(hi)}] v<={_f(v)}")
    return "; ".join(parts)


def _f(x: float) -> str:
    return "inf" if math.isinf(x) and x > 0 else "-inf" if math.isinf(x) else f"{x:g}"
