"""ROS message <-> core value conversions shared by the executor and policy nodes.

Only conversion lives here, no decision: integer-nanosecond times to ``builtin_interfaces``
fields (:mod:`vla_ros.util.ns`), a :class:`~vla_ros.control.controller.Command` to the command
topic's message, committed actions and policy results to ``vla_ros/ActionChunk``, an
``ActionChunk`` to the core's arguments, and health values to ``diagnostic_msgs``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.control.controller import Command
from vla_ros.control.rtc import CommittedActions
from vla_ros.util.ns import msg_to_ns, ns_to_stamp

if TYPE_CHECKING:
    from vla_ros.msg import ActionChunk

#: ``output_type`` -> (message type, topic) of the executor's command publisher
OUTPUT_TOPICS: dict[str, tuple[type, str]] = {
    "joint_state": (JointState, "vla/joint_command"),
    "float64_multi_array": (Float64MultiArray, "commands"),
    "joint_trajectory": (JointTrajectory, "joint_trajectory"),
}


def time_msg(ns: int) -> Time:
    """Integer ns -> ``builtin_interfaces/Time``."""
    sec, nanosec = ns_to_stamp(ns)
    return Time(sec=sec, nanosec=nanosec)


def duration_msg(ns: int) -> Duration:
    """Integer ns (>= 0) -> ``builtin_interfaces/Duration``."""
    sec, nanosec = ns_to_stamp(ns)
    return Duration(sec=sec, nanosec=nanosec)


# ---------------------------------------------------------------------- executor: commands
def joint_state(cmd: Command) -> JointState:
    """A command as ``sensor_msgs/JointState``: stamp ``cmd.t_ns``, positions (rad or m) and
    velocities (per s) in ``cmd.joint_names`` order."""
    msg = JointState()
    msg.header.stamp = time_msg(cmd.t_ns)
    msg.name = list(cmd.joint_names)
    msg.position = cmd.positions.tolist()
    msg.velocity = cmd.velocities.tolist()
    return msg


def command_message(cmd: Command, output_type: str, period_ns: int) -> Any:
    """A command as the ``output_type`` message (:data:`OUTPUT_TOPICS`).

    ``joint_trajectory`` carries ``cmd.trajectory`` (``(time_from_start ns, positions)`` points)
    or, without one, the positions one control period (``period_ns``) ahead.
    """
    if output_type == "joint_state":
        return joint_state(cmd)
    if output_type == "float64_multi_array":
        return Float64MultiArray(data=cmd.positions.tolist())
    msg = JointTrajectory()
    msg.header.stamp = time_msg(cmd.t_ns)
    msg.joint_names = list(cmd.joint_names)
    for t_from, q in cmd.trajectory or ((period_ns, cmd.positions),):
        msg.points.append(JointTrajectoryPoint(positions=q.tolist(), time_from_start=duration_msg(t_from)))
    return msg


def _actions(values: np.ndarray) -> array:
    return array("f", np.ascontiguousarray(values, dtype=np.float32).tobytes())


def committed_chunk(committed: CommittedActions, policy_id: str, seq: int) -> ActionChunk:
    """``~/committed_actions``: stamp = the first action's time, ``dt`` = the control period,
    ``actions`` the absolute targets ``[n, n_joints]`` as float32."""
    from vla_ros.msg import ActionChunk  # colcon-built message

    msg = ActionChunk()
    msg.header.stamp = time_msg(committed.start_ns)
    msg.policy_id = policy_id
    msg.seq = seq
    msg.joint_names = list(committed.joint_names)
    msg.dt = duration_msg(committed.dt_ns)
    msg.horizon, msg.action_dim = committed.actions.shape
    msg.actions = _actions(committed.actions)
    msg.action_mode = "absolute"
    return msg


def chunk_arguments(msg: Any) -> dict[str, Any]:
    """An ``ActionChunk`` as :meth:`ExecutorCore.add_chunk` / ``ChunkController.add_chunk``
    keyword arguments (stamps as integer ns; an empty ``action_mode`` is ``absolute``)."""
    return {
        "stamp_ns": msg_to_ns(msg.header.stamp),
        "dt_ns": msg_to_ns(msg.dt),
        "joint_names": tuple(msg.joint_names),
        "actions": msg.actions,
        "action_mode": msg.action_mode or "absolute",
        "horizon": msg.horizon,
        "action_dim": msg.action_dim,
        "policy_id": msg.policy_id,
        "seq": msg.seq,
    }


# ---------------------------------------------------------------------- policy: chunks
def result_chunk(result: Any, latency_ns: int) -> ActionChunk:
    """A :class:`~vla_ros.policy.ChunkResult` as the ``vla/action_chunk`` message, stamped with
    its observation stamp; ``inference_latency`` = ``latency_ns`` (negative counts as 0)."""
    from vla_ros.msg import ActionChunk  # colcon-built message

    msg = ActionChunk()
    msg.header.stamp = time_msg(result.stamp_ns)
    msg.policy_id = result.policy_id
    msg.seq = result.seq
    msg.joint_names = list(result.joint_names)
    msg.dt = duration_msg(result.dt_ns)
    msg.horizon, msg.action_dim = result.horizon, result.action_dim
    msg.actions = array("f", np.ascontiguousarray(result.actions).tobytes())
    msg.action_mode = result.action_mode
    msg.inference_latency = duration_msg(max(0, latency_ns))
    return msg


def committed_arguments(msg: Any) -> tuple[int, int, list[str], np.ndarray]:
    """A ``~/committed_actions`` message as ``(stamp_ns, dt_ns, joint_names, actions float32)``
    for :meth:`PolicyStep.push_committed` (after its receive time)."""
    actions = np.asarray(msg.actions, dtype=np.float32)
    return msg_to_ns(msg.header.stamp), msg_to_ns(msg.dt), msg.joint_names, actions


# ---------------------------------------------------------------------- diagnostics
def diagnostic_status(
    name: str, level: int, message: str, hardware_id: str, values: Iterable[tuple[str, str]]
) -> DiagnosticStatus:
    """``level`` OK (0), WARN (1) or ERROR (2) (DiagnosticStatus numbering) and key/value pairs."""
    return DiagnosticStatus(
        level=bytes([level]),
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in values],
    )


def diagnostic_array(status: DiagnosticStatus, stamp_ns: int) -> DiagnosticArray:
    """One status in a ``/diagnostics`` message stamped ``stamp_ns``."""
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = time_msg(stamp_ns)
    return msg
