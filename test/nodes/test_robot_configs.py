"""config/robots/*.yaml in the real nodes: every key declared, every value accepted, and the
executor arms against the robot's limits (real rclpy, real ~/arm service, real /joint_states).

Each file is applied as ``ros2 launch`` applies it: ``--ros-args --params-file FILE`` on the
node, whose ``/**/<node>`` section must reach it. Where a file leaves a joint's position limits
to the URDF (ALOHA's continuous gripper joints), the executor gets a small URDF made from the
same numbers, as robot_state_publisher would give it.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from support.policy_card import make_card  # noqa: E402
from test_executor_node import _call  # noqa: E402

ROBOTS_DIR = Path(__file__).resolve().parents[2] / "config" / "robots"
ROBOT_FILES = sorted(ROBOTS_DIR.glob("*.yaml"))
SECTIONS = ("/**/policy_node", "/**/executor_node", "/**/doctor_node")
# doctor start-up work irrelevant to which parameters exist (the file's values are range-checked)
DOCTOR_FAST = {"gpu": False, "live_s": 0.0, "period_s": 0.0}


def test_the_four_robots_have_files() -> None:
    assert {p.stem for p in ROBOT_FILES} == {"aloha", "fr3", "so101", "ur5e"}


def _flat(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A section's parameters as rcl reads them: nested maps flattened to dotted names."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _per_joint(section: dict[str, Any], names: list[str], field: str, default: float) -> list[float]:
    """The file's ``limits.<joint>.<field>`` for every joint (``default`` where it gives none)."""
    return [float(section.get(f"limits.{j}.{field}", default)) for j in names]


def _urdf(continuous: dict[str, float]) -> str:
    """A chain of ``continuous`` joints (name -> velocity limit [rad/s]) as a URDF string."""
    links = "".join(f'<link name="l{i}"/>' for i in range(len(continuous) + 1))
    joints = "".join(
        f'<joint name="{name}" type="continuous"><parent link="l{i}"/><child link="l{i + 1}"/>'
        f'<limit effort="1" velocity="{v!r}"/></joint>'
        for i, (name, v) in enumerate(continuous.items())
    )
    return f'<robot name="robot_config_test">{links}{joints}</robot>'


def _value(node: Any, name: str) -> Any:
    v = node.get_parameter(name).value
    return list(v) if not isinstance(v, str | bool | int | float) else v


def _assert_section_applied(node: Any, section: dict[str, Any], skip: set[str], where: str) -> None:
    declared = set(node.list_parameters([], 0).names)
    unknown = sorted(set(section) - declared)
    assert not unknown, f"{where} sets undeclared parameters {unknown}"
    for key, expected in section.items():
        if key in skip:
            continue
        got = _value(node, key)
        assert got == expected, f"{where} {key}: node has {got!r}, the file {expected!r}"


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``cards(n)``: a real ONNX card with n state and action joints (joint names j0..), cached."""
    made: dict[int, Path] = {}

    def get(n: int) -> Path:
        if n not in made:
            names = tuple(f"j{i}" for i in range(n))
            made[n] = make_card(
                tmp_path_factory.mktemp(f"card{n}"), state_joints=names, action_joints=names, nan_gate=False
            )
        return made[n]

    return get


class StateStream:
    """Publishes /joint_states (stamped now) at 50 Hz from the harness's helper node."""

    def __init__(self, ros: Any, names: list[str]) -> None:
        self.ros, self.names = ros, list(names)
        self.positions: list[float] = [0.0] * len(names)
        self._lock = threading.Lock()
        self.pub = ros.publisher("joint_states", JointState)
        self.timer = ros.helper.create_timer(0.02, self._publish)

    def set(self, positions: list[float]) -> None:
        with self._lock:
            self.positions = [float(p) for p in positions]
        self._publish()

    def _publish(self) -> None:
        with self._lock:
            msg = JointState(name=self.names, position=self.positions)
        msg.header.stamp = self.ros.helper.get_clock().now().to_msg()
        self.pub.publish(msg)


