"""vla_ros.control: the executor's pure algorithms (no ROS).

:class:`~vla_ros.control.controller.ChunkController` runs the whole control tick (chunk buffer ->
temporal ensembling / latest / blend -> linear interpolation -> safety filter -> command) on
integer-nanosecond times; the executor node and offline rosbag evaluation both drive it.
"""

from vla_ros.control.chunk import Chunk, ChunkError, make_chunk
from vla_ros.control.controller import ChunkController, Command, ConfigError, ControllerConfig
from vla_ros.control.safety import JointLimits, LimitsError, SafetyFilter
from vla_ros.control.state import StateError
from vla_ros.control.urdf import UrdfError, parse_urdf_limits
from vla_ros.util.faults import Fault

__all__ = [
    "Chunk",
    "ChunkController",
    "ChunkError",
    "Command",
    "ConfigError",
    "ControllerConfig",
    "Fault",
    "JointLimits",
    "LimitsError",
    "SafetyFilter",
    "StateError",
    "UrdfError",
    "make_chunk",
    "parse_urdf_limits",
]
