"""vla-ros eval on recordings whose stamps lie: the same diagnosis as the nodes (issue 12, section 4).

The demonstration bag is rewritten with real rosbags: recorded at wall-clock log times, with header
stamps of 0 (a driver that never stamps) or an hour behind (another clock). Both passes (the
policy's PolicyStep and the executor's controller) must name the lie, not a missing publisher.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vla_ros.eval.bag import BagSource
from vla_ros.eval.replay import replay_executor, replay_policy
from vla_ros.eval.setup import executor_setup, load_policy_step, load_values, replay_topics
from vla_ros.sim.cards import BUNDLED_CARD

NS = 1_000_000_000
WALL = 1_700_000_000 * NS  # the recording's log times: a wall-clock recorder


def _rewrite(src: Path, dst: Path, stamp: Callable[[int], int]) -> Path:
    """Copy ``src`` to ``dst`` with log times moved to ``WALL`` and header stamps ``stamp(log)``."""
    from rosbags.rosbag2 import Reader, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    Time = ts.types["builtin_interfaces/msg/Time"]
    with Reader(src) as reader, Writer(dst, version=9) as writer:
        conns = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=ts) for c in reader.connections}
        for conn, log_ns, raw in reader.messages():
            msg = ts.deserialize_cdr(raw, conn.msgtype)
            log = log_ns + WALL
            if hasattr(msg, "header"):
                sec, nanosec = divmod(stamp(log), NS)
                msg.header.stamp = Time(sec=sec, nanosec=nanosec)
            writer.write(conns[conn.id], log, ts.serialize_cdr(msg, conn.msgtype))
    return dst


@pytest.mark.parametrize(
    ("stamp", "policy_cause", "policy_text", "executor_cause"),
    [
        (
            lambda log: 0,
            "input:unstamped",
            "does not stamp its messages (header.stamp is 0)",
            "state_unstamped",
        ),
        (lambda log: log - 3600 * NS, "input:clock", "joint_states 3600.0 s behind", "state_clock"),
    ],
    ids=["stamp_0", "hour_behind"],
)
def test_eval_names_the_lie(sim_bag: Path, tmp_path: Path, stamp, policy_cause, policy_text, executor_cause):
    bag_path = _rewrite(sim_bag, tmp_path / "lying", stamp)
    lines: list[str] = []
    values = load_values(None)
    step = load_policy_step(values.policy, BUNDLED_CARD, log=lambda level, message: lines.append(message))
    with BagSource(bag_path) as bag:
        topics = replay_topics(values.policy, step, bag)
        trace = replay_policy(bag, step, topics, latency_ns=1_000_000)
    assert trace.chunks == []
    assert step.faults.total(policy_cause) > 0
    said = [m for m in lines if policy_text in m]
    assert len(said) == 1 and "publisher running" not in said[0]  # once per episode of the lie
    setup = executor_setup(values.executor, step.action_joints)
    ex = replay_executor(trace, setup.core())
    assert ex.fault_ticks[executor_cause] > 0
    assert not [c for c in ex.fault_ticks if c.startswith("state_missing")]
