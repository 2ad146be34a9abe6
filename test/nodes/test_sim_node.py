"""sim_node on real topics: it publishes state and images and follows position commands."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data

pytestmark = pytest.mark.ros


def _sim(ros, **overrides):
    from vla_ros.nodes.sim_node import SimNode

    params = [Parameter(k, value=v) for k, v in overrides.items()]
    return ros.add_node(SimNode(context=ros.context, parameter_overrides=params))


def test_publishes_state_and_images_and_follows_commands(ros):
    from sensor_msgs.msg import Image, JointState

    _sim(
        ros,
        cameras=["front", "wrist"],
        image_width=64,
        image_height=48,
        camera_rate_hz=20.0,
        time_constant=0.02,
    )
    states = ros.subscribe("/joint_states", JointState)
    images = {
        c: ros.subscribe(f"/camera/{c}/image_raw", Image, qos_profile_sensor_data) for c in ("front", "wrist")
    }
    (first,) = states.wait_for(1)
    assert list(first.name) == [f"joint_{i}" for i in range(1, 7)]
    for c, col in images.items():
        (img,) = col.wait_for(1)
        assert (img.height, img.width, img.encoding, img.step) == (48, 64, "rgb8", 192)
        assert len(img.data) == 48 * 64 * 3
        assert img.header.frame_id == f"{c}_camera"

    cmd_pub = ros.publisher("/vla/joint_command", JointState)
    ros.wait_for_subscribers(cmd_pub)
    goal = [0.3, 0.2, -0.4, 0.1, 0.0, -0.2]
    cmd = JointState(name=[f"joint_{i}" for i in range(1, 7)], position=goal)
    cmd_pub.publish(cmd)
    assert ros.wait_until(
        lambda: states.messages and np.allclose(states.messages[-1].position, goal, atol=1e-3), timeout=5.0
    ), f"arm did not reach {goal}: last state {list(states.messages[-1].position)}"


def test_bad_command_is_refused_and_the_arm_holds(ros):
    from sensor_msgs.msg import JointState

    node = _sim(ros, cameras=["front"], camera_rate_hz=1.0, image_width=32, image_height=32)
    states = ros.subscribe("/joint_states", JointState)
    states.wait_for(1)
    start = node.arm.target.copy()
    pub = ros.publisher("/vla/joint_command", JointState)
    ros.wait_for_subscribers(pub)
    pub.publish(JointState(name=["joint_1", "gripper"], position=[1.0, 0.0]))
    pub.publish(JointState(name=["joint_1"], position=[float("nan")]))
    assert ros.wait_until(lambda: node.commands_rejected == 2)
    np.testing.assert_array_equal(node.arm.target, start)
    assert ros.context.ok()


def test_topics_follow_the_namespace(ros):
    from sensor_msgs.msg import JointState

    from vla_ros.nodes.sim_node import SimNode

    node = SimNode(
        context=ros.context, parameter_overrides=[Parameter("cameras", value=["front"])], namespace="robot1"
    )
    ros.add_node(node)
    states = ros.subscribe("/robot1/joint_states", JointState)
    states.wait_for(1)
    names = {name for name, _ in node.get_topic_names_and_types()}
    assert {"/robot1/joint_states", "/robot1/camera/front/image_raw"} <= names
