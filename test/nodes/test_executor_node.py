"""executor_node against real rclpy: real topics, services, parameters, /rosout log lines."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from builtin_interfaces.msg import Duration  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from node_rigs import SimClock, log_lines  # noqa: E402
from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

NAMES = ["j1", "j2"]
RATE = 100.0


def _msgs():
    from vla_ros.msg import ActionChunk

    return ActionChunk


def make_executor(ros, name, **params):
    from vla_ros.nodes.executor_node import ExecutorNode

    base = {
        "joint_names": NAMES,
        "control_rate_hz": RATE,
        "armed_on_start": True,
        "allow_unlimited": True,  # a bench: most tests run without full limits (see test_executor_arming)
        "state_timeout_s": 0.0,
        "log_repeat_s": 600.0,
    }
    base.update(params)
    overrides = [Parameter(k, value=v) for k, v in base.items()]
    node = ExecutorNode(name, context=ros.context, parameter_overrides=overrides)
    ros.add_node(node)
    return node


class Rig:
    """Publishers/subscribers around one executor node."""

    def __init__(self, ros, node, out_topic="vla/joint_command", out_type=JointState):
        self.ros, self.node = ros, node
        self._state_timer = None
        self.ActionChunk = _msgs()
        self.chunks = ros.publisher("vla/action_chunk", self.ActionChunk)
        self.states = ros.publisher("joint_states", JointState)
        self.estop = ros.publisher("vla/estop", Bool)
        self.out = ros.subscribe(out_topic, out_type)
        self.logs = ros.subscribe("/rosout", Log, qos=100)
        ros.wait_for_subscribers(self.chunks)
        ros.wait_for_subscribers(self.states)

    def now_ns(self) -> int:
        return self.ros.helper.get_clock().now().nanoseconds

    def send_state(self, positions, names=NAMES):
        """Stream this joint state at 50 Hz (joint_states is best effort, like on a robot)."""
        self._state = (list(names), [float(p) for p in positions])
        if self._state_timer is None:
            self._state_timer = self.ros.helper.create_timer(0.02, self._publish_state)
        self._publish_state()

    def _publish_state(self):
        names, positions = self._state
        msg = JointState(name=names, position=positions)
        msg.header.stamp = self.ros.helper.get_clock().now().to_msg()
        self.states.publish(msg)

    def send_chunk(self, actions, names=NAMES, dt_s=0.02, stamp_ns=None, seq=0, mode="absolute"):
        actions = np.asarray(actions, dtype=np.float32)
        msg = self.ActionChunk()
        t = self.now_ns() if stamp_ns is None else stamp_ns
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t, 1_000_000_000)
        msg.policy_id = "test@0"
        msg.seq = seq
        msg.joint_names = list(names)
        dt_ns = round(dt_s * 1e9)
        msg.dt = Duration(sec=dt_ns // 1_000_000_000, nanosec=dt_ns % 1_000_000_000)
        msg.horizon, msg.action_dim = actions.shape
        msg.actions = actions.ravel().tolist()
        msg.action_mode = mode
        self.chunks.publish(msg)

    def wait_positions(self, predicate, timeout=5.0):
        ok = self.ros.wait_until(
            lambda: bool(self.out.messages) and predicate(np.array(self.out.messages[-1].position)),
            timeout,
        )
        last = self.out.messages[-1].position if self.out.messages else None
        assert ok, f"commands never satisfied the condition; last {last}"

    def log_lines(self, text: str) -> list[str]:
        return log_lines(self.logs, self.node, text)


def test_follows_chunk_and_reorders_joints(ros):
    node = make_executor(ros, "exec_follow", mode="latest")
    rig = Rig(ros, node)
    rig.send_state([0.0, 0.0])
    rig.send_chunk(np.tile([0.1, 0.2], (200, 1)))
    rig.wait_positions(lambda q: np.allclose(q, [0.1, 0.2]))
    msg = rig.out.messages[-1]
    assert list(msg.name) == NAMES
    rig.send_chunk(np.tile([0.4, 0.3], (200, 1)), names=["j2", "j1"], seq=1)
    rig.wait_positions(lambda q: np.allclose(q, [0.3, 0.4]))


def test_nan_chunk_rejected_once_logged_node_alive(ros):
    node = make_executor(ros, "exec_nan")
    rig = Rig(ros, node)
    rig.send_state([0.5, -0.5])
    for i in range(5):
        rig.send_chunk([[math.nan, 0.0]] * 10, seq=i)
    rig.out.wait_for(20)
    assert ros.wait_until(lambda: len(rig.log_lines("non-finite")) >= 1)
    positions = np.array([m.position for m in rig.out.messages])
    np.testing.assert_array_equal(positions, np.tile([0.5, -0.5], (len(positions), 1)))
    assert len(rig.log_lines("non-finite")) == 1
    rig.send_chunk(np.tile([0.1, 0.1], (100, 1)), seq=9)
    rig.wait_positions(lambda q: np.allclose(q, [0.1, 0.1]))


def test_foreign_joint_names_rejected(ros):
    node = make_executor(ros, "exec_foreign")
    rig = Rig(ros, node)
    rig.send_state([0.0, 0.0])
    for i in range(3):
        rig.send_chunk(np.ones((50, 2)), names=["j1", "elbow"], seq=i)
    assert ros.wait_until(lambda: len(rig.log_lines("do not match")) >= 1)
    rig.out.wait_for(10)
    assert all(np.allclose(m.position, [0.0, 0.0]) for m in rig.out.messages)
    assert len(rig.log_lines("do not match")) == 1


def test_joint_states_missing_a_joint_commands_nothing(ros):
    node = make_executor(ros, "exec_missing")
    rig = Rig(ros, node)
    rig.send_state([0.0], names=["j1"])
    rig.send_chunk(np.ones((200, 2)))
    assert ros.wait_until(lambda: len(rig.log_lines("lacks joint")) >= 1)
    assert "'j2'" in rig.log_lines("lacks joint")[0]
    assert rig.out.messages == []
    rig.send_state([0.0, 0.0])
    rig.wait_positions(lambda q: np.allclose(q, [1.0, 1.0]))
    assert len(rig.log_lines("lacks joint")) == 1


def test_estop_latches_hold_and_arm_service(ros):
    node = make_executor(ros, "exec_estop", max_velocity=[0.5])
    rig = Rig(ros, node)
    rig.send_state([0.0, 0.0])
    rig.send_chunk(np.tile([1.0, 1.0], (500, 1)))
    rig.wait_positions(lambda q: q[0] > 0.02)
    rig.estop.publish(Bool(data=True))
    assert ros.wait_until(lambda: node.controller.estop_latched)
    # armed -> disarmed by the e-stop: the node stops publishing commands after holding
    assert ros.wait_until(lambda: not node.armed)
    n = node.published  # counted at the publisher: messages still in flight do not blur it
    assert ros.wait_until(lambda: len(rig.log_lines("e-stop")) >= 1)
    client = ros.helper.create_client(SetBool, f"/{node.get_name()}/arm")
    assert client.wait_for_service(timeout_sec=5.0)
    res = _call(ros, client, True)
    assert not res.success and "still active" in res.message
    rig.estop.publish(Bool(data=False))
    assert ros.wait_until(lambda: not node.controller.estop_input)
    frozen = np.array(rig.out.messages[-1].position)
    assert node.published <= n + 1  # nothing published while the e-stop held (one tick in flight)
    res = _call(ros, client, True)
    assert res.success
    rig.wait_positions(lambda q: q[0] > frozen[0] + 0.02)


def _call(ros, client, value):
    future = client.call_async(SetBool.Request(data=value))
    assert ros.wait_until(future.done, timeout=5.0), "service call timed out"
    return future.result()


def test_policy_killed_watchdog_holds(ros):
    node = make_executor(ros, "exec_watchdog", max_velocity=[1.0])
    rig = Rig(ros, node)
    rig.send_state([0.0, 0.0])
    policy = ros.make_node("fake_policy")
    pub = policy.create_publisher(rig.ActionChunk, "vla/action_chunk", 10)
    seq = [0]

    def publish():
        rig.chunks = pub
        # 0.5 s horizon: a loaded test machine delaying this 20 Hz timer must not expire the chunks
        rig.send_chunk([[0.2 + 0.002 * i, 0.0] for i in range(50)], dt_s=0.01, seq=seq[0])
        seq[0] += 1

    policy.create_timer(0.05, publish)
    diag = ros.subscribe("/diagnostics", DiagnosticArray)  # matched before the fault, not after
    rig.wait_positions(lambda q: q[0] > 0.1)
    time.sleep(1.5)  # the policy runs a while (a hold logged at start-up is a past episode)
    before = len(rig.log_lines("no live action chunk"))  # 0 or 1: the start-up hold
    ros.remove_node(policy)
    diag.clear()
    assert ros.wait_until(
        lambda: any(
            "no_live_chunk" in s.message
            for m in diag.messages
            for s in m.status
            if s.name.startswith("exec_watchdog")
        ),
        timeout=15.0,
    ), [s.message for m in diag.messages for s in m.status if s.name.startswith("exec_watchdog")]
    rig.out.clear()
    msgs = rig.out.wait_for(10)
    assert all(m.position == msgs[0].position for m in msgs)
    assert all(v == 0.0 for m in msgs for v in m.velocity)
    assert len(rig.log_lines("no live action chunk")) == before + 1  # one line for this episode


def test_flood_of_chunks_keeps_running(ros):
    node = make_executor(ros, "exec_flood", max_chunks=8)
    rig = Rig(ros, node)
    rig.send_state([0.0, 0.0])
    t0 = rig.now_ns()
    for i in range(300):
        rig.send_chunk(np.tile([0.3, 0.3], (100, 1)), stamp_ns=t0 + i * 1000, seq=i)
    rig.wait_positions(lambda q: np.allclose(q, [0.3, 0.3]))
    assert len(node.controller.buffer) <= 8
    rig.out.clear()
    rig.out.wait_for(5)


def test_dry_run_publishes_preview_only(ros):
    node = make_executor(ros, "exec_dry", dry_run=True)
    rig = Rig(ros, node)
    preview = ros.subscribe(f"/{node.get_name()}/command_preview", JointState)
    rig.send_state([0.0, 0.0])
    rig.send_chunk(np.tile([0.2, 0.2], (100, 1)))
    assert ros.wait_until(lambda: preview.messages and np.allclose(preview.messages[-1].position, [0.2, 0.2]))
    assert rig.out.messages == []


def test_starts_disarmed_by_default(ros):
    node = make_executor(ros, "exec_disarmed", armed_on_start=False)
    rig = Rig(ros, node)
    rig.send_state([0.0, 0.0])
    rig.send_chunk(np.tile([0.2, 0.2], (100, 1)))
    assert ros.wait_until(lambda: node.last_command is not None)
    assert not node.armed and rig.out.messages == []
    client = ros.helper.create_client(SetBool, f"/{node.get_name()}/arm")
    assert client.wait_for_service(timeout_sec=5.0)
    assert _call(ros, client, True).success
    rig.wait_positions(lambda q: np.allclose(q, [0.2, 0.2]))


def test_parameters_live_changes_validated(ros):
    node = make_executor(ros, "exec_params", max_velocity=[1.0])
    ok = node.set_parameters([Parameter("speed_scale", value=0.5)])[0]
    assert ok.successful and node.controller.filter.speed_scale == 0.5
    bad = node.set_parameters([Parameter("speed_scale", value=2.0)])[0]
    assert not bad.successful and "speed_scale" in bad.reason
    bad = node.set_parameters([Parameter("max_velocity", value=[1.0, 2.0, 3.0])])[0]
    assert not bad.successful and "3 values but there are 2 joints" in bad.reason
    ok2 = node.set_parameters([Parameter("position_upper", value=[1.0])])[0]
    assert ok2.successful and node.controller.limits.upper.tolist() == [1.0, 1.0]
    bad = node.set_parameters([Parameter("position_lower", value=[2.0])])[0]
    assert not bad.successful and "position_lower 2.0 > position_upper 1.0" in bad.reason
    bad = node.set_parameters([Parameter("mode", value="latest")])[0]
    assert not bad.successful and "read-only" in bad.reason
    assert node.get_parameter("mode").value == "temporal_ensemble"
    desc = node.describe_parameter("ensemble_coefficient")
    assert desc.description and not desc.read_only and desc.floating_point_range


@pytest.mark.parametrize(
    ("output_type", "topic", "msg_type"),
    [
        ("float64_multi_array", "commands", Float64MultiArray),
        ("joint_trajectory", "joint_trajectory", JointTrajectory),
    ],
)
def test_output_types(ros, output_type, topic, msg_type):
    node = make_executor(
        ros, f"exec_{output_type}", output_type=output_type, trajectory_points=5, max_velocity=[10.0]
    )
    rig = Rig(ros, node, out_topic=topic, out_type=msg_type)
    rig.send_state([0.0, 0.0])
    ramp = np.stack([np.linspace(0, 1, 200), np.zeros(200)], axis=1)
    rig.send_chunk(ramp)
    msgs = rig.out.wait_for(5)
    if output_type == "float64_multi_array":
        assert len(msgs[-1].data) == 2
    else:
        traj = msgs[-1]
        assert list(traj.joint_names) == NAMES
        assert ros.wait_until(lambda: len(rig.out.messages[-1].points) == 5)
        pts = rig.out.messages[-1].points
        times = [p.time_from_start.nanosec for p in pts]
        assert times == [10_000_000 * k for k in range(1, 6)]
        assert pts[-1].positions[0] > pts[0].positions[0]


def test_bad_parameters_fail_at_start_with_reason(ros):
    from vla_ros.control.controller import ConfigError

    with pytest.raises(ConfigError, match=r"output_type='velocity' is not one of"):
        make_executor(ros, "exec_bad", output_type="velocity")
    with pytest.raises(ConfigError, match="not valid XML"):
        make_executor(ros, "exec_bad2", robot_description="<robot")


def test_clock_jumping_backwards_holds_and_recovers(ros):
    node = make_executor(ros, "exec_clock", mode="latest", use_sim_time=True)
    rig = Rig(ros, node)
    clock = SimClock(ros, 100 * 10**9, period_s=0.005)
    ros.wait_for_subscribers(clock.pub)
    with clock:
        assert ros.wait_until(lambda: node.get_clock().now().nanoseconds > 100 * 10**9)
        rig.send_state([0.0, 0.0])
        rig.send_chunk(np.tile([0.25, 0.25], (450, 1)), stamp_ns=clock.t_ns)
        rig.wait_positions(lambda q: np.allclose(q, [0.25, 0.25]))
        clock.t_ns = 50 * 10**9  # the bag looped / sim restarted
        assert ros.wait_until(lambda: len(rig.log_lines("clock jumped backwards")) >= 1)
        assert ros.wait_until(lambda: node.last_command.holding)
        np.testing.assert_allclose(node.last_command.positions, [0.25, 0.25])
        assert len(node.controller.buffer) == 0
        rig.send_state([0.25, 0.25])
        rig.send_chunk(np.tile([0.5, 0.5], (450, 1)), stamp_ns=clock.t_ns, seq=1)
        rig.wait_positions(lambda q: np.allclose(q, [0.5, 0.5]))
        assert len(rig.log_lines("clock jumped backwards")) == 1


def test_any_chunk_stream_through_the_node_respects_limits(ros):
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    lower, upper, vmax, jump = [-0.4, -0.2], [0.4, 0.2], [2.0, 1.0], [0.3, 0.3]
    node = make_executor(
        ros,
        "exec_prop",
        position_lower=lower,
        position_upper=upper,
        max_velocity=vmax,
        max_jump=jump,
        mode="temporal_ensemble",
    )
    rig = Rig(ros, node)
    rig.send_state([0.0, 0.0])
    value = st.one_of(st.floats(-3, 3), st.sampled_from([math.nan, math.inf, -1e30]))
    chunk = st.tuples(
        st.lists(st.lists(value, min_size=2, max_size=2), min_size=1, max_size=20),
        st.integers(-50, 50),  # stamp offset [ms]
        st.booleans(),  # swapped joint order
    )

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(chunk, min_size=1, max_size=6))
    @example([([[0.3, 0.15]] * 20, 0, False), ([[-0.5, 2.0]] * 20, 10, True)])
    def check(chunks):
        for i, (actions, offset_ms, swap) in enumerate(chunks):
            names = NAMES[::-1] if swap else NAMES
            rig.send_chunk(actions, names=names, stamp_ns=rig.now_ns() + offset_ms * 10**6, seq=i)
        n = len(rig.out.messages)
        rig.out.wait_for(n + 5)

    check()
    q = np.array([m.position for m in rig.out.messages])
    assert len(q) > 60
    assert np.all(np.isfinite(q))
    assert np.all(q >= np.array(lower)) and np.all(q <= np.array(upper))
    assert np.all(np.abs(q) <= np.array(jump) + 1e-12)  # measured stays at 0
    step = np.abs(np.diff(q, axis=0))
    assert np.all(step <= np.array(vmax) / RATE + 1e-12)
    assert np.any(q != 0.0)  # the stream did move the robot (the check is not vacuous)


URDF = """<robot name="r"><link name="a"/><link name="b"/><link name="c"/>
<joint name="j1" type="revolute"><parent link="a"/><child link="b"/>
  <limit lower="-0.1" upper="0.1" velocity="5.0" effort="1"/></joint>
