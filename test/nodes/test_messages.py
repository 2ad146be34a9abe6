"""vla_ros.nodes.messages: commands, committed actions, chunks and diagnostics to and from ROS
messages (real rclpy message types), with the values each field must carry."""

from __future__ import annotations

import numpy as np

from vla_ros.control.controller import Command
from vla_ros.control.rtc import CommittedActions
from vla_ros.nodes import messages
from vla_ros.policy import ChunkResult

MS = 1_000_000
T = 12 * 10**9 + 345 * MS


def _cmd(trajectory=()) -> Command:
    return Command(
        t_ns=T,
        joint_names=("a", "b"),
        positions=np.array([0.25, -0.5]),
        velocities=np.array([1.0, 0.0]),
        holding=False,
        trajectory=trajectory,
    )


def test_a_command_as_each_output_type():
    js = messages.command_message(_cmd(), "joint_state", 10 * MS)
    assert (js.header.stamp.sec, js.header.stamp.nanosec) == (12, 345 * MS)
    assert (list(js.name), list(js.position), list(js.velocity)) == (["a", "b"], [0.25, -0.5], [1.0, 0.0])
    arr = messages.command_message(_cmd(), "float64_multi_array", 10 * MS)
    assert list(arr.data) == [0.25, -0.5]
    one = messages.command_message(_cmd(), "joint_trajectory", 10 * MS)
    assert [(p.time_from_start.sec, p.time_from_start.nanosec, list(p.positions)) for p in one.points] == [
        (0, 10 * MS, [0.25, -0.5])
    ]  # no trajectory: the positions one control period ahead
    points = ((20 * MS, np.array([0.3, -0.4])), (1_500 * MS, np.array([0.4, -0.3])))
    traj = messages.command_message(_cmd(points), "joint_trajectory", 10 * MS)
    assert [(p.time_from_start.sec, p.time_from_start.nanosec) for p in traj.points] == [
        (0, 20 * MS),
        (1, 500 * MS),
    ]
    assert list(traj.joint_names) == ["a", "b"] and list(traj.points[1].positions) == [0.4, -0.3]


def test_committed_actions_go_out_and_come_back_as_the_core_arguments():
    actions = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    msg = messages.committed_chunk(CommittedActions(T, 10 * MS, ("a", "b"), actions), "executor:/x", 7)
    assert (msg.policy_id, msg.seq, msg.action_mode, msg.horizon, msg.action_dim) == (
        "executor:/x",
        7,
        "absolute",
        3,
        2,
    )
    args = messages.chunk_arguments(msg)
    assert (args["stamp_ns"], args["dt_ns"], args["joint_names"]) == (T, 10 * MS, ("a", "b"))
    np.testing.assert_array_equal(np.asarray(args["actions"]), actions.astype(np.float32).ravel())
    stamp, dt, names, got = messages.committed_arguments(msg)
    assert (stamp, dt, list(names)) == (T, 10 * MS, ["a", "b"]) and got.dtype == np.float32
    msg.action_mode = ""  # an empty mode is absolute
    assert messages.chunk_arguments(msg)["action_mode"] == "absolute"


def test_a_policy_result_as_an_action_chunk_with_its_latency():
    actions = np.arange(8, dtype=np.float32).reshape(4, 2)
    result = ChunkResult(T, 3, actions, "p@1", ("a", "b"), 50 * MS, "delta", 0, 0)
    msg = messages.result_chunk(result, 1_250 * MS)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.dt.nanosec) == (12, 345 * MS, 50 * MS)
    assert (msg.policy_id, msg.seq, msg.horizon, msg.action_dim, msg.action_mode) == ("p@1", 3, 4, 2, "delta")
    assert (msg.inference_latency.sec, msg.inference_latency.nanosec) == (1, 250 * MS)
    assert list(msg.actions) == list(range(8))
    assert messages.result_chunk(result, -5).inference_latency.nanosec == 0  # clocks disagree: 0


def test_diagnostics_carry_the_level_byte_and_the_pairs_in_order():
    status = messages.diagnostic_status("n: executor", 2, "e-stop latched", "vla_ros", [("armed", "False")])
    assert status.level == messages.DiagnosticStatus.ERROR and status.hardware_id == "vla_ros"
    assert [(kv.key, kv.value) for kv in status.values] == [("armed", "False")]
    arr = messages.diagnostic_array(status, T)
    assert (arr.header.stamp.sec, arr.header.stamp.nanosec, arr.status[0].message) == (
        12,
        345 * MS,
        "e-stop latched",
    )
