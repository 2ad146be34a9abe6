"""Inputs that lie, through real rclpy nodes (issue 12, section 4): a JointState naming a joint
twice, header stamps of 0, stamps an hour off the node clock, and a /clock that stops.

Each test drives a real policy_node or executor_node over real topics and asserts what the node
says (/diagnostics, /rosout) and that it publishes nothing from the lying input.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from node_rigs import PolicyRig, SimClock, latest_status, log_lines, status_values  # noqa: E402
from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from support.policy_card import joint_msg, make_card  # noqa: E402

HOUR_NS = 3600 * 1_000_000_000
MS = 1_000_000


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_card(tmp_path_factory.mktemp("card") / "lying_inputs", nan_gate=False)


def test_policy_rejects_and_counts_a_duplicated_joint(ros, card: Path) -> None:
    rig = PolicyRig(ros, card)
    dup = {"names": ("j1", "j2", "j2", "j3"), "positions": (1.0, 2.0, 5.0, 3.0)}
    rig.feed_until(rig.now_ns, lambda: rig.node.policy.stats.count("rejected_messages") >= 5, **dup)
    assert rig.chunks.messages == []  # neither the first j2 nor the last
    assert rig.ros.wait_until(
        lambda: (st := rig.last_status()) is not None and int(status_values(st)["rejected_messages"]) >= 5
    )
    values = status_values(rig.last_status())
    assert "joint(s) ['j2'] more than once" in values["fault:joint_states:duplicate"]
    assert len(rig.logs("more than once")) == 1  # one line for the episode, every message counted
    rig.feed_until(rig.now_ns, lambda: bool(rig.chunks.messages))  # a well-formed message is used


def test_policy_says_the_driver_does_not_stamp(ros, card: Path) -> None:
    rig = PolicyRig(ros, card)
    every = "camera 'wrist', camera 'top', joint_states: the driver does not stamp its messages"
    # the first diagnostics may name only the first input that arrived: wait for all three
    rig.feed_until(lambda: 0, lambda: rig.status_has(every))
    st = rig.last_status()
    assert st.level == b"\x02"
    assert every in st.message
    assert "publisher running" not in st.message and "lacks joint" not in st.message
    assert rig.chunks.messages == []
    assert len(rig.logs("does not stamp")) == 1


def test_policy_names_the_clock_for_stamps_an_hour_off(ros, card: Path) -> None:
    rig = PolicyRig(ros, card)
    rig.feed_until(lambda: rig.now_ns() - HOUR_NS, lambda: rig.status_has("stamps are off the node clock"))
    st = rig.last_status()
    assert "joint_states 3600.0 s behind" in st.message
    assert "both are wall-clock times that differ" in st.message
    assert "publisher running" not in st.message
    assert rig.chunks.messages == []
    assert len(rig.logs("stamps are off the node clock")) == 1


def test_policy_liveness_trips_when_clock_stops(ros, card: Path) -> None:
    """use_sim_time with a /clock that stops (a paused bag): the node clock stands still, the
    stamps never age on it, and the steady-clock liveness still stops the policy."""
    with SimClock(ros, 100 * 1_000_000_000, step_ns=10 * MS, period_s=0.01) as clock:
        rig = PolicyRig(ros, card, use_sim_time=True, image_staleness_s=1.0, state_staleness_s=1.0)
        rig.feed_until(lambda: clock.t_ns, lambda: bool(rig.chunks.messages))
        assert abs(rig.node.get_clock().now().nanoseconds - clock.t_ns) < 5_000_000_000  # on sim time
    # the bag pauses: no /clock, no inputs
    # the cameras may be named first: wait until the joint_states fault is reported too
    assert rig.ros.wait_until(
        lambda: (
            rig.status_has("the node clock stands still")
            and "fault:input:joint_states:silent" in status_values(rig.last_status())
        ),
        timeout=15.0,
    ), rig.last_status()
    st = rig.last_status()
    assert st.level == b"\x02"
    silent = status_values(st)["fault:input:joint_states:silent"]
    assert "joint_states: no message arrived for" in silent and "the node clock stands still" in silent


# ---- executor_node ------------------------------------------------------------------------------


class ExecutorRig:
    """An armed executor_node (state_timeout 0.5 s) following one chunk, fed states by a timer."""

    def __init__(self, ros, name: str) -> None:
        from vla_ros.msg import ActionChunk
        from vla_ros.nodes.executor_node import ExecutorNode

        params = {
            "joint_names": ["j1", "j2"],
            "control_rate_hz": 100.0,
            "armed_on_start": True,
            "allow_unlimited": True,
            "state_timeout_s": 0.5,
            "log_repeat_s": 600.0,
            "diagnostics_period_s": 0.1,
        }
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.ros = ros
        self.node = ros.add_node(ExecutorNode(name, context=ros.context, parameter_overrides=overrides))
        self.ActionChunk = ActionChunk
        self.chunks = ros.publisher("vla/action_chunk", ActionChunk)
        self.states = ros.publisher("joint_states", JointState)
        self.out = ros.subscribe("vla/joint_command", JointState)
        self.diag = ros.subscribe("/diagnostics", DiagnosticArray)
        self.rosout = ros.subscribe("/rosout", Log, qos=100)
        ros.wait_for_subscribers(self.chunks)
        ros.wait_for_subscribers(self.states)
        self.stamp_offset_ns: int | None = 0  # None: stamp 0
        self.names = ["j1", "j2"]
        self.positions = [0.0, 0.0]
        ros.helper.create_timer(0.02, self._publish_state)

    def now_ns(self) -> int:
        return self.ros.helper.get_clock().now().nanoseconds

    def _publish_state(self) -> None:
        stamp = 0 if self.stamp_offset_ns is None else self.now_ns() + self.stamp_offset_ns
        self.states.publish(joint_msg(stamp, self.names, self.positions))

    def send_chunk(self, value: float) -> None:
        from builtin_interfaces.msg import Duration

        msg = self.ActionChunk()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(self.now_ns(), 1_000_000_000)
        msg.joint_names = ["j1", "j2"]
        msg.dt = Duration(sec=0, nanosec=20_000_000)
        msg.horizon, msg.action_dim = 500, 2
        msg.actions = [float(value)] * 1000
        msg.action_mode = "absolute"
        self.chunks.publish(msg)

    def logs(self, text: str) -> list[str]:
        return log_lines(self.rosout, self.node, text)

    def fault_count(self, cause: str) -> int:
        st = latest_status(self.diag, lambda name: name.startswith(self.node.get_name()))
        return 0 if st is None else int(status_values(st).get(f"fault.{cause}", 0))


def test_executor_rejects_and_counts_a_duplicated_joint(ros) -> None:
    rig = ExecutorRig(ros, "exec_duplicate")
    rig.send_chunk(0.3)
    assert ros.wait_until(lambda: bool(rig.out.messages) and rig.out.messages[-1].position[0] > 0.29)
    dup = JointState(name=["j1", "j2", "j1"], position=[0.0, 0.0, 5.0])
    for _ in range(4):
        dup.header.stamp = ros.helper.get_clock().now().to_msg()
        rig.states.publish(dup)
        time.sleep(0.02)
    assert ros.wait_until(lambda: rig.fault_count("state_duplicate") == 4), rig.fault_count("state_duplicate")
    (line,) = rig.logs("more than once")
    assert "joint(s) ['j1'] more than once (names ['j1', 'j2', 'j1'])" in line
    rig.out.clear()
    rig.out.wait_for(5)  # still commanding from the well-formed states
    assert all(abs(m.position[0] - 0.3) < 1e-6 for m in rig.out.messages)


@pytest.mark.parametrize(
    ("offset_ns", "cause", "needle"),
    [
        (None, "state_unstamped", "the driver does not stamp its joint_states (header.stamp is 0)"),
        (-HOUR_NS, "state_clock", "are 3600.0 s behind the executor clock"),
        (HOUR_NS, "state_clock", "are 3600.0 s ahead of the executor clock"),
    ],
    ids=["stamp_0", "hour_behind", "hour_ahead"],
)
def test_executor_names_the_clock_not_missing_joints(ros, offset_ns, cause, needle) -> None:
    rig = ExecutorRig(ros, f"exec_{cause}_{0 if offset_ns is None else offset_ns > 0}")
    rig.stamp_offset_ns = offset_ns
    rig.send_chunk(0.3)
    assert ros.wait_until(lambda: len(rig.logs(needle)) >= 1, timeout=10.0), [
        m.msg for m in rig.rosout.messages
    ]
    assert ros.wait_until(lambda: rig.fault_count(cause) > 5)
    time.sleep(0.3)
    assert len(rig.logs(needle)) == 1
    assert rig.logs("lacks joint") == [] and rig.logs("none received") == []
    assert rig.out.messages == []  # nothing commanded from a state whose time is a lie
    rig.stamp_offset_ns = 0  # the driver is fixed: the robot follows the chunk
    assert ros.wait_until(
        lambda: bool(rig.out.messages) and abs(rig.out.messages[-1].position[0] - 0.3) < 1e-6
    )
