"""Live-graph checks against a real rclpy graph: publishers at known rates (one at the wrong
rate), skewed stamps, incompatible QoS, sim time without /clock; and the doctor_node.

The graph runs on a small, possibly loaded CI machine: rates are modest, the wrong rate is far
from the expected one, tolerances and windows are generous, the timed window starts once every
publishing topic delivers, and the assertions are statuses that load cannot flip.
"""

from __future__ import annotations

import time

import pytest
from doctor_rig import doctor_node, start_doctor

from vla_ros.doctor.live import LiveObservation, TopicExpectation, live_checks, qos_incompatibility
from vla_ros.doctor.result import Status

pytestmark = pytest.mark.ros


def _periodic(ros, node, topic: str, msg_type, hz: float, fill, qos=10):
    pub = node.create_publisher(msg_type, topic, qos)

    def tick() -> None:
        msg = msg_type()
        fill(msg, node)
        pub.publish(msg)

    node.create_timer(1.0 / hz, tick)
    return pub


def _stamp(offset_s: float = 0.0):
    def fill(msg, node) -> None:
        t = node.get_clock().now().nanoseconds - int(offset_s * 1e9)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t, 1_000_000_000)

    return fill


def _sample(ros, expected, window=3.0, extra=(), delivering=()):
    """Sample for ``window`` s after every topic in ``delivering`` has delivered a message
    (discovery and matching take longer on a loaded machine)."""
    from vla_ros.doctor.live_ros import LiveSampler

    node = ros.make_node("doctor_probe")

    def graph() -> dict:
        return dict(node.get_topic_names_and_types())

    assert ros.wait_until(lambda: all(t in graph() for t in delivering), timeout=30.0), graph()
    sampler = LiveSampler(node, expected, extra_topics=extra)

    def delivered() -> bool:
        sampler.poll()
        return all(sampler.samples[t].count for t in delivering if t in sampler.samples)

    assert ros.wait_until(delivered, timeout=30.0), {t: s.count for t, s in sampler.samples.items()}
    end = time.monotonic() + window
    while time.monotonic() < end:
        sampler.poll()
        time.sleep(0.2)
    return sampler.finish()


def test_rates_clock_and_joints(ros) -> None:
    from sensor_msgs.msg import Imu, JointState

    from vla_ros.contract.card import Normalization, PolicyCard
    from vla_ros.contract.io_spec import IOSpec

    cam = ros.make_node("fake_camera")
    _periodic(ros, cam, "/cam/good", Imu, 5.0, _stamp())
    _periodic(ros, cam, "/cam/slow", Imu, 4.0, _stamp())  # expected at 20 Hz below
    _periodic(ros, cam, "/cam/skewed", Imu, 5.0, _stamp(offset_s=0.3))

    def joints(msg, node) -> None:
        _stamp()(msg, node)
        msg.name, msg.position = ["j1", "j2"], [0.0, 0.0]

    _periodic(ros, cam, "/joint_states", JointState, 5.0, joints)
    expected = [
        TopicExpectation("/cam/good", 5.0, tolerance=0.5),
        TopicExpectation("/cam/slow", 20.0),
        TopicExpectation("/cam/skewed"),
        TopicExpectation("/joint_states"),
        TopicExpectation("/nobody/publishes"),
    ]
    publishing = ("/cam/good", "/cam/slow", "/cam/skewed", "/joint_states")
    obs = _sample(ros, expected, delivering=publishing)
    card = PolicyCard(
        name="tiny",
        family="act",
        io=IOSpec(
            camera_names=("front",), image_size=(32, 32), state_dim=2, action_dim=3, horizon=4, dt=0.05
        ),
        state_joints=["j1", "j2"],
        action_joints=["j1", "j2", "gripper"],
        normalization=Normalization.identity(2, 3),
    )
    res = {r.id: r for r in live_checks(obs, expected, card)}

    assert res["live.topics"].status is Status.FAIL
    assert res["live.topics"].details["no_publisher"] == ["/nobody/publishes"]
    assert sorted(res["live.topics"].details["live"]) == sorted(publishing)
    rates = res["live.rates"]
    assert rates.status is Status.FAIL
    assert [s.split()[0] for s in rates.details["slow"]] == ["/cam/slow"], rates.details
    assert [s.split()[0] for s in rates.details["ok"]] == ["/cam/good"], rates.details
    # header stamps 300 ms old: a WARN (over 25 ms), far from the 1 s FAIL; transport latency
    # on a loaded machine only adds to every offset
    clock = res["live.clock"]
    offsets = clock.details["offsets"]
    assert clock.status is Status.WARN and "/cam/skewed" in clock.message, clock
    assert 300 <= offsets["/cam/skewed"]["median_ms"] < 1000
    assert 0 <= offsets["/cam/good"]["median_ms"] < offsets["/cam/skewed"]["median_ms"]
    joints_res = res["live.joints"]
    assert joints_res.status is Status.FAIL and joints_res.details["missing"] == ["gripper"]
    assert res["live.sim_time"].status is Status.PASS
    assert res["live.qos"].status is Status.PASS


