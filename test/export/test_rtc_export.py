"""Real-time chunking graphs in the export: the conditioned step graph and the guided
``step_rtc`` graph (VJP traced into ONNX), gated ONNX Runtime vs torch on random committed
prefixes with random delays (<= 1e-4)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spine"))
from rtc_helpers import rtc_card

from vla_ros.export.onnx_export import PARITY_BOUNDS
from vla_ros.export.rtc_graphs import example_rtc
from vla_ros.runtime.ort_backend import expected_graph_io
from vla_ros.runtime.torch_backend import build_model_from_card

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    root = tmp_path_factory.mktemp("rtc_cards")
    return {k: rtc_card(k, root) for k in ("conditioned", "guided")}


def _inputs(path: Path) -> list[str]:
    return [i.name for i in ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()]


def test_conditioned_card_step_graph_takes_the_committed_prefix(cards):
    card = cards["conditioned"]
    rtc = card.export["split"]["rtc"]
    assert rtc == {**rtc, "mode": "conditioned", "role": "onnx_step", "max_delay": 3}
    assert card.io.extra["rtc"] == {"mode": "conditioned", "max_delay": 3}
    assert not card.has("onnx_step_rtc")
    names = _inputs(card.path("onnx_step"))
    assert names[-2:] == ["rtc_actions", "rtc_mask"] and names == card.export["split"]["step_inputs"]
    assert set(names) == set(expected_graph_io(card, "step"))
    per = card.parity["onnxruntime"]["per_output"]
    assert {"step_rtc0", "actions_rtc"} <= set(per)
    assert max(per.values()) <= PARITY_BOUNDS["fp32"] and card.parity["max_abs_err"] <= 1e-4


def test_guided_card_has_an_exact_guided_step_graph(cards):
    card = cards["guided"]
    rtc = card.export["split"]["rtc"]
    assert rtc["mode"] == "guided" and rtc["role"] == "onnx_step_rtc" and rtc["max_guidance"] == 5.0
    names = _inputs(card.path("onnx_step_rtc"))
    assert names[-3:] == ["rtc_actions", "rtc_mask", "rtc_max_guidance"]
    assert _inputs(card.path("onnx_step"))[-2:] == ["x", "step_index"]  # the plain step stays
    per = card.parity["onnxruntime"]["per_output"]
    assert per["step_rtc0"] <= 1e-4 and per["actions_rtc"] <= 1e-4
    assert "step_rtc.onnx" in card.parity["onnxruntime"]["graphs"]["actions_rtc"]["graph"]


@pytest.mark.parametrize("kind", ["conditioned", "guided"])
def test_rtc_graphs_match_torch_on_more_random_prefixes(cards, kind):
    """Beyond the gate's inputs: 4 more random committed prefixes (random d, soft masks for
    the guided graph) through the whole Euler loop on ONNX Runtime vs torch."""
    card = cards[kind]
    model = build_model_from_card(card)
    spec = card.export["split"]
    prefix_sess = ort.InferenceSession(str(card.path("onnx_prefix")), providers=["CPUExecutionProvider"])
    step_sess = ort.InferenceSession(str(card.path(spec["rtc"]["role"])), providers=["CPUExecutionProvider"])
    worst = 0.0
    for seed in range(4):
        obs = model.example_inputs(1, seed=100 + seed)
        noise = obs.pop("noise")
        y, m, d = example_rtc(model, 1, seed=200 + seed)
        assert d >= 1 and float(m[0, d - 1]) == 1.0
        pout = dict(
            zip(
                spec["prefix_outputs"],
                prefix_sess.run(None, {k: obs[k].numpy() for k in spec["prefix_inputs"]}),
            )
        )
        x = noise.numpy()
        extra = {"rtc_actions": y.numpy(), "rtc_mask": m.numpy()}
        if kind == "guided":
            extra["rtc_max_guidance"] = np.array(5.0, np.float32)
        for i in range(spec["num_steps"]):
            feeds = {**pout, **extra, "x": x, "step_index": np.array(i, np.int64)}
            (x,) = step_sess.run(None, {n: feeds[n] for n in spec["rtc"]["step_inputs"]})
        with torch.inference_mode():
            ref = model.predict_action_rtc(obs, y, m, noise).numpy()
        worst = max(worst, float(np.abs(x - ref).max()))
    assert worst <= 1e-4
