"""The executor node's parameters: one table of specs (:data:`SPECS`), and what they build.

The table is the single source for the rclpy declarations (with descriptors), the offline
validation of ``vla-ros eval``, live-change validation (:class:`~vla_ros.executor.core.ExecutorCore`),
``docs/parameters.md`` and the header of ``config/executor.yaml`` (``make params-docs``). A new
parameter is one more :class:`ParamSpec` entry here.

Per-joint limits are a map, as ros2_controllers' ``joint_limits`` gives them
(``joint_limits.<joint>.max_velocity`` there): ``limits.<joint>.lower``, ``.upper``,
``.velocity``, ``.acceleration``. The arrays ``position_lower``, ``position_upper``,
``max_velocity`` and ``max_acceleration`` (one value for all joints or one per joint) are the
deprecated form: still applied, with one warning; a file giving both forms is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vla_ros.control.controller import ControllerConfig
from vla_ros.control.ensemble import MODES
from vla_ros.control.safety import JointLimits, LimitsError
from vla_ros.control.urdf import UrdfJointLimit, parse_urdf_limits
from vla_ros.util.ns import seconds_to_ns
from vla_ros.util.params import ParamSpec, SpecIndex, check_forms

OUTPUT_TYPES = ("joint_state", "float64_multi_array", "joint_trajectory")
#: (map field, deprecated array) of the per-joint limits
LIMIT_FIELDS = (
    ("lower", "position_lower"),
    ("upper", "position_upper"),
    ("velocity", "max_velocity"),
    ("acceleration", "max_acceleration"),
)
LIMIT_PARAMS = ("position_lower", "position_upper", "max_velocity", "max_acceleration", "max_jump")
JOINT_UNIT = "rad or m"  # a joint's own unit: revolute rad, prismatic m (REP 103)


def _limit_map(field: str, what: str, unit: str, **kw: Any) -> ParamSpec:
    return ParamSpec(
        f"limits.<joint>.{field}",
        None,
        f"{what} of one commanded joint (unset: the URDF's, else none). Arming needs finite lower, "
        "upper and velocity limits on every joint (see allow_unlimited).",
        type="double",
        unit=unit,
        map_keys="joint_names",
        **kw,
    )


def _limit_array(name: str, field: str, what: str, unit: str) -> ParamSpec:
    return ParamSpec(
        name,
        [],
        f"{what}: 1 value for all joints or one per joint in joint_names order (empty: the URDF's, "
        "else none).",
        type="double_array",
        unit=unit,
        deprecated=f"limits.<joint>.{field}",
    )


SPECS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "joint_names",
        [],
        "Commanded joints in output order (empty: take the first chunk's joint_names).",
        type="string_array",
        read_only=True,
    ),
    ParamSpec(
        "control_rate_hz", 100.0, "Control timer rate.", unit="Hz", read_only=True, range=(1.0, 2000.0)
    ),
    ParamSpec(
        "mode", "temporal_ensemble", "How live chunks combine at a tick.", read_only=True, choices=MODES
    ),
    ParamSpec(
        "ensemble_coefficient",
        0.01,
        "temporal_ensemble: ACT's m in the weights exp(-m*i), i=0 the oldest chunk (Zhao et al. 2023).",
        range=(0.0, 100.0),
    ),
    ParamSpec(
        "blend_steps", 5, "blend mode: cross-fade length at a chunk switch.", unit="ticks", range=(0, 10000)
    ),
    ParamSpec(
        "rtc_tolerance",
        0.01,
        "rtc mode: how far a new chunk's action may be from what the executor committed for its "
        "time and still continue it; further: reported (rtc_prefix_mismatch) and cross-faded over "
        "blend_steps ticks.",
        unit=JOINT_UNIT,
        read_only=True,
        range=(0.0, 1000.0),
    ),
    ParamSpec(
        "rtc_handover_steps",
        1,
        "rtc mode: chunk action points the velocity-continuous hand-over from the committed "
        "actions spans (a cubic Hermite segment to the n-th action point after the takeover).",
        unit="chunk steps",
        read_only=True,
        range=(1, 100),
    ),
    ParamSpec(
        "committed_rate_hz",
        10.0,
        "Rate of ~/committed_actions (what the executor has committed to command, for real-time "
        "chunking and horizon-triggered inference); in rtc mode also at the first tick after each "
        "accepted chunk. 0: not published.",
        unit="Hz",
        read_only=True,
        range=(0.0, 2000.0),
    ),
    ParamSpec(
        "committed_horizon_s",
        1.0,
        "~/committed_actions: how far ahead of now (as far as the buffered chunks reach).",
        unit="s",
        read_only=True,
        range=(0.0, 60.0),
    ),
    ParamSpec(
        "committed_history_s",
        0.3,
        "~/committed_actions: how far back before now (covers observations that old).",
        unit="s",
        read_only=True,
        range=(0.0, 60.0),
    ),
    ParamSpec(
        "time_offset_s",
        0.0,
        "Added to chunk stamps: action 0 is due at stamp + offset.",
        unit="s",
        read_only=True,
        range=(-10.0, 10.0),
    ),
    ParamSpec(
        "max_chunk_age_s",
        0.0,
        "Use a chunk at most this long after its start (0: its whole horizon).",
        unit="s",
        read_only=True,
        range=(0.0, 3600.0),
    ),
    ParamSpec(
        "max_chunks",
        0,
        "Chunk buffer capacity; beyond it the oldest are dropped (0: auto, as many as overlap at "
        "one chunk per control period: ceil(horizon x dt / period) + 1).",
        read_only=True,
        range=(0, 10000),
    ),
    ParamSpec(
        "tracking_error_timeout_s",
        0.2,
        "A tracking error (robot further than max_jump from every allowed command) lasting this "
        "long while armed disarms; shorter ones only hold the previous command.",
        unit="s",
        read_only=True,
        range=(0.0, 60.0),
    ),
    ParamSpec(
        "max_chunk_dt_s",
        1.0,
        "Chunks whose action spacing dt is larger are rejected.",
        unit="s",
        read_only=True,
        range=(0.001, 3600.0),
    ),
    ParamSpec(
        "max_chunk_span_s",
        10.0,
        "Chunks covering longer than this ((horizon - 1) x dt) are rejected.",
        unit="s",
        read_only=True,
        range=(0.001, 3600.0),
    ),
    ParamSpec(
        "state_timeout_s",
        0.5,
        "joint_states older than this hold the robot (0: never).",
        unit="s",
        read_only=True,
        range=(0.0, 3600.0),
    ),
    ParamSpec(
        "delta_state_tolerance_s",
        0.05,
        "Delta chunks: max distance between the chunk stamp and the joint state used as base.",
        unit="s",
        read_only=True,
        range=(0.0, 10.0),
    ),
    _limit_map("lower", "Lower position limit", JOINT_UNIT),
    _limit_map("upper", "Upper position limit", JOINT_UNIT),
    _limit_map("velocity", "Velocity limit", f"{JOINT_UNIT}/s", range=(0.0, math.inf)),
    _limit_map("acceleration", "Acceleration limit", f"{JOINT_UNIT}/s^2", range=(0.0, math.inf)),
    _limit_array("position_lower", "lower", "Lower position limits", JOINT_UNIT),
    _limit_array("position_upper", "upper", "Upper position limits", JOINT_UNIT),
    _limit_array("max_velocity", "velocity", "Velocity limits", f"{JOINT_UNIT}/s"),
    _limit_array("max_acceleration", "acceleration", "Acceleration limits", f"{JOINT_UNIT}/s^2"),
    ParamSpec(
        "max_jump",
        [],
        "Max distance of a command from the measured position: 1 value for all joints or one per "
        "joint (empty: none).",
        type="double_array",
        unit=JOINT_UNIT,
    ),
    ParamSpec(
        "speed_scale",
        1.0,
        "Scales velocity limits (acceleration by its square).",
        range=(0.001, 1.0),
    ),
    ParamSpec(
        "robot_description",
        "",
        "URDF string; its joint limits apply where parameters give none.",
        read_only=True,
    ),
    ParamSpec(
        "robot_description_topic",
        "robot_description",
        "std_msgs/String topic carrying the URDF (robot_state_publisher's latched topic); each "
        "message received replaces the URDF limits (parameters still win). Empty: do not subscribe.",
        read_only=True,
    ),
    ParamSpec(
        "allow_unlimited",
        False,
        "SIMULATION/BENCH ONLY. Arm even when a joint lacks finite position limits or a finite "
        "velocity limit (from the limits above or robot_description). False (the default): "
        "~/arm and armed_on_start are refused until every joint has them.",
        read_only=True,
    ),
    ParamSpec(
        "armed_on_start",
        False,
        "Publish commands from the start (default false: call ~/arm first).",
        read_only=True,
    ),
    ParamSpec(
        "dry_run", False, "Publish only to ~/command_preview, never to the command topic.", read_only=True
    ),
    ParamSpec("publish_preview", False, "Also publish every command to ~/command_preview.", read_only=True),
    ParamSpec(
        "output_type",
        "joint_state",
        "Command message: joint_state (vla/joint_command), "
        "float64_multi_array (commands) or joint_trajectory (joint_trajectory).",
        read_only=True,
        choices=OUTPUT_TYPES,
    ),
    ParamSpec(
        "trajectory_points",
        10,
        "joint_trajectory: future points per message.",
        read_only=True,
        range=(1, 1000),
    ),
    ParamSpec(
        "trajectory_dt_s",
        0.0,
        "joint_trajectory: point spacing (0: the control period).",
        unit="s",
        read_only=True,
        range=(0.0, 10.0),
    ),
    ParamSpec(
        "timer",
        "thread",
        "What drives the control tick: a dedicated thread on steady-clock deadlines (lowest "
        "jitter; falls back to a ROS timer under use_sim_time) or an rclpy timer.",
        read_only=True,
        choices=("thread", "ros_timer"),
    ),
    ParamSpec(
        "thread_priority",
        0,
        "SCHED_FIFO priority of the control thread (0: leave normal; needs rtprio rights).",
        read_only=True,
        range=(0, 99),
    ),
    ParamSpec(
        "gil_switch_interval_s",
        0.0005,
        "timer=thread: sys.setswitchinterval for this process (0: leave), so the control "
        "thread gets the GIL promptly.",
        unit="s",
        read_only=True,
        range=(0.0, 0.1),
    ),
    ParamSpec(
        "diagnostics_period_s",
        1.0,
        "Period of the /diagnostics status.",
        unit="s",
        read_only=True,
        range=(0.05, 60.0),
    ),
    ParamSpec(
        "log_repeat_s",
        30.0,
        "The same fault is logged at most once per this period.",
        unit="s",
        read_only=True,
        range=(0.0, 86400.0),
    ),
)

#: every spec by name; a per-joint name (``limits.a.lower``) finds its map spec's instance
SPEC_BY_NAME = SpecIndex(SPECS)
LIVE = frozenset(s.name for s in SPECS if not s.read_only)


def is_limit_param(name: str) -> bool:
    """Whether ``name`` is a safety limit: one of :data:`LIMIT_PARAMS` or a ``limits.<joint>.*``."""
    return name in LIMIT_PARAMS or name.startswith("limits.")


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
        rtc_tolerance=float(values["rtc_tolerance"]),
        rtc_handover_steps=int(values["rtc_handover_steps"]),
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


def limit_map(values: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """The per-joint limits set in ``values``: ``{joint: {field: value}}`` (unset ones left out)."""
    out: dict[str, dict[str, float]] = {}
    for name, value in values.items():
        if value is None:
            continue
        for field, _ in LIMIT_FIELDS:
            joint = SPEC_BY_NAME[f"limits.<joint>.{field}"].key_of(name)
            if joint is not None and joint != "<joint>":
                out.setdefault(joint, {})[field] = float(value)
    return out


def joint_limits(
    values: Mapping[str, Any], joint_names: tuple[str, ...], urdf: Mapping[str, UrdfJointLimit]
) -> JointLimits:
    """Build (and validate) :class:`JointLimits` from parameter values and URDF limits.

    Per joint and field, ``limits.<joint>.<field>`` wins over the URDF, the URDF over none; the
    deprecated arrays win over the URDF for every joint. Raises :class:`LimitsError` naming the
    parameter: both forms given, a ``limits.<joint>`` naming no commanded joint, NaN, lower above
    upper, a velocity or acceleration limit not > 0, an array of the wrong length.
    """
    try:
        check_forms(SPECS, values)
    except ValueError as exc:
        raise LimitsError(str(exc)) from None
    per_joint = limit_map(values)
    unknown = sorted(set(per_joint) - set(joint_names))
    if unknown:
        raise LimitsError(
            f"limits.{unknown[0]}.* ({', '.join(f'limits.{j}' for j in unknown)}) name no commanded "
            f"joint; the commanded joints are {list(joint_names)}; fix the joint name in the parameters"
        )
    arrays: dict[str, list[float] | None] = {}
    for field, old in LIMIT_FIELDS:
        if any(field in per_joint.get(j, {}) for j in joint_names):
            arrays[old] = [_limit(per_joint, urdf, j, field) for j in joint_names]
        else:
            v = values.get(old)
            arrays[old] = None if v is None or len(v) == 0 else [float(x) for x in v]
    jump = values.get("max_jump")
    return JointLimits.build(
        joint_names,
        lower=arrays["position_lower"],
        upper=arrays["position_upper"],
        max_velocity=arrays["max_velocity"],
        max_acceleration=arrays["max_acceleration"],
        max_jump=None if jump is None or len(jump) == 0 else [float(x) for x in jump],
        urdf=urdf,
    )


def _limit(
    per_joint: Mapping[str, Mapping[str, float]], urdf: Mapping[str, UrdfJointLimit], joint: str, field: str
) -> float:
    """One joint's limit: its map entry (checked), else the URDF's, else none (+-inf)."""
    given = per_joint.get(joint, {})
    if field in given:
        v = given[field]
        name = f"limits.{joint}.{field}"
        if math.isnan(v):
            raise LimitsError(f"{name} is NaN; give a number (or leave it unset: no limit)")
        if field in ("velocity", "acceleration") and not v > 0:
            raise LimitsError(f"{name} must be > 0, got {v:g}; leave it unset for no limit")
        lo, hi = given.get("lower", -math.inf), given.get("upper", math.inf)
        if field in ("lower", "upper") and not lo <= hi:
            raise LimitsError(f"limits.{joint}.lower {lo:g} > limits.{joint}.upper {hi:g}; swap or fix them")
        return v
    if field == "acceleration" or joint not in urdf:
        return -math.inf if field == "lower" else math.inf
    return float(getattr(urdf[joint], field))


def describe_limits(limits: JointLimits) -> str:
    """One line summarizing the limits, for the startup log."""
    parts = []
    for i, n in enumerate(limits.names):
        lo, hi, v = limits.lower[i], limits.upper[i], limits.max_velocity[i]
        parts.append(f"{n}[{_f(lo)}, {_f(hi)}] v<={_f(v)}")
    return "; ".join(parts)


def _f(x: float) -> str:
    return "inf" if math.isinf(x) and x > 0 else "-inf" if math.isinf(x) else f"{x:g}"
