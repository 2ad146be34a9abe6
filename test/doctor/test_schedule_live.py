"""doctor_node judges the inference delay from the policy node's measured latency (real rclpy).

A stand-in policy publishes real ``ActionChunk`` messages with a 60 ms latency (or only its
/diagnostics status, whose ``delay_ns`` estimate is 60 ms); the act_tiny card's chunk is 8
actions at dt 20 ms, so the delay is 3 steps, and an executor ``max_chunk_age_s`` of 0.04 s
leaves an execution horizon of 3: refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from doctor_rig import start_doctor

pytestmark = pytest.mark.ros

DELAY = "vla_ros doctor: card.delay"


def _judged_delay(ros, card: Path, params: Path, msg_type, topic: str, period_s: float, make_msg) -> dict:
    """The first card.delay status a doctor_node (``card``, executor ``params``) publishes that had
    a latency to judge (discovery may take a run), while a stand-in policy publishes
    ``make_msg(stamp)`` of ``msg_type`` on ``topic`` every ``period_s``."""
    from diagnostic_msgs.msg import DiagnosticArray

    policy = ros.make_node("stand_in_policy")
    pub = policy.create_publisher(msg_type, topic, 10)
    policy.create_timer(period_s, lambda: pub.publish(make_msg(policy.get_clock().now().to_msg())))
    diags = ros.subscribe("/diagnostics", DiagnosticArray)
    start_doctor(
        ros,
        period_s=1.0,
        live_s=1.0,
        groups=["card", "live"],
        card=str(card),
        params_file=str(params),
    )

    def found() -> dict | None:
        for arr in list(diags.messages):
            for s in arr.status:
                values = {kv.key: kv.value for kv in s.values}
                if s.name == DELAY and values["status"] != "SKIP":
                    return {**values, "level": s.level, "message": s.message}
        return None

    assert ros.wait_until(lambda: found() is not None, timeout=90.0), [
        [(s.name, s.message) for s in a.status if s.name == DELAY] for a in diags.messages
    ]
    return found()


@pytest.fixture
def short_age_params(tmp_path: Path) -> Path:
    p = tmp_path / "vla.yaml"
    p.write_text("/**/executor_node:\n  ros__parameters:\n    max_chunk_age_s: 0.04\n")
    return p


def test_node_reads_action_chunk_inference_latency(ros, card_copy, short_age_params) -> None:
    from diagnostic_msgs.msg import DiagnosticStatus

    from vla_ros.msg import ActionChunk

    def chunk(stamp) -> ActionChunk:
        msg = ActionChunk(policy_id="stand_in", horizon=8, action_dim=1, actions=[0.0] * 8)
        msg.dt.nanosec = 20_000_000
        msg.inference_latency.nanosec = 60_000_000
        msg.header.stamp = stamp
        return msg

    delay = _judged_delay(
        ros, card_copy("act"), short_age_params, ActionChunk, "/vla/action_chunk", 0.05, chunk
    )
    assert delay["status"] == "FAIL" and delay["level"] == DiagnosticStatus.ERROR
    assert json.loads(delay["delay_steps"]) == 3 and json.loads(delay["execution_horizon"]) == 3
    assert json.loads(delay["latency_ns"]) == 60_000_000
    assert delay["latency_source"].startswith("/vla/action_chunk")
    assert "max_chunk_age_s from 0.04 to >= 0.06 s" in delay["fix"]


def test_node_reads_the_policy_diagnostics_delay(ros, card_copy, short_age_params) -> None:
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    def diagnostics(stamp) -> DiagnosticArray:
        status = DiagnosticStatus(
            name="/policy_node: policy",
            values=[
                KeyValue(key="latency_p50_ms", value="20.000"),
                KeyValue(key="latency_p99_ms", value="200.000"),  # one slow chunk in the tail
                KeyValue(key="delay_steps", value="3"),
                KeyValue(key="delay_ns", value="60000000"),  # its estimate: p95 after warm-up
            ],
        )
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = stamp
        return arr

    delay = _judged_delay(
        ros, card_copy("act"), short_age_params, DiagnosticArray, "/diagnostics", 0.2, diagnostics
    )
    assert delay["status"] == "FAIL" and json.loads(delay["delay_steps"]) == 3
    assert delay["latency_source"] == "/diagnostics '/policy_node: policy' delay_ns"
    assert json.loads(delay["latency_ns"]) == 60_000_000
