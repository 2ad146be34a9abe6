"""Real DDS round-trips between two rclpy nodes: our ActionChunk and the standard messages we use."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy

pytestmark = pytest.mark.ros


def _action_chunk(seq: int, horizon: int = 50, dim: int = 7):
    from builtin_interfaces.msg import Duration, Time

    from vla_ros.msg import ActionChunk

    rng = np.random.default_rng(seq)
    msg = ActionChunk()
    msg.header.stamp = Time(sec=1_700_000_000 + seq, nanosec=123_456_789)
    msg.header.frame_id = "base_link"
    msg.policy_id = "act_tiny@0123abcd"
    msg.seq = seq
    msg.joint_names = [f"joint_{i}" for i in range(dim)]
    msg.dt = Duration(sec=0, nanosec=20_000_000)
    msg.horizon = horizon
    msg.action_dim = dim
    msg.actions = rng.standard_normal(horizon * dim).astype(np.float32)
    msg.action_mode = "absolute"
    msg.inference_latency = Duration(sec=0, nanosec=41_000_000)
    return msg


def test_action_chunk_roundtrips_exactly(ros):
    from vla_ros.msg import ActionChunk

    ros.make_node("chunk_sender")  # a second node in the graph, as on a robot
    sender = ros.make_node("sender")
    pub = sender.create_publisher(ActionChunk, "/vla/action_chunk", 10)
    got = ros.subscribe("/vla/action_chunk", ActionChunk)
    ros.wait_for_subscribers(pub)

    sent = [_action_chunk(seq) for seq in range(5)]
    for msg in sent:
        pub.publish(msg)
    received = got.wait_for(5)

    for a, b in zip(sent, received, strict=True):
        assert b.header.stamp == a.header.stamp
        assert b.header.frame_id == a.header.frame_id
        assert (b.policy_id, b.seq, list(b.joint_names)) == (a.policy_id, a.seq, list(a.joint_names))
        assert (b.dt, b.inference_latency) == (a.dt, a.inference_latency)
        assert (b.horizon, b.action_dim, b.action_mode) == (a.horizon, a.action_dim, a.action_mode)
        arr = np.asarray(b.actions, dtype=np.float32)
        assert arr.dtype == np.float32 and arr.shape == (a.horizon * a.action_dim,)
        np.testing.assert_array_equal(arr, np.asarray(a.actions, dtype=np.float32))


def test_joint_state_roundtrips_exactly(ros):
    from sensor_msgs.msg import JointState

    pub = ros.publisher("/joint_states", JointState)
    got = ros.subscribe("/joint_states", JointState)
    ros.wait_for_subscribers(pub)
    msg = JointState()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 42, 7
    names, position, velocity = ["shoulder", "elbow", "wrist"], [0.1, -1.25, 3.0e-9], [0.0, 1.5, -2.5]
    msg.name, msg.position, msg.velocity, msg.effort = names, position, velocity, []
    pub.publish(msg)
    (b,) = got.wait_for(1)
    assert list(b.name) == names
    assert list(b.position) == position  # float64 travels bit-exact
    assert list(b.velocity) == velocity
    assert list(b.effort) == []
    assert (b.header.stamp.sec, b.header.stamp.nanosec) == (42, 7)


def test_three_camera_640x480_rgb8_burst(ros):
    """3 cameras x 10 frames of 640x480 rgb8 from one node to another: every byte arrives, in order."""
    from sensor_msgs.msg import Image

    cams, frames = ("front", "wrist", "top"), 10
    qos = QoSProfile(depth=frames, reliability=ReliabilityPolicy.RELIABLE)
    cam_node = ros.make_node("cameras")
    pubs = {c: cam_node.create_publisher(Image, f"/camera/{c}/image_raw", qos) for c in cams}
    subs = {c: ros.subscribe(f"/camera/{c}/image_raw", Image, qos) for c in cams}
    for p in pubs.values():
        ros.wait_for_subscribers(p)

    rng = np.random.default_rng(0)
    digests: dict[str, list[str]] = {c: [] for c in cams}
    for k in range(frames):
        for c in cams:
            pixels = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
            msg = Image(height=480, width=640, encoding="rgb8", is_bigendian=0, step=640 * 3)
            msg.header.stamp.sec, msg.header.stamp.nanosec = 100, k
            msg.header.frame_id = f"{c}_optical"
            msg.data = pixels.tobytes()
            digests[c].append(hashlib.sha256(msg.data).hexdigest())
            pubs[c].publish(msg)

    for c in cams:
        received = subs[c].wait_for(frames, timeout=20.0)
        assert [m.header.stamp.nanosec for m in received] == list(range(frames))
        for m, digest in zip(received, digests[c], strict=True):
            assert (m.height, m.width, m.encoding, m.step) == (480, 640, "rgb8", 1920)
            assert m.header.frame_id == f"{c}_optical"
            assert hashlib.sha256(bytes(m.data)).hexdigest() == digest
