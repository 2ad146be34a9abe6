"""executor_node refuses to arm without finite position and velocity limits (real rclpy).

The refusal is visible three ways: the ~/arm reply says what is missing, one log line per cause
(/rosout), and ERROR on /diagnostics. armed_on_start with missing limits starts disarmed and
says why once. ``allow_unlimited: true`` (simulation/bench only) lifts it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from node_rigs import latest_status, log_lines, rosout_qos, status_values  # noqa: E402
from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from test_executor_node import NAMES, Rig, _call  # noqa: E402

# /rosout keeps its history for late joiners: the constructor's log lines are read too
ROSOUT_QOS = rosout_qos()

URDF = """<robot name="r"><link name="a"/><link name="b"/><link name="c"/>
  <joint name="j1" type="revolute"><parent link="a"/><child link="b"/>
    <limit lower="-1.0" upper="1.0" velocity="{v1}" effort="1"/></joint>
  <joint name="j2" type="continuous"><parent link="b"/><child link="c"/>
    <limit velocity="2.0" effort="1"/></joint>
</robot>"""


def _executor(ros, name, **params):
    from vla_ros.nodes.executor_node import ExecutorNode

    base = {
        "joint_names": NAMES,
        "control_rate_hz": 100.0,
        "armed_on_start": True,
        "state_timeout_s": 0.0,
        "diagnostics_period_s": 0.1,
    }
    base.update(params)
    overrides = [Parameter(k, value=v) for k, v in base.items()]
    return ros.add_node(ExecutorNode(name, context=ros.context, parameter_overrides=overrides))


def _status(diag, node):
    return latest_status(diag, lambda name: name.startswith(node.get_name()))


def test_refuses_to_arm_without_limits_then_arms_once_they_are_set(ros):
    logs = ros.subscribe("/rosout", Log, qos=ROSOUT_QOS)
    diag = ros.subscribe("/diagnostics", DiagnosticArray, qos=50)
    node = _executor(ros, "exec_no_limits", max_jump=[0.5])
    assert node.values["allow_unlimited"] is False  # the default
    rig = Rig(ros, node)
    rig.send_state([0.0, 0.0])
    rig.send_chunk(np.tile([0.2, 0.2], (300, 1)))
    assert ros.wait_until(lambda: node.last_command is not None)

    # armed_on_start ignored: disarmed, said once, nothing on the command topic
    assert not node.armed
    assert ros.wait_until(lambda: log_lines(logs, node, "armed_on_start ignored"))
    start = log_lines(logs, node, "armed_on_start ignored", Log.ERROR)
    assert len(start) == 1 and "no finite position limits for ['j1', 'j2']" in start[0]
    assert "no finite velocity limit for ['j1', 'j2']" in start[0] and "allow_unlimited" in start[0]

    assert ros.wait_until(lambda: _status(diag, node) is not None)
    status = _status(diag, node)
    assert status.level == DiagnosticStatus.ERROR and "refusing to arm" in status.message
    assert status_values(status)["limits"] == "incomplete"

    # ~/arm: refused, the reply says what is missing, one error line per call
    client = ros.helper.create_client(SetBool, f"/{node.get_name()}/arm")
    assert client.wait_for_service(timeout_sec=5.0)
    node.set_parameters([Parameter("max_velocity", value=[1.0])])
    res = _call(ros, client, True)
    assert not res.success and not node.armed
    assert "no finite position limits for ['j1', 'j2']" in res.message
    assert "no finite velocity" not in res.message
    assert ros.wait_until(lambda: len(log_lines(logs, node, "~/arm(True): refusing", Log.ERROR)) == 1)
    assert rig.out.messages == []

    # limits complete (live parameters): arming works, commands flow within the limits
    ok = node.set_parameters(
        [Parameter("position_lower", value=[-0.1]), Parameter("position_upper", value=[0.1])]
    )
    assert all(r.successful for r in ok)
    assert ros.wait_until(lambda: _status(diag, node).level != DiagnosticStatus.ERROR)
    res = _call(ros, client, True)
    assert res.success and node.armed
    rig.wait_positions(lambda q: np.allclose(q, [0.1, 0.1]))  # clipped to position_upper
    assert ros.wait_until(lambda: status_values(_status(diag, node))["limits"] == "ok")

    # while armed, a change that would leave a joint unlimited is rejected; limits stay
    bad = node.set_parameters([Parameter("max_velocity", value=[math.inf])])[0]
    assert not bad.successful and "armed" in bad.reason and "max_velocity" in bad.reason
    assert node.controller.limits.max_velocity.tolist() == [1.0, 1.0]
    assert list(node.get_parameter("max_velocity").value) == [1.0]
    # once disarmed it may be changed (and arming is refused again)
    assert _call(ros, client, False).success
    assert node.set_parameters([Parameter("max_velocity", value=[math.inf])])[0].successful
    res = _call(ros, client, True)
    assert not res.success and "no finite velocity limit for ['j1', 'j2']" in res.message


@pytest.mark.parametrize(("v1", "armed"), [("1.5", True), ("0", False)])
def test_urdf_limits_count_and_continuous_joints_need_only_velocity(ros, v1, armed):
    logs = ros.subscribe("/rosout", Log, qos=ROSOUT_QOS)
    node = _executor(ros, f"exec_urdf_{armed}", robot_description=URDF.format(v1=v1))
    assert node.armed is armed
    assert node.controller.limits.continuous == ("j2",)
    if not armed:  # URDF velocity="0" means "not given": j1 has no velocity limit
        assert ros.wait_until(lambda: log_lines(logs, node, "armed_on_start ignored"))
        line = log_lines(logs, node, "armed_on_start ignored")[0]
        assert "no finite velocity limit for ['j1']" in line and "no finite position" not in line
    else:
        rig = Rig(ros, node)
        rig.send_state([0.0, 0.0])
        rig.send_chunk(np.tile([5.0, 5.0], (300, 1)))
        rig.wait_positions(lambda q: q[0] == 1.0 and q[1] > 1.0)  # j1 clipped, j2 continuous


def test_allow_unlimited_arms_and_warns(ros):
    logs = ros.subscribe("/rosout", Log, qos=ROSOUT_QOS)
    diag = ros.subscribe("/diagnostics", DiagnosticArray, qos=50)
    node = _executor(ros, "exec_unlimited", allow_unlimited=True)
    assert node.armed
    assert ros.wait_until(lambda: log_lines(logs, node, "allow_unlimited: true", Log.WARN))
    assert "simulation/bench" in log_lines(logs, node, "allow_unlimited: true")[0]
    rig = Rig(ros, node, out_topic="vla/joint_command", out_type=JointState)
    rig.send_state([0.0, 0.0])
    rig.send_chunk(np.tile([3.0, -3.0], (300, 1)))
    rig.wait_positions(lambda q: np.allclose(q, [3.0, -3.0]))
    assert ros.wait_until(lambda: _status(diag, node) is not None)
    values = status_values(_status(diag, node))
    assert values["limits"] == "unlimited (allow_unlimited)"
    bad = node.set_parameters([Parameter("allow_unlimited", value=False)])[0]
    assert not bad.successful and "read-only" in bad.reason and node.values["allow_unlimited"] is True


def test_urdf_from_the_robot_description_topic(ros):
    """robot_state_publisher's latched URDF: limits arrive after start, bad ones are ignored."""
    from std_msgs.msg import String

    logs = ros.subscribe("/rosout", Log, qos=ROSOUT_QOS)
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    publisher = ros.make_node("robot_state_publisher_stand_in")
    pub = publisher.create_publisher(String, "robot_description", latched)
    node = _executor(ros, "exec_urdf_topic", armed_on_start=False)
    client = ros.helper.create_client(SetBool, f"/{node.get_name()}/arm")
    assert client.wait_for_service(timeout_sec=5.0)
    res = _call(ros, client, True)
    assert not res.success and "no finite position limits for ['j1', 'j2']" in res.message

    pub.publish(String(data=URDF.format(v1="1.5")))  # j1 [-1, 1] v 1.5; j2 continuous v 2
    assert ros.wait_until(lambda: node.controller.limits.max_velocity.tolist() == [1.5, 2.0])
    assert node.controller.limits.upper.tolist()[0] == 1.0
    assert ros.wait_until(lambda: log_lines(logs, node, "URDF from robot_description: 2 joints"))
    assert _call(ros, client, True).success and node.armed

    # not XML: ignored with one warning, the limits in force stay
    pub.publish(String(data="<robot"))
    assert ros.wait_until(lambda: log_lines(logs, node, "ignored URDF on robot_description", Log.WARN))
    assert "not valid XML" in log_lines(logs, node, "ignored URDF")[0]
    assert node.armed and node.controller.limits.max_velocity.tolist() == [1.5, 2.0]

    # armed: a URDF that leaves j1 without a velocity limit is refused, limits stay
    pub.publish(String(data=URDF.format(v1="0")))
    assert ros.wait_until(lambda: log_lines(logs, node, "the limits in force stay"))
    assert "no finite velocity limit for ['j1']" in log_lines(logs, node, "the limits in force stay")[0]
    assert node.armed and node.controller.limits.max_velocity.tolist() == [1.5, 2.0]

    # explicit parameters still win over the URDF
    assert node.set_parameters([Parameter("max_velocity", value=[0.5])])[0].successful
    pub.publish(String(data=URDF.format(v1="3.0")))
    assert ros.wait_until(lambda: len(log_lines(logs, node, "URDF from robot_description")) == 2)
    assert node.controller.limits.max_velocity.tolist() == [0.5, 0.5]


