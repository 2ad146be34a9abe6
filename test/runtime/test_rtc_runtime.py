"""Real-time chunking through the runtimes: ``Observation.committed_actions`` (raw, absolute)
-> the model's space -> the conditioned / guided step graph, on ONNX Runtime and torch.

The cards are ramp-trained tiny policies (test/spine/rtc_helpers.py) with non-identity
statistics; the conditioned one predicts delta actions, so the conversion (subtract the
state, normalize) is exercised end to end: the right value is the committed prefix itself.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spine"))
from rtc_helpers import ACTION_STATS, STATE_STATS, ramps, rtc_card

from vla_ros.contract.errors import ObservationError
from vla_ros.runtime import Observation, load_runtime

pytestmark = pytest.mark.slow
BACKENDS = ("onnxruntime", "torch")


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    root = tmp_path_factory.mktemp("rtc_cards")
    return {k: rtc_card(k, root) for k in ("conditioned", "guided", "plain")}


def _cases(card, n: int = 8, d: int = 3):
    """``n`` observations with a raw ramp chunk each (the truth) and its first ``d`` actions
    committed; raw = normalized ramp * std + mean (+ the state for the delta card)."""
    g = torch.Generator().manual_seed(7)
    truth_n = ramps(n, 8, 2, g).numpy()
    rng = np.random.default_rng(7)
    a_mean, a_std = (np.asarray(ACTION_STATS[k], np.float32) for k in ("mean", "std"))
    s_mean, s_std = (np.asarray(STATE_STATS[k], np.float32) for k in ("mean", "std"))
    out = []
    for i in range(n):
        state = (s_mean + s_std * rng.standard_normal(2)).astype(np.float32)
        truth = truth_n[i] * a_std + a_mean
        if card.output_action_mode != card.io.action_mode:  # delta card: absolute = delta + state
            truth = truth + state
        img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        noise = rng.standard_normal(card.io.noise_shape).astype(np.float32)
        obs = Observation(images={"cam": img}, state=state, committed_actions=truth[:d].astype(np.float32))
        out.append((obs, truth.astype(np.float32), noise))
    return out


def _free(obs: Observation) -> Observation:
    return Observation(images=obs.images, state=obs.state, instruction=obs.instruction)


def test_conditioned_card_continues_the_committed_actions(cards):
    """The chunk's first d = 3 actions equal the committed ones (raw units, bound 1e-5: the
    delta + normalization round trip in float32); the rest continues them (error < 0.6x
    without committed actions); ONNX Runtime and torch agree within 1e-4 x action std."""
    card = cards["conditioned"]
    rts = {b: load_runtime(card, b) for b in BACKENDS}
    d, std = 3, max(ACTION_STATS["std"])
    prefix_err, rest, rest_free, parity = 0.0, [], [], 0.0
    for obs, truth, noise in _cases(card):
        out = {b: rt.infer(obs, noise=noise) for b, rt in rts.items()}
        free = rts["onnxruntime"].infer(_free(obs), noise=noise)
        a = out["onnxruntime"]
        prefix_err = max(prefix_err, float(np.abs(a[:d] - truth[:d]).max()))
        rest.append(np.abs(a[d:] - truth[d:]).mean())
        rest_free.append(np.abs(free[d:] - truth[d:]).mean())
        parity = max(parity, float(np.abs(out["torch"] - a).max()))
    assert prefix_err <= 1e-5
    assert np.mean(rest) < 0.6 * np.mean(rest_free), (np.mean(rest), np.mean(rest_free))
    assert parity <= 1e-4 * std


def test_guided_card_is_pulled_to_the_committed_actions(cards):
    """Inference-time RTC: the first d actions are closer to the committed ones than without
    guidance (ratio < 0.3), identically on ONNX Runtime (the exported VJP graph) and torch
    (autograd): <= 1e-4 x action std."""
    card = cards["guided"]
    rts = {b: load_runtime(card, b) for b in BACKENDS}
    d, std = 3, max(ACTION_STATS["std"])
    err, err_free, parity = [], [], 0.0
    for obs, truth, noise in _cases(card):
        out = {b: rt.infer(obs, noise=noise) for b, rt in rts.items()}
        free = rts["onnxruntime"].infer(_free(obs), noise=noise)
        err.append(np.abs(out["onnxruntime"][:d] - truth[:d]).mean())
        err_free.append(np.abs(free[:d] - truth[:d]).mean())
        parity = max(parity, float(np.abs(out["torch"] - out["onnxruntime"]).max()))
    assert np.mean(err) < 0.3 * np.mean(err_free), (np.mean(err), np.mean(err_free))
    assert parity <= 1e-4 * std
    # the guided step_rtc calls count as step samples: 8 cases x (guided + free) x 5 steps
    assert rts["onnxruntime"].stats()["step"]["count"] == 8 * 2 * card.export["split"]["num_steps"]


def test_more_committed_steps_than_trained_are_cut_with_one_log(cards, caplog):
    card = cards["conditioned"]
    rt = load_runtime(card, "onnxruntime")
    obs, truth, noise = _cases(card, n=1)[0]
    obs.committed_actions = truth[:5] + np.float32(0.01)  # 5 > max_delay 3
    with caplog.at_level(logging.INFO, logger="vla_ros.runtime.base"):
        a = rt.infer(obs, noise=noise)
        rt.infer(obs, noise=noise)
    assert np.abs(a[:3] - obs.committed_actions[:3]).max() <= 1e-5
    assert np.abs(a[3:5] - obs.committed_actions[3:5]).max() > 1e-3  # not imposed: predicted
    lines = [r for r in caplog.records if "max_delay=3" in r.getMessage()]
    assert len(lines) == 1 and "2 more committed steps" in lines[0].getMessage()


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((2, 3), np.float32), r"committed_actions has shape \(2, 3\); expected \[d, 2\]"),
        (np.zeros(2, np.float32), r"committed_actions has shape \(2,\)"),
        (np.array([[0.0, np.nan]], np.float32), "non-finite"),
    ],
)
def test_malformed_committed_actions_are_refused(cards, bad, match):
    card = cards["conditioned"]
    rt = load_runtime(card, "onnxruntime")
    obs = _cases(card, n=1)[0][0]
    obs.committed_actions = bad
    with pytest.raises(ObservationError, match=match):
        rt.infer(obs)


def test_card_without_rtc_ignores_committed_actions_with_one_log(cards, caplog):
    card = cards["plain"]
    assert "rtc" not in card.io.extra
    for backend in BACKENDS:
        rt = load_runtime(card, backend)
        obs, _, noise = _cases(card, n=1)[0]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="vla_ros.runtime.base"):
            a = rt.infer(obs, noise=noise)
            rt.infer(obs, noise=noise)
        np.testing.assert_array_equal(a, rt.infer(_free(obs), noise=noise))
        lines = [r for r in caplog.records if "committed actions are ignored" in r.getMessage()]
        assert len(lines) == 1, backend
        rt.reset()  # a new episode: said again once
        with caplog.at_level(logging.INFO, logger="vla_ros.runtime.base"):
            rt.infer(obs, noise=noise)
        assert len([r for r in caplog.records if "ignored" in r.getMessage()]) == 2
