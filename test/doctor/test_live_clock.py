"""live.sim_time: /clock published while no node uses sim time, and a /clock that stands still.

Pure checks on LiveObservation values, and one real rclpy graph with a /clock publisher.
"""

from __future__ import annotations

import pytest

from vla_ros.doctor.live import LiveObservation, check_sim_time
from vla_ros.doctor.result import Status


def test_clock_published_while_no_node_uses_sim_time_warns_naming_the_publisher() -> None:
    obs = LiveObservation(
        window_s=2.0,
        clock_publishers=1,
        clock_publisher_nodes=["/gazebo"],
        clock_messages=40,
        nodes_queried=["/policy_node", "/executor_node"],
    )
    res = check_sim_time(obs)
    assert res.status is Status.WARN
    assert res.message.startswith(
        "/clock is published by /gazebo but none of the 2 node(s) asked uses sim time"
    )
    assert "use_sim_time:=true on every node" in res.fix


def test_a_clock_that_stands_still_fails_for_sim_time_nodes() -> None:
    obs = LiveObservation(
        window_s=2.0,
        clock_publishers=1,
        clock_publisher_nodes=["/rosbag2_player"],
        clock_messages=0,
        sim_time_nodes=["/policy_node"],
    )
    res = check_sim_time(obs)
    assert res.status is Status.FAIL
    assert "/clock is published by /rosbag2_player but no message arrived in 2.0 s" in res.message
    assert "time stands still on /policy_node" in res.message


def test_wall_time_without_clock_and_sim_time_with_a_ticking_clock_pass() -> None:
    assert check_sim_time(LiveObservation(window_s=1.0)).status is Status.PASS
    ticking = LiveObservation(window_s=1.0, clock_publishers=1, clock_messages=10, sim_time_nodes=["/a"])
    assert check_sim_time(ticking).status is Status.PASS


@pytest.mark.ros
def test_real_graph_clock_publisher_without_sim_time_nodes(ros) -> None:
    import time

    from rosgraph_msgs.msg import Clock

    from vla_ros.doctor.live_ros import LiveSampler

    sim = ros.make_node("fake_simulator")
    pub = sim.create_publisher(Clock, "/clock", 10)
    ticks = [0]

    def tick() -> None:
        ticks[0] += 1
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(ticks[0] * 10_000_000, 1_000_000_000)
        pub.publish(msg)

    sim.create_timer(0.01, tick)
    ros.make_node("wall_time_node")  # use_sim_time false (the default)
    probe = ros.make_node("doctor_probe")
    assert ros.wait_until(lambda: "/clock" in dict(probe.get_topic_names_and_types()), timeout=30.0)
    sampler = LiveSampler(probe, [])
    assert ros.wait_until(lambda: (sampler.poll(), sampler.clock_messages > 0)[1], timeout=30.0)
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        sampler.poll()
        time.sleep(0.1)
    obs = sampler.finish()
    assert obs.clock_publisher_nodes == ["/fake_simulator"] and obs.clock_messages > 0
    assert "/wall_time_node" in obs.nodes_queried and obs.sim_time_nodes == []
    res = check_sim_time(obs)
    assert res.status is Status.WARN
    assert res.message.startswith("/clock is published by /fake_simulator but none of the")
