"""What a chunk contributes past its last action: nothing (issue 12 item 2).

Agreeing predictions must combine to the prediction itself in every mode, at chunk ends too.
"""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.control.controller import ChunkController, ControllerConfig
from vla_ros.control.ensemble import MODES
from vla_ros.control.safety import JointLimits

MS = 1_000_000


def _controller(mode: str, period_ns: int) -> ChunkController:
    cfg = ControllerConfig(joint_names=("a",), period_ns=period_ns, mode=mode, ensemble_coefficient=0.01)
    ctl = ChunkController(cfg, JointLimits.build(["a"]), armed=True)
    ctl.update_state(0, ["a"], [0.0])
    return ctl


def test_two_agreeing_chunks_ensemble_to_the_prediction_across_the_first_ones_end():
    """100 Hz; chunk A at 0.0 s, dt 0.1, values 0.0..0.9; chunk B at 0.5 s, 0.5..1.4: q(t) = t."""
    ctl = _controller("temporal_ensemble", 10 * MS)
    ctl.add_chunk(stamp_ns=0, dt_ns=100 * MS, joint_names=["a"], actions=np.arange(10) / 10)
    ctl.add_chunk(stamp_ns=500 * MS, dt_ns=100 * MS, joint_names=["a"], actions=0.5 + np.arange(10) / 10)
    out = {}
    for k in range(0, 141):
        t = k * 10 * MS
        ctl.update_state(t, ["a"], [t * 1e-9])
        cmd = ctl.tick(t)
        out[k] = cmd.positions[0]
    for k in (90, 95, 99, 100, 101, 120, 140):
        assert out[k] == pytest.approx(k / 100, abs=1e-12), k
    steps = np.diff([out[k] for k in range(0, 141)])
    np.testing.assert_allclose(steps, 0.01, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("every", "horizon"), [(1, 10), (3, 10), (7, 8), (10, 10)])
def test_a_stream_of_agreeing_chunks_gives_the_shared_prediction(mode, every, horizon):
    """Chunks predicting q(t) = sin(t) arrive every ``every`` ticks (dt = the period): the output
    equals sin(t) at every tick, for every mode (blend and latest switch between agreeing chunks)."""
    period = 20 * MS
    ctl = _controller(mode, period)
    ticks = 60
    for k in range(ticks):
        t = k * period
        if k % every == 0:
            times = (t + np.arange(horizon) * period) * 1e-9
            ctl.add_chunk(stamp_ns=t, dt_ns=period, joint_names=["a"], actions=np.sin(times))
        ctl.update_state(t, ["a"], [np.sin(t * 1e-9)])
        cmd = ctl.tick(t)
        assert not cmd.holding, (mode, k)
        assert cmd.positions[0] == pytest.approx(np.sin(t * 1e-9), abs=1e-12), (mode, k)


def test_one_chunk_per_step_stays_bit_exact_with_act_online_ensembling():
    """ACT's online temporal ensembling (n_action_steps = 1): at step t, average the predictions
    for t of the chunks from steps t-H+1 .. t with weights exp(-m*i), i = 0 the oldest."""
    period, horizon, m = 20 * MS, 5, 0.01
    cfg = ControllerConfig(joint_names=("a", "b"), period_ns=period, ensemble_coefficient=m)
    ctl = ChunkController(cfg, JointLimits.build(["a", "b"]), armed=True)
    ctl.update_state(0, ["a", "b"], [0.0, 0.0])
    rng = np.random.default_rng(3)
    chunks = []
    for step in range(20):
        chunk = rng.normal(size=(horizon, 2))
        chunks.append(chunk)
        ctl.add_chunk(stamp_ns=step * period, dt_ns=period, joint_names=["a", "b"], actions=chunk)
        ctl.update_state(step * period, ["a", "b"], [0.0, 0.0])
        got = ctl.tick(step * period).positions
        preds = np.stack([chunks[s][step - s] for s in range(max(0, step - horizon + 1), step + 1)])
        w = np.exp(-m * np.arange(len(preds)))
        w = w / w.sum()
        want = (preds * w[:, None]).sum(axis=0)
        assert got.tobytes() == want.tobytes(), step