@pytest.mark.parametrize("path", ROBOT_FILES, ids=[p.stem for p in ROBOT_FILES])
def test_robot_file_loads_into_the_nodes_and_arms_within_its_limits(ros, cards, path: Path) -> None:
    from vla_ros.nodes.doctor_node import PARAMS as DOCTOR_PARAMS
    from vla_ros.nodes.doctor_node import DoctorNode
    from vla_ros.nodes.executor_node import ExecutorNode
    from vla_ros.nodes.policy_node import PolicyNode

    data = yaml.safe_load(path.read_text())
    assert set(data) == set(SECTIONS), f"{path}: sections {sorted(data)}"
    policy_s, exec_s, doctor_s = (_flat(data[k]["ros__parameters"]) for k in SECTIONS)
    cli = ["--ros-args", "--params-file", str(path)]
    names = list(exec_s["joint_names"])
    n = len(names)
    assert policy_s["action_joints"] == names and policy_s["state_joints"] == names

    # ---- policy_node: the file + a card of the robot's size (its joints renamed by the file)
    policy = PolicyNode(
        context=ros.context,
        cli_args=cli,
        parameter_overrides=[Parameter("card", value=str(cards(n))), Parameter("warmup", value=0)],
    )
    try:
        assert policy.load_error is None and policy.policy is not None
        assert list(policy.state_joints) == names and list(policy.action_joints) == names
        _assert_section_applied(policy, policy_s, {"card"}, f"{path.name} [policy_node]")
    finally:
        policy.destroy_node()

    # ---- doctor_node: the file, without the slow probes; the file's values pass the specs
    doctor = DoctorNode(
        context=ros.context,
        cli_args=cli,
        parameter_overrides=[Parameter(k, value=v) for k, v in DOCTOR_FAST.items()],
    )
    try:
        _assert_section_applied(doctor, doctor_s, set(DOCTOR_FAST), f"{path.name} [doctor_node]")
        specs = {s.name: s for s in DOCTOR_PARAMS}
        for key in set(DOCTOR_FAST) & set(doctor_s):
            specs[key].check(doctor_s[key])
    finally:
        doctor.destroy_node()

    # ---- executor_node: the file (+ a URDF for joints it leaves to the URDF)
    lower = _per_joint(exec_s, names, "lower", -math.inf)
    upper = _per_joint(exec_s, names, "upper", math.inf)
    velocity = _per_joint(exec_s, names, "velocity", math.inf)
    to_urdf = {j: velocity[i] for i, j in enumerate(names) if math.isinf(lower[i]) and math.isinf(upper[i])}
    overrides = [Parameter("robot_description", value=_urdf(to_urdf))] if to_urdf else []
    executor = ros.add_node(
        ExecutorNode("executor_node", context=ros.context, cli_args=cli, parameter_overrides=overrides)
    )
    _assert_section_applied(executor, exec_s, {"robot_description"}, f"{path.name} [executor_node]")
    limits = executor.controller.limits
    assert list(limits.names) == names
    assert limits.lower.tolist() == lower and limits.upper.tolist() == upper
    assert limits.max_velocity.tolist() == velocity
    assert limits.continuous == tuple(to_urdf)
    assert not executor.armed  # armed_on_start: false in every robot file

    inside = [0.0 if math.isinf(lo) else (lo + hi) / 2 for lo, hi in zip(lower, upper, strict=True)]
    bounded = [i for i in range(n) if not math.isinf(upper[i])]
    k = bounded[-1]
    outside = list(inside)
    outside[k] = upper[k] + 0.05
    state = StateStream(ros, names)
    ros.wait_for_subscribers(state.pub)
    client = ros.helper.create_client(SetBool, "/executor_node/arm")
    assert client.wait_for_service(timeout_sec=5.0)

    def measured_is(q: list[float]) -> bool:
        now = executor.get_clock().now().nanoseconds
        got = executor.controller.state.current(now)
        return got is not None and got.tolist() == q

    state.set(outside)
    assert ros.wait_until(lambda: measured_is(outside)), "the executor never saw the joint states"
    res = _call(ros, client, True)
    assert not res.success and not executor.armed
    assert f"'{names[k]}' at {outside[k]:.4g} outside" in res.message, res.message

    state.set(inside)
    assert ros.wait_until(lambda: measured_is(inside))
    res = _call(ros, client, True)
    assert res.success and executor.armed, res.message
    assert _call(ros, client, False).success
    ros.helper.destroy_timer(state.timer)


@pytest.mark.parametrize("path", ROBOT_FILES, ids=[p.stem for p in ROBOT_FILES])
def test_eval_reads_the_robot_file_with_the_same_values(path: Path) -> None:
    """`vla-ros eval BAG --params config/robots/NAME.yaml` replays with exactly the file's values."""
    from vla_ros.eval.setup import load_values

    data = yaml.safe_load(path.read_text())
    values = load_values(path)
    for section, got in (("/**/policy_node", values.policy), ("/**/executor_node", values.executor)):
        for key, expected in _flat(data[section]["ros__parameters"]).items():
            value = list(got[key]) if isinstance(got[key], list | tuple) else got[key]
            assert value == expected, f"{path.name} {section} {key}: eval has {value!r}"