def test_qos_incompatibility_and_sim_time_without_clock(ros) -> None:
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    talker = ros.make_node("best_effort_talker")
    be = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
    _periodic(ros, talker, "/status_text", String, 10.0, lambda m, n: None, qos=be)
    ros.make_node("reliable_listener").create_subscription(
        String, "/status_text", lambda m: None, QoSProfile(depth=5)
    )
    ros.make_node("sim_node_without_clock", parameter_overrides=[Parameter("use_sim_time", value=True)])
    obs = _sample(ros, [TopicExpectation("/status_text")], window=1.0, delivering=("/status_text",))
    res = {r.id: r for r in live_checks(obs, [TopicExpectation("/status_text")], None)}
    qos = res["live.qos"]
    assert qos.status is Status.FAIL
    assert "best_effort_talker" in qos.message and "reliable_listener" in qos.message
    sim = res["live.sim_time"]
    assert sim.status is Status.FAIL and "sim_node_without_clock" in sim.message
    assert res["live.topics"].status is Status.PASS  # the doctor's own subscription gets data


def test_qos_rules() -> None:
    rel = {
        "reliability": "RELIABLE",
        "durability": "VOLATILE",
        "deadline_ns": 0,
        "liveliness": "AUTOMATIC",
        "lease_ns": 0,
    }
    be = dict(rel, reliability="BEST_EFFORT")
    assert qos_incompatibility(rel, be) is None
    assert "BEST_EFFORT" in qos_incompatibility(be, rel)
    assert "TRANSIENT_LOCAL" in qos_incompatibility(rel, dict(rel, durability="TRANSIENT_LOCAL"))
    assert "deadline" in qos_incompatibility(rel, dict(rel, deadline_ns=10_000_000))
    assert qos_incompatibility(dict(rel, deadline_ns=5_000_000), dict(rel, deadline_ns=10_000_000)) is None


def test_expectation_parsing() -> None:
    e = TopicExpectation.parse("/camera/image_raw:30:0.1")
    assert (e.name, e.rate_hz, e.tolerance) == ("/camera/image_raw", 30.0, 0.1)
    assert TopicExpectation.parse("/joint_states").rate_hz is None
    for bad in ("camera", "/cam:abc", "/cam:-3", "/cam:30:2"):
        with pytest.raises(ValueError, match="topic expectation"):
            TopicExpectation.parse(bad)
    failed = live_checks(LiveObservation(1.0, error="rclpy.init failed"), [], None)
    assert failed[0].status is Status.FAIL


def test_doctor_node_publishes_diagnostics_and_serves_trigger(ros) -> None:
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from sensor_msgs.msg import Imu
    from std_srvs.srv import Trigger

    cam = ros.make_node("fake_camera_for_node")
    _periodic(ros, cam, "/cam/node_test", Imu, 5.0, _stamp())
    diags = ros.subscribe("/diagnostics", DiagnosticArray)
    start_doctor(
        ros,
        live_s=1.5,
        groups=["ros", "middleware", "live"],
        expected_topics=["/cam/node_test:5:0.5", "/cam/missing:30"],
    )
    arr = diags.wait_for(1, timeout=30.0)[0]
    by_name = {s.name: s for s in arr.status}
    assert "vla_ros doctor: summary" in by_name
    topics = by_name["vla_ros doctor: live.topics"]
    assert topics.level == DiagnosticStatus.ERROR and "/cam/missing" in topics.message
    values = {kv.key: kv.value for kv in topics.values}
    assert values["status"] == "FAIL" and values["fix"]
    assert by_name["vla_ros doctor: summary"].level == DiagnosticStatus.ERROR
    assert "vla_ros doctor: middleware.domain" in by_name

    client = ros.helper.create_client(Trigger, "/doctor_node/run_checks")
    assert client.wait_for_service(timeout_sec=10.0)
    fut = client.call_async(Trigger.Request())
    assert ros.wait_until(fut.done, timeout=60.0)
    resp = fut.result()
    assert resp.success is False and "live.topics" in resp.message and "PASS" in resp.message
    assert ros.wait_until(lambda: len(diags.messages) >= 2, timeout=30.0)


def test_doctor_node_parameters_and_card_checks(ros, card_copy) -> None:
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.exceptions import InvalidParameterValueException

    from vla_ros.nodes.doctor_node import PARAMS
    from vla_ros.nodes.params import declared_names

    card = card_copy("act")
    diags = ros.subscribe("/diagnostics", DiagnosticArray)
    node = start_doctor(ros, card=str(card), groups=["card"])
    assert {p.name for p in PARAMS} <= set(declared_names(node)) and "card_dir" not in declared_names(node)
    desc = node.describe_parameters(["card", "rate_tolerance"])
    assert desc[0].read_only and "policy card" in desc[0].description.lower()
    assert desc[1].floating_point_range[0].to_value < 1.0
    arr = diags.wait_for(1, timeout=60.0)[0]
    by_name = {s.name: s for s in arr.status}
    schema = by_name["vla_ros doctor: card.schema"]
    assert schema.level == DiagnosticStatus.OK and schema.message.startswith("act_tiny@")
    assert by_name["vla_ros doctor: card.files"].level == DiagnosticStatus.OK
    with pytest.raises(InvalidParameterValueException):
        doctor_node(ros, rate_tolerance=1.5)
    with pytest.raises(ValueError, match="unknown groups"):
        doctor_node(ros, groups=["cards"])
