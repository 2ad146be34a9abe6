"""The policy path without ROS: set-up from plain values, one step, counters and health.

``policy_node`` is a thin rclpy adapter around :class:`PolicyStep`; offline evaluation drives the
same class with bag messages and bag time:

>>> step = PolicyStep(runtime, make_assembler(runtime.card.io, state_joints, limits))
>>> step.push_image("wrist", stamp_ns, image_msg); step.push_joint_state(stamp_ns, names, q)
>>> result = step.run(now_ns)  # ChunkResult (publish it) or NoChunk (why not)
"""

from vla_ros.policy.config import (
    make_assembler,
    parse_cameras,
    resolve_joint_names,
    runtime_options,
    staleness_limits,
)
from vla_ros.policy.health import BLOCKING_PREFIXES, ERROR, OK, WARN, health, status_values
from vla_ros.policy.stats import COUNTERS, PolicyStats, RateMeter, StatsSnapshot, percentiles_ms
from vla_ros.policy.step import ChunkResult, LogFn, NoChunk, PolicyStep

__all__ = [
    "BLOCKING_PREFIXES",
    "COUNTERS",
    "ERROR",
    "OK",
    "WARN",
    "ChunkResult",
    "LogFn",
    "NoChunk",
    "PolicyStats",
    "PolicyStep",
    "RateMeter",
    "StatsSnapshot",
    "health",
    "make_assembler",
    "parse_cameras",
    "percentiles_ms",
    "resolve_joint_names",
    "runtime_options",
    "staleness_limits",
    "status_values",
]
