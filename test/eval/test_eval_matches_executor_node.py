"""The replay is the node, executor half: a real executor_node and the ExecutorCore that
``vla-ros eval`` builds from the same parameters (``executor_setup(...).core()``) command the
same positions at the same tick times, value for value, for the same joint states and chunks."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.eval.setup import executor_setup, load_values

pytestmark = pytest.mark.ros

NS = 1_000_000_000
NAMES = ["j1", "j2"]
Q0 = [0.0, 0.0]
PARAMS = {
    "joint_names": NAMES,
    "control_rate_hz": 50.0,
    "armed_on_start": True,
    "mode": "temporal_ensemble",
    "state_timeout_s": 0.0,
    "limits.j1.lower": -1.0,
    "limits.j1.upper": 1.0,
    "limits.j1.velocity": 0.4,
    "limits.j2.lower": -1.0,
    "limits.j2.upper": 1.0,
    "limits.j2.velocity": 0.4,
}


def _chunk_msg(ActionChunk, stamp_ns: int, actions: np.ndarray, seq: int):
    from builtin_interfaces.msg import Duration

    msg = ActionChunk()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, NS)
    msg.policy_id = "test@0"
    msg.seq = seq
    msg.joint_names = NAMES
    msg.dt = Duration(sec=0, nanosec=40_000_000)
    msg.horizon, msg.action_dim = actions.shape
    msg.actions = actions.astype(np.float32).ravel().tolist()
    msg.action_mode = "absolute"
    return msg


def test_the_node_and_the_replayed_core_command_the_same(ros) -> None:
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import JointState

    from vla_ros.msg import ActionChunk
    from vla_ros.nodes.executor_node import ExecutorNode

    node = ExecutorNode(
        "exec_replay_twin",
        context=ros.context,
        parameter_overrides=[Parameter(k, value=v) for k, v in PARAMS.items()],
    )
    ros.add_node(node)
    chunks = ros.publisher("vla/action_chunk", ActionChunk)
    states = ros.publisher("joint_states", JointState)
    out = ros.subscribe("vla/joint_command", JointState)
    ros.wait_for_subscribers(chunks)
    ros.wait_for_subscribers(states)

    def publish_state() -> None:
        msg = JointState(name=NAMES, position=Q0)
        msg.header.stamp = ros.helper.get_clock().now().to_msg()
        states.publish(msg)

    publish_state()
    ros.helper.create_timer(0.02, publish_state)
    assert ros.wait_until(lambda: node.armed and len(out.messages) > 0, 10.0), "the node never armed"
    # two overlapping chunks that start in the future, so when each arrives does not matter
    t_sent = ros.helper.get_clock().now().nanoseconds
    ramp = np.linspace(0.0, 0.04, 25)[:, None] * np.array([1.0, -0.5])
    sent = [
        (t_sent + 300_000_000, ramp, 0),
        (t_sent + 500_000_000, ramp[::-1] * 0.5 + 0.01, 1),
    ]
    for stamp, actions, seq in sent:
        chunks.publish(_chunk_msg(ActionChunk, stamp, actions, seq))
    end = sent[-1][0] + 24 * 40_000_000
    assert ros.wait_until(
        lambda: any(m.header.stamp.sec * NS + m.header.stamp.nanosec > end for m in list(out.messages)), 20.0
    )
    commanded = [
        (m.header.stamp.sec * NS + m.header.stamp.nanosec, np.array(m.position)) for m in list(out.messages)
    ]
    commanded = [(t, q) for t, q in commanded if t >= t_sent]

    # eval's executor from the same parameters, fed the same state and chunks, ticked at the node's times
    values = load_values(None, executor_overrides=PARAMS)
    core = executor_setup(values.executor, tuple(NAMES)).core(armed=True)
    core.update_state(t_sent, NAMES, Q0)
    for stamp, actions, seq in sent:
        core.add_chunk(stamp_ns=stamp, dt_ns=40_000_000, joint_names=NAMES, actions=actions, seq=seq)
    replayed = [core.tick(t).command.positions for t, _ in commanded]

    node_q = np.array([q for _, q in commanded])
    assert len(node_q) >= 50
    assert np.abs(node_q - np.array(Q0)).max() > 0.02  # the commands moved: there is something to compare
    np.testing.assert_allclose(node_q, np.array(replayed), rtol=0, atol=1e-9)