def test_robot_description_topic_can_be_switched_off(ros):
    on = _executor(ros, "exec_urdf_topic_on", armed_on_start=False)
    off = _executor(ros, "exec_no_urdf_topic", robot_description_topic="", armed_on_start=False)

    def topics(node):
        return [t for t, _ in node.get_subscriber_names_and_types_by_node(node.get_name(), "/")]

    assert ros.wait_until(lambda: "/robot_description" in topics(on))
    assert "/robot_description" not in topics(off)


def test_joint_outside_its_limits_refuses_to_arm_and_narrowing_under_it_is_refused(ros):
    """Issue 12 item 1, through the real node: SO-101 limits +-1.745, j1 measured at -3.0."""
    logs = ros.subscribe("/rosout", Log, qos=ROSOUT_QOS)
    node = _executor(
        ros,
        "exec_outside",
        armed_on_start=False,
        position_lower=[-1.745],
        position_upper=[1.745],
        max_velocity=[10.0],
        max_jump=[0.2],
        control_rate_hz=50.0,
        mode="latest",
    )
    rig = Rig(ros, node)
    rig.send_state([-3.0, 0.0])
    rig.send_chunk(np.tile([-3.0, 0.0], (300, 1)))
    client = ros.helper.create_client(SetBool, f"/{node.get_name()}/arm")
    assert client.wait_for_service(timeout_sec=5.0)
    assert ros.wait_until(lambda: node.controller is not None and node.controller.state.seen_any)
    res = _call(ros, client, True)
    assert not res.success and not node.armed
    assert "'j1' at -3 outside [-1.745, 1.745]" in res.message
    assert ros.wait_until(lambda: len(log_lines(logs, node, "~/arm(True): refusing to arm", Log.ERROR)) == 1)
    assert rig.out.messages == []  # nothing reached the robot

    # the joint is moved inside: arming works; narrowing the limit under the command is refused
    rig.send_state([0.95, 0.0])
    rig.send_chunk(np.tile([0.95, 0.0], (300, 1)), seq=1)
    assert ros.wait_until(lambda: _call(ros, client, True).success)
    rig.wait_positions(lambda q: np.allclose(q, [0.95, 0.0]))
    bad = node.set_parameters([Parameter("position_upper", value=[0.2])])[0]
    assert not bad.successful
    assert "current command of joint 'j1' at 0.95 outside [-1.745, 0.2]" in bad.reason
    assert node.controller.limits.upper.tolist() == [1.745, 1.745] and node.armed
    rig.out.clear()
    msgs = rig.out.wait_for(5)
    assert all(m.position[0] == pytest.approx(0.95) for m in msgs)  # no jump to 0.2
