"""live.topics without ``--topic``: every visible topic is looked at, but only explicit
expectations FAIL. On the demo graph (sim + policy + executor) the doctor used to FAIL on
/vla/estop, /vla/instruction and /robot_description (inputs nobody publishes until an operator or
a driver does) and, as doctor_node alone, on its own /diagnostics."""

from __future__ import annotations

import pytest

from vla_ros.doctor.live import (
    LiveObservation,
    TopicExpectation,
    TopicSample,
    check_topics,
    is_optional_input,
)
from vla_ros.doctor.result import Status


def _topic(name: str, publishers: int, messages: int) -> TopicSample:
    return TopicSample(
        name,
        publishers=[{"node": f"/pub{i}"} for i in range(publishers)],
        subscribers=[{"node": "/sub"}],
        receive_ns=list(range(messages)),
    )


def _demo_graph() -> LiveObservation:
    topics = [
        _topic("/joint_states", 1, 100),
        _topic("/vla/action_chunk", 1, 30),
        _topic("/vla/estop", 0, 0),
        _topic("/vla/instruction", 0, 0),
        _topic("/robot_description", 0, 0),
        _topic("/arm/vla/estop", 0, 0),  # namespaced
    ]
    return LiveObservation(window_s=2.0, topics={t.name: t for t in topics})


def test_optional_inputs_are_listed_not_judged_without_expectations() -> None:
    res = check_topics(_demo_graph(), [])
    assert res.status is Status.PASS, res
    assert res.details["optional_idle"] == [
        "/arm/vla/estop",
        "/robot_description",
        "/vla/estop",
        "/vla/instruction",
    ]
    assert res.details["no_publisher"] == [] and res.details["live"] == ["/joint_states", "/vla/action_chunk"]
    assert "optional inputs not published now: /arm/vla/estop" in res.message


def test_other_quiet_topics_warn_without_expectations_and_fail_with_them() -> None:
    obs = _demo_graph()
    obs.topics["/camera/front/image_raw"] = _topic("/camera/front/image_raw", 0, 0)
    obs.topics["/executor_node/command_preview"] = _topic("/executor_node/command_preview", 1, 0)
    res = check_topics(obs, [])
    assert res.status is Status.WARN
    assert res.details["no_publisher"] == ["/camera/front/image_raw"]
    assert res.details["no_messages"] == ["/executor_node/command_preview"]
    assert "--topic NAME[:HZ]" in res.fix

    expected = [TopicExpectation("/camera/front/image_raw"), TopicExpectation("/vla/estop")]
    strict = check_topics(obs, expected)
    assert strict.status is Status.FAIL
    # named explicitly, an optional input must be live too
    assert strict.details["no_publisher"] == ["/camera/front/image_raw", "/vla/estop"]
    assert "--topic" not in strict.fix


@pytest.mark.parametrize(
    ("name", "optional"),
    [
        ("/vla/estop", True),
        ("/ns/vla/estop", True),
        ("/robot_description", True),
        ("/vla/estop_extra", False),
        ("/vla/action_chunk", False),
        ("/my_robot_description", False),
    ],
)
def test_optional_input_names(name: str, optional: bool) -> None:
    assert is_optional_input(name) is optional


@pytest.mark.ros
def test_a_topic_only_the_sampling_node_publishes_is_not_sampled(ros) -> None:
    import time

    from std_msgs.msg import String

    from vla_ros.doctor.live_ros import LiveSampler

    probe = ros.make_node("doctor_probe_self")
    probe.create_publisher(String, "/doctor_self_only", 10)  # like doctor_node's /diagnostics
    other = ros.make_node("other_talker")
    pub = other.create_publisher(String, "/doctor_other", 10)
    other.create_timer(0.1, lambda: pub.publish(String(data="x")))

    def seen() -> bool:
        graph = dict(probe.get_topic_names_and_types())
        return "/doctor_self_only" in graph and "/doctor_other" in graph

    assert ros.wait_until(seen, timeout=30.0)
    sampler = LiveSampler(probe, [])

    def delivered() -> bool:
        sampler.poll()
        return "/doctor_other" in sampler.samples and sampler.samples["/doctor_other"].count > 0

    assert ros.wait_until(delivered, timeout=30.0)
    time.sleep(0.2)
    obs = sampler.finish()
    assert "/doctor_self_only" not in obs.topics
    assert obs.topics["/doctor_other"].count > 0

    # named explicitly, it is sampled (and judged) like any other topic
    explicit = LiveSampler(probe, [TopicExpectation("/doctor_self_only")])
    explicit.poll()
    assert "/doctor_self_only" in explicit.finish().topics
