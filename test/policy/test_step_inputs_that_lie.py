"""PolicyStep (the policy node minus ROS, as eval runs it) on inputs that lie: a joint named twice is
rejected and counted, a flapping publisher is one episode, and time lies are stale observations."""

from __future__ import annotations

import numpy as np
import pytest
from policy_msgs import image

from vla_ros.policy import ChunkResult, NoChunk, PolicyStep, make_assembler, staleness_limits
from vla_ros.runtime import load_runtime
from vla_ros.util.faults import FaultLog

MS = 1_000_000
T0 = 1_700_000_000 * 1_000 * MS
JOINTS = ("j1", "j2", "j3")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory):
    from support.policy_card import make_card

    return load_runtime(
        make_card(tmp_path_factory.mktemp("card") / "plain", nan_gate=False), backend="onnxruntime"
    )


class Logs(list):
    def __call__(self, level: str, message: str) -> None:
        self.append((level, message))

    def having(self, text: str) -> list[tuple[str, str]]:
        return [(lv, m) for lv, m in self if text in m]


def _step(runtime, faults: FaultLog | None = None) -> tuple[PolicyStep, Logs]:
    logs = Logs()
    assembler = make_assembler(runtime.card.io, JOINTS, staleness_limits(0.2, 0.1, 0.05))
    return PolicyStep(runtime, assembler, log=logs, faults=faults), logs


def _images(step: PolicyStep, t: int) -> None:
    px = np.full((24, 32, 3), 50, np.uint8)
    for cam in ("wrist", "top"):
        assert step.push_image(cam, t, image(t, px))


def test_a_duplicated_joint_is_rejected_counted_and_never_used(runtime) -> None:
    step, logs = _step(runtime)
    _images(step, T0)
    for _ in range(3):
        assert not step.push_joint_state(T0, ("j1", "j2", "j1", "j3"), (1.0, 2.0, -5.0, 3.0))
    assert step.stats.count("rejected_messages") == 3
    assert step.faults.active()["joint_states:duplicate"].count == 3
    assert len(logs.having("joint(s) ['j1'] more than once")) == 1
    result = step.run(T0 + MS)
    assert isinstance(result, NoChunk) and result.causes == ("input:joint_states:missing",)
    assert step.push_joint_state(T0, JOINTS, (1.0, 2.0, 3.0))  # fixed: accepted, the fault ends
    assert "joint_states:duplicate" not in step.faults.active()
    assert logs.having("recovered: joint_states:duplicate") == [("info", "recovered: joint_states:duplicate")]
    assert isinstance(step.run(T0 + MS), ChunkResult)


def test_a_publisher_alternating_good_and_duplicated_messages_is_one_episode(runtime) -> None:
    step, logs = _step(runtime, FaultLog(settle_ns=10_000 * MS, settle_prefixes=("joint_states:",)))
    for _ in range(10):
        assert step.push_joint_state(T0, JOINTS, (1.0, 2.0, 3.0))
        assert not step.push_joint_state(T0, ("j2", "j2"), (2.0, 2.0))
    assert len(logs.having("more than once")) == 1
    assert logs.having("recovered") == []
    assert step.stats.count("rejected_messages") == 10


def test_names_without_state_joints_are_not_stored_and_not_rejected(runtime) -> None:
    step, _ = _step(runtime)
    assert not step.push_joint_state(T0, ("wheel_left", "wheel_right"), (0.0, 0.0))
    assert step.stats.count("rejected_messages") == 0 and not step.faults.active()


@pytest.mark.parametrize(
    ("stamp", "cause", "text"),
    [
        (0, "input:unstamped", "the driver does not stamp its messages (header.stamp is 0)"),
        (T0 - 3600 * 1_000 * MS, "input:clock", "joint_states 3600.0 s behind"),
    ],
    ids=["stamp_0", "hour_behind"],
)
def test_time_lies_are_one_fault_and_counted_stale(runtime, stamp, cause, text) -> None:
    step, logs = _step(runtime)
    for k in range(3):
        _images(step, stamp)
        step.push_joint_state(stamp, JOINTS, (1.0, 2.0, 3.0))
        result = step.run(T0 + k * MS)
        assert isinstance(result, NoChunk) and result.causes == (cause,)
    assert text in result.message and "publisher running" not in result.message
    assert step.stats.count("stale_observations") == 3
    assert len(logs.having(text)) == 1
