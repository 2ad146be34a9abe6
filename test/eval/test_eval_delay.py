"""`vla-ros eval` reports the inference delay estimate and the expired chunks (right values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_ros.eval.bag import BagSource
from vla_ros.eval.metrics import Track, compute_metrics
from vla_ros.eval.replay import replay_executor, replay_policy
from vla_ros.eval.report import summary
from vla_ros.eval.setup import executor_setup, load_policy_step, load_values, replay_topics
from vla_ros.sim.cards import BUNDLED_CARD

MS = 1_000_000
DT = 50 * MS  # the bundled card: 10 actions x 50 ms (last action 450 ms after the stamp)


def _passes(sim_bag: Path, latency_ns: int):
    values = load_values(None)
    step = load_policy_step(values.policy, BUNDLED_CARD)
    with BagSource(sim_bag) as bag:
        trace = replay_policy(bag, step, replay_topics(values.policy, step, bag), latency_ns=latency_ns)
    setup = executor_setup(values.executor, step.action_joints)
    ex = replay_executor(trace, setup.core())
    reference = Track.from_samples(trace.reference, setup.config.joint_names)
    return trace, ex, compute_metrics(trace, ex, reference)


def test_delay_estimate_is_p95_of_the_chunk_latencies_without_the_first(sim_bag: Path) -> None:
    trace, ex, metrics = _passes(sim_bag, 120 * MS)
    latencies = [c.ready_ns - c.result.stamp_ns for c in trace.chunks][1:][-50:]
    p95 = sorted(latencies)[int(np.ceil(0.95 * len(latencies))) - 1]
    p = metrics["policy"]
    assert (p["delay_ns"], p["delay_samples"]) == (p95, len(latencies))
    assert p["delay_steps"] == -(-p95 // DT)
    assert 120 * MS < p95 <= 120 * MS + 67 * MS  # the latency + the observation's age (<= 2 frames)
    assert metrics["chunks"]["expired"] == 0 and ex.expired_chunks == 0
    text = summary(metrics, "t")
    want = f"inference delay {p['delay_steps']} chunk steps (p95 stamp->chunk {p95 / 1e6:.4g} ms over "
    assert want + f"{len(latencies)} chunks" in text


def test_chunks_slower_than_their_horizon_are_dropped_and_counted_never_replayed(sim_bag: Path) -> None:
    """500 ms latency > the 450 ms a chunk covers: every chunk delivered arrives expired."""
    trace, ex, metrics = _passes(sim_bag, 500 * MS)
    delivered = [c for c in trace.chunks if c.ready_ns <= ex.times_ns[-1]]
    assert len(delivered) > 10
    assert ex.expired_chunks == len(delivered) == metrics["chunks"]["expired"]
    assert ex.rejected_chunks["chunk_stale"] == len(delivered) and not ex.chunk_targets
    assert ex.holding.all()  # nothing replayed from a chunk's first action: the executor holds
    assert metrics["policy"]["delay_steps"] == 11  # >= 500 ms / 50 ms: longer than the horizon
    assert "0 accepted by the executor, " + str(len(delivered)) + " expired" in summary(metrics, "t")