<joint name="j2" type="prismatic"><parent link="b"/><child link="c"/>
  <limit lower="0.0" upper="0.05" velocity="5.0" effort="1"/></joint></robot>"""


@pytest.mark.parametrize("timer", ["thread", "ros_timer"])
def test_urdf_limits_clip_commands(ros, timer):
    node = make_executor(ros, f"exec_urdf_{timer}", robot_description=URDF, timer=timer)
    assert node.controller.limits.upper.tolist() == [0.1, 0.05]
    assert (node._thread is not None) == (timer == "thread")
    rig = Rig(ros, node)
    rig.send_state([0.0, 0.0])
    rig.send_chunk(np.tile([1.0, -1.0], (200, 1)))
    rig.wait_positions(lambda q: np.allclose(q, [0.1, 0.0]))
    assert all(m.position[0] <= 0.1 and m.position[1] >= 0.0 for m in rig.out.messages)


def test_delta_chunk_is_relative_to_state_at_its_stamp(ros):
    node = make_executor(ros, "exec_delta", mode="latest")
    rig = Rig(ros, node)
    rig.send_state([0.2, -0.1])
    assert ros.wait_until(lambda: node.controller.state.current(rig.now_ns()) is not None)
    rig.send_chunk(np.tile([0.05, 0.05], (200, 1)), mode="delta")
    rig.wait_positions(lambda q: np.allclose(q, [0.25, -0.05], atol=1e-6))


def test_destroy_stops_the_control_thread(ros):
    node = make_executor(ros, "exec_destroy")
    thread = node._thread
    assert thread is not None and thread.is_alive()
    ros.remove_node(node)
    assert not thread.is_alive()


def test_diagnostics_keep_coming_when_the_sim_clock_stands_still(ros):
    """use_sim_time with no /clock (or one that stopped): control stands, /diagnostics does not."""
    diag = ros.subscribe("/diagnostics", DiagnosticArray)
    node = make_executor(ros, "exec_still_clock", use_sim_time=True, diagnostics_period_s=0.1)
    assert node.get_clock().now().nanoseconds == 0  # no /clock message ever arrived
    assert ros.wait_until(
        lambda: sum(1 for m in diag.messages for s in m.status if s.name.startswith("exec_still_clock")) >= 3
    )
