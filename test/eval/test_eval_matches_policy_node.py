"""The replay is the node: the bag's observations published to a real policy_node give the chunks
that ``vla-ros eval``'s policy pass computes for the same observations, value for value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vla_ros.eval.bag import BagSource
from vla_ros.eval.replay import replay_policy
from vla_ros.eval.setup import load_policy_step, load_values, replay_topics
from vla_ros.sim.cards import BUNDLED_CARD

pytestmark = pytest.mark.ros

NS = 1_000_000_000
FRAMES = 12


def _stamp(msg) -> int:
    return msg.header.stamp.sec * NS + msg.header.stamp.nanosec


def test_policy_node_publishes_the_replayed_chunks(ros, sim_bag: Path) -> None:
    from array import array

    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image, JointState

    from vla_ros.msg import ActionChunk
    from vla_ros.nodes.policy_node import PolicyNode

    # the replay: chunks by observation stamp
    values = load_values(None)
    step = load_policy_step(values.policy, BUNDLED_CARD)
    with BagSource(sim_bag) as bag:
        topics = replay_topics(values.policy, step, bag)
        trace = replay_policy(bag, step, topics, latency_ns=1_000_000)
        # the first FRAMES camera frame pairs, each with the joint state recorded before it
        frames: list[tuple[object, dict[str, object]]] = []
        state, images = None, {}
        for _, topic, msg in bag.messages(topics.all()):
            if topic == topics.joint_states:
                state = msg
            elif topic in topics.cameras.values():
                images[topic] = msg
                if len(images) == 2 and state is not None:
                    frames.append((state, images))
                    images = {}
            if len(frames) == FRAMES:
                break
    replayed = {c.result.stamp_ns: c.result.actions for c in trace.chunks}

    # the node: the same card, the same observations re-stamped to the node's clock
    overrides = [
        Parameter("card", value=str(BUNDLED_CARD)),
        Parameter("warmup", value=0),
        Parameter("image_staleness_s", value=5.0),
        Parameter("state_staleness_s", value=5.0),
    ]
    node = ros.add_node(PolicyNode(context=ros.context, parameter_overrides=overrides))
    chunks = ros.subscribe("vla/action_chunk", ActionChunk)
    pubs = {t: ros.publisher(t.lstrip("/"), Image) for t in topics.cameras.values()}
    pubs["joint_states"] = ros.publisher("joint_states", JointState)
    for pub in pubs.values():
        ros.wait_for_subscribers(pub)
    assert node.camera_topics == {c: t.lstrip("/") for c, t in topics.cameras.items()}
    shift = ros.helper.get_clock().now().nanoseconds - _stamp(frames[0][0])

    def header(msg, out) -> None:
        out.header.stamp.sec, out.header.stamp.nanosec = divmod(_stamp(msg) + shift, NS)
        out.header.frame_id = msg.header.frame_id

    compared = 0
    for state, images in frames:
        js = JointState(name=list(state.name), position=[float(x) for x in state.position])
        header(state, js)
        pubs["joint_states"].publish(js)
        for topic, m in images.items():
            img = Image(
                height=m.height, width=m.width, encoding=m.encoding, is_bigendian=m.is_bigendian, step=m.step
            )
            img.data = array("B", m.data.tobytes())
            header(m, img)
            pubs[topic].publish(img)
        obs_stamp = min(_stamp(state), *(_stamp(m) for m in images.values()))

        def published(stamp: int = obs_stamp + shift):
            return next((c for c in list(chunks.messages) if _stamp(c) == stamp), None)

        assert ros.wait_until(lambda: published() is not None, 10.0), f"no chunk for observation {obs_stamp}"
        chunk = published()
        actions = np.asarray(chunk.actions, dtype=np.float32).reshape(chunk.horizon, chunk.action_dim)
        assert obs_stamp in replayed, f"the replay made no chunk for observation {obs_stamp}"
        np.testing.assert_allclose(actions, replayed[obs_stamp], rtol=0, atol=1e-6)
        assert chunk.action_mode == "delta" and list(chunk.joint_names) == list(step.action_joints)
        compared += 1
    assert compared == FRAMES
