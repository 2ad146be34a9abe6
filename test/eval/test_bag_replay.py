"""Real rosbag2 files (sqlite3 and mcap) through BagSource, and the policy pass's worker timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vla_ros.eval.bag import BagError, BagSource, resolve_topic
from vla_ros.eval.replay import ReplayTopics, replay_executor, replay_policy
from vla_ros.eval.setup import executor_setup, load_policy_step, load_values, replay_topics
from vla_ros.eval.simbag import write_sim_bag
from vla_ros.sim.cards import BUNDLED_CARD

MS = 1_000_000
CAMS = ("/camera/front/image_raw", "/camera/wrist/image_raw")


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_sim_bag_round_trip(tmp_path: Path, storage: str) -> None:
    path = write_sim_bag(tmp_path / "b", episodes=1, duration_s=1.0, storage=storage, delivery_s=0.003)
    with BagSource(path) as bag:
        topics = bag.topics()
        assert {t: i.count for t, i in topics.items()} == {
            CAMS[0]: 31,
            CAMS[1]: 31,
            "/joint_states": 101,
            "/vla/instruction": 1,
        }
        last = -1
        for log_ns, topic, msg in bag.messages([CAMS[0], "/joint_states"]):
            assert log_ns >= last
            last = log_ns
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            assert log_ns - stamp == 3 * MS  # log time = capture + the recorder's delivery delay
            if topic == CAMS[0]:
                assert (msg.height, msg.width, msg.encoding, msg.step) == (64, 64, "rgb8", 192)
            else:
                assert list(msg.name) == [f"joint_{i}" for i in range(1, 7)] and len(msg.position) == 6


def test_bag_errors_name_the_problem(tmp_path: Path, sim_bag: Path) -> None:
    with pytest.raises(BagError, match="does not exist; pass the folder `ros2 bag record -o` made"):
        BagSource(tmp_path / "nope")
    with pytest.raises(BagError, match="already exists"):
        write_sim_bag(sim_bag)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "metadata.yaml").write_text("not: a bag\n")
    with pytest.raises(BagError, match="cannot read bag"):
        BagSource(tmp_path / "junk")
    with pytest.raises(BagError, match="unknown ROS 2 distro 'foxxy'"):
        BagSource(sim_bag, distro="foxxy")
    with BagSource(sim_bag) as bag:
        with pytest.raises(
            BagError,
            match=r"no topic '/cam/top' for the camera 'top'; recorded topics: "
            r"/camera/front/image_raw \(sensor_msgs/msg/Image\).*set cameras",
        ):
            bag.require("/cam/top", ("sensor_msgs/msg/Image",), "camera 'top'", param="cameras")
        with pytest.raises(BagError, match=r"'/joint_states' .* is sensor_msgs/msg/JointState; it must be"):
            bag.require("/joint_states", ("sensor_msgs/msg/Image",), "camera 'x'", param="cameras")
    assert resolve_topic("joint_states", "/robot1") == "/robot1/joint_states"
    assert resolve_topic("/abs", "/robot1") == "/abs" and resolve_topic("x", "/") == "/x"


def test_setup_checks_topics_against_the_bag(sim_bag: Path) -> None:
    values = load_values(None, {"cameras": ["front=/camera/top/image_raw"]})
    step = load_policy_step(values.policy, BUNDLED_CARD)
    with BagSource(sim_bag) as bag:
        with pytest.raises(BagError, match=r"no topic '/camera/top/image_raw' for the camera 'front'"):
            replay_topics(values.policy, step, bag)
        with pytest.raises(BagError, match="no topic '/robot1/camera/front/image_raw'"):
            replay_topics(load_values(None).policy, step, bag, namespace="/robot1")


def _policy_pass(sim_bag: Path, **kwargs):
    values = load_values(None)
    step = load_policy_step(values.policy, BUNDLED_CARD)
    with BagSource(sim_bag) as bag:
        topics = replay_topics(values.policy, step, bag)
        return values, step, replay_policy(bag, step, topics, **kwargs)


def test_worker_is_busy_for_the_latency_and_never_overlaps(sim_bag: Path) -> None:
    """50 ms inferences on 30 Hz cameras: one inference at a time, frames in between skipped."""
    _, _, fast = _policy_pass(sim_bag, latency_ns=1 * MS)
    _, _, slow = _policy_pass(sim_bag, latency_ns=50 * MS)
    for trace, latency in ((fast, 1 * MS), (slow, 50 * MS)):
        starts = np.array([c.started_ns for c in trace.chunks])
        ready = np.array([c.ready_ns for c in trace.chunks])
        assert np.all(ready - starts == latency)
        assert np.all(starts[1:] >= ready[:-1])  # the next inference starts after the last ended
        assert trace.latency_mode == f"fixed {latency / MS:g} ms"
    # one chunk per camera frame pair when fast (minus the first, before any joint state)
    assert len(fast.chunks) >= 180
    # when slow, about one per 50 ms of recording (2 x 3 s), each on the newest frames
    assert 100 <= len(slow.chunks) <= 130
    assert slow.obs_to_ready_ms.max() < 50 + 34 + 3  # latency + at most one frame period + delivery


def test_rate_hz_steps_on_a_fixed_tick(sim_bag: Path) -> None:
    _, _, trace = _policy_pass(sim_bag, latency_ns=5 * MS, rate_hz=10.0)
    starts = np.array([c.started_ns for c in trace.chunks])
    assert np.all((starts - trace.start_ns) % (100 * MS) == 0)
    assert trace.steps == pytest.approx((trace.end_ns - trace.start_ns) / (100 * MS), abs=1)


def test_executor_pass_uses_the_executor_parameters(sim_bag: Path) -> None:
    values, step, trace = _policy_pass(sim_bag, latency_ns=10 * MS)
    setup = executor_setup(values.executor, step.action_joints)
    assert "would refuse to arm" in setup.note  # vla.yaml defaults ship without limits
    ex = replay_executor(trace, setup.core())
    assert ex.times_ns.size == pytest.approx(
        (trace.end_ns - trace.states[0].log_ns) / setup.config.period_ns, abs=1
    )
    delivered = [c for c in trace.chunks if c.ready_ns <= ex.times_ns[-1]]  # ready before the last tick
    assert len(ex.chunk_targets) == len(delivered) and not ex.rejected_chunks
    # between the two episodes no joint state arrives: the executor holds for lack of state
    assert ex.no_state.sum() > 100 and ex.fault_ticks
    slow = load_values(
        None,
        None,
        {"control_rate_hz": 50.0, "max_velocity": [0.1], "position_lower": [-3.0], "position_upper": [3.0]},
    )
    s2 = executor_setup(slow.executor, step.action_joints)
    assert "would refuse" not in s2.note and "v<=0.1" in s2.note
    ex2 = replay_executor(trace, s2.core())
    assert ex2.period_ns == 20 * MS
    v = np.abs(np.diff(ex2.positions, axis=0)) / 0.02
    assert np.nanmax(v) <= 0.1 + 1e-9  # the same safety filter limits every command


def test_replay_topics_default_reference_and_instruction(sim_bag: Path) -> None:
    t = ReplayTopics(cameras={"front": CAMS[0]}, joint_states="/joint_states")
    assert t.reference_topic == "/joint_states" and t.all() == [CAMS[0], "/joint_states"]
    _, step, trace = _policy_pass(sim_bag, latency_ns=1 * MS)
    assert step.instruction == "reach the red target"  # replayed from /vla/instruction
    assert trace.messages["/vla/instruction"] == 2 and len(trace.reference) == len(trace.states) == 602


def test_eval_imports_without_ros(tmp_path: Path) -> None:
    """eval/tune are part of the ROS-free install (setup.cfg excludes only vla_ros.nodes)."""
    import subprocess
    import sys

    code = (
        "import sys; import vla_ros.eval.cli, vla_ros.eval.tune_cli, vla_ros.eval.simbag; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'rcl_interfaces')]; "
        "bad += [m for m in sys.modules if m.startswith('vla_ros.nodes')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_rate_hz_overrun_runs_at_once_like_the_node_worker(sim_bag: Path) -> None:
    """150 ms inferences at 10 Hz: each run starts when the last ends (the node skips, never bursts)."""
    _, _, trace = _policy_pass(sim_bag, latency_ns=150 * MS, rate_hz=10.0)
    starts = np.array([c.started_ns for c in trace.chunks])
    gaps = np.diff(starts)
    within_episode = gaps[gaps < 1000 * MS]
    assert within_episode.size >= 30 and np.all(within_episode == 150 * MS)
