"""ActionChunk topics in the live graph: the inference latency comes from the policy's chunks,
never from the executor's ``~/committed_actions`` (also an ActionChunk, inference_latency 0), and
no ActionChunk stamp is read as a clock offset (a chunk is stamped with its observation's time, a
committed-actions message with its first action's time: neither is a send time).

Before this was so, ``vla-ros doctor --live --card`` next to a 300 ms policy judged card.timing and
card.delay with 0 ms (from /executor_node/committed_actions, first in name order) and warned
"synchronize clocks" for /vla/action_chunk.
"""

from __future__ import annotations

import time

import pytest

from vla_ros.doctor.live import TopicExpectation, live_checks

pytestmark = pytest.mark.ros

LATENCY_NS = 300_000_000  # the policy's inference latency, and how old every chunk stamp is


def _chunk_publisher(node, topic: str, policy_id: str, latency_ns: int):
    from vla_ros.msg import ActionChunk

    pub = node.create_publisher(ActionChunk, topic, 10)

    def tick() -> None:
        msg = ActionChunk()
        t = node.get_clock().now().nanoseconds - LATENCY_NS
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t, 1_000_000_000)
        msg.policy_id = policy_id
        msg.joint_names = ["j1"]
        msg.dt.nanosec = 50_000_000
        msg.horizon, msg.action_dim = 2, 1
        msg.actions = [0.0, 0.0]
        msg.action_mode = "absolute"
        msg.inference_latency.sec, msg.inference_latency.nanosec = divmod(latency_ns, 1_000_000_000)
        pub.publish(msg)

    node.create_timer(0.2, tick)


def test_latency_from_policy_chunks_not_committed_actions_and_no_chunk_clock_offset(ros) -> None:
    from sensor_msgs.msg import Imu

    from vla_ros.doctor.live_ros import LiveSampler

    graph_node = ros.make_node("fake_graph")
    # the executor's topic first: it is the one found first when both carry latencies
    _chunk_publisher(graph_node, "/executor_node/committed_actions", "executor:/executor_node", 0)
    _chunk_publisher(graph_node, "/vla/action_chunk", "tiny@0123456789", LATENCY_NS)
    imu = graph_node.create_publisher(Imu, "/cam/good", 10)

    def imu_tick() -> None:
        msg = Imu()
        t = graph_node.get_clock().now().nanoseconds
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t, 1_000_000_000)
        imu.publish(msg)

    graph_node.create_timer(0.2, imu_tick)
    topics = ("/executor_node/committed_actions", "/vla/action_chunk", "/cam/good")
    expected = [TopicExpectation(t) for t in topics]

    probe = ros.make_node("doctor_probe")
    assert ros.wait_until(
        lambda: all(t in dict(probe.get_topic_names_and_types()) for t in topics), timeout=30.0
    )
    sampler = LiveSampler(probe, expected)

    def delivered() -> bool:
        sampler.poll()
        return all(t in sampler.samples and sampler.samples[t].count >= 3 for t in topics)

    assert ros.wait_until(delivered, timeout=30.0), {t: s.count for t, s in sampler.samples.items()}
    time.sleep(0.2)
    obs = sampler.finish()

    found = obs.inference_latency_s()
    assert found is not None
    latency_s, source = found
    assert latency_s == pytest.approx(LATENCY_NS / 1e9, abs=1e-9)
    assert source.startswith("/vla/action_chunk"), source
    assert obs.topics["/executor_node/committed_actions"].inference_latency_ns == []
    samples = obs.inference_latency_samples_ns()
    assert samples and set(samples) == {LATENCY_NS}

    # chunk stamps are 300 ms old by design: not clock offsets; the Imu's are
    assert obs.topics["/vla/action_chunk"].offsets_ns == []
    assert obs.topics["/executor_node/committed_actions"].offsets_ns == []
    assert obs.topics["/cam/good"].offsets_ns
    clock = {r.id: r for r in live_checks(obs, expected, None)}["live.clock"]
    assert set(clock.details["offsets"]) == {"/cam/good"}, clock.details
