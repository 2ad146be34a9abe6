"""The export parity gate runs on the trace input and on seeded random valid inputs.

A graph traced on ``example_inputs`` bakes in the Python branch the model took on them; the
gate must see it on other inputs (batch 1, and batch 3 when the batch axis is dynamic), name the
graph, the input, the figure and the bound, and leave nothing behind.
"""

from __future__ import annotations

import re

import numpy as np
import onnxruntime as ort
import pytest
import torch
from support.export_testlib import TinyPolicy

from vla_ros.contract.errors import ParityError
from vla_ros.export import PolicyCard, export_policy
from vla_ros.export.onnx_export import PARITY_BOUNDS, export_onnx
from vla_ros.export.parity import RANDOM_SEEDS, TRACE_LABEL, cosine, random_inputs
from vla_ros.spine.components.text import BOS_ID, EOS_ID, PAD_ID, ByteTokenizer


class BranchOnState(TinyPolicy):
    """``if state.sum() > 6`` in export_prefix; its trace input (state 3.0) takes that branch,
    random N(0, 1) state (sum ~ N(0, 4)) practically never does."""

    def example_inputs(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
        out = super().example_inputs(batch_size)
        out["state"] = torch.full_like(out["state"], 3.0)
        return out

    def export_prefix(self, obs):
        out = super().export_prefix(obs)
        shift = 0.3 if obs["state"].sum() > 6 else -0.3  # data-dependent Python branch
        return {"context": out["context"] + shift}


class BranchOnPadding(TinyPolicy):
    """Branches on whether the instruction is padded; its trace tokens have no padding."""

    def example_inputs(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
        out = super().example_inputs(batch_size)
        out["tokens"] = torch.full_like(out["tokens"], 70)  # 16 x 'C', no pad id
        return out

    def export_prefix(self, obs):
        out = super().export_prefix(obs)
        padded = bool((obs["tokens"] == PAD_ID).any())
        return {"context": out["context"] * (0.5 if padded else 1.0)}


class BakedBatch(TinyPolicy):
    """Reads the batch size with ``int()``: traced at batch 1, the graph keeps 1."""

    def export_step(self, prefix, x, step_index):
        b = int(x.shape[0])
        t = (step_index.to(x.dtype) / self.num_export_steps).reshape(1, 1).expand(b, 1)
        v = self.head(torch.cat([prefix["context"], x.reshape(b, -1), t], dim=-1))
        return x + v.reshape(x.shape) / self.num_export_steps


@pytest.mark.parametrize(("layout", "graph"), [("monolithic", "model.onnx"), ("split", "prefix.onnx")])
def test_data_dependent_branch_is_refused_and_nothing_is_left(tmp_path, layout, graph):
    torch.manual_seed(0)
    out = tmp_path / "card"
    with pytest.raises(ParityError) as err:
        export_policy(BranchOnState(), out, layout=layout)
    msg = str(err.value)
    assert f"graph {graph}" in msg  # split: the prefix graph is named, not only the end result
    assert re.search(r"on input random seed 1000[123] \(batch 1\)", msg)
    assert "> 0.0001" in msg and "torch.where" in msg
    assert re.search(r"matches torch on the trace input \(\d", msg)
    assert not out.exists()  # the export created the folder, and removes it with what it wrote


def test_refusal_reports_the_true_difference_and_keeps_other_files(tmp_path):
    torch.manual_seed(0)
    model = BranchOnState()
    out = tmp_path / "card"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ParityError) as err:
        export_policy(model, out, layout="monolithic", name="branchy")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    figure = float(re.search(r"max \|onnxruntime - torch\| = ([0-9.e+-]+) >", str(err.value)).group(1))
    # independently: the traced graph vs torch on each random input, the worst
    path = tmp_path / export_onnx(model, tmp_path, "monolithic")["files"]["onnx"]
    worst = max(_ort_vs_torch(model, path, seed) for seed in RANDOM_SEEDS)
    assert figure == pytest.approx(worst, rel=2e-3)
    assert figure > 0.01


def _ort_vs_torch(model: TinyPolicy, path, seed: int) -> float:
    feeds = random_inputs(model.io_spec(), seed)
    (got,) = ort.InferenceSession(str(path)).run(None, feeds)
    with torch.no_grad():
        obs = {k: torch.from_numpy(v) for k, v in feeds.items() if k != "noise"}
        ref = model.predict_action(obs, noise=torch.from_numpy(feeds["noise"])).numpy()
    return float(np.max(np.abs(got - ref)))


def test_branch_on_instruction_padding_is_refused(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(ParityError, match=r"graph model\.onnx .* on input random seed"):
        export_policy(BranchOnPadding(text_max_len=16), tmp_path / "c", layout="monolithic")


def test_card_holds_max_abs_and_cosine_per_graph(tmp_path):
    torch.manual_seed(0)
    card = PolicyCard.load(export_policy(TinyPolicy(text_max_len=6), tmp_path, layout="split").root)
    p = card.parity
    rep = p["onnxruntime"]
    labels = [TRACE_LABEL, *(f"random seed {s} (batch 1)" for s in RANDOM_SEEDS)]
    assert rep["inputs"] == labels  # static batch: no batch-3 input
    assert set(rep["graphs"]) == {"prefix", "step0", "actions"}
    assert rep["graphs"]["prefix"]["graph"] == "prefix.onnx"
    for g in rep["graphs"].values():
        assert 0 <= g["max_abs"] <= PARITY_BOUNDS["fp32"]
        assert 0.999999 <= g["cosine"] <= 1.0
        assert g["worst_input"] in labels
    assert p["max_abs_err"] == max(g["max_abs"] for g in rep["graphs"].values())
    assert p["cosine_min"] == min(g["cosine"] for g in rep["graphs"].values())
    assert p["bound"] == PARITY_BOUNDS["fp32"]


@pytest.mark.parametrize("layout", ["monolithic", "split"])
def test_dynamic_batch_is_checked_at_batch_3(tmp_path, layout):
    torch.manual_seed(0)
    card = export_policy(TinyPolicy(), tmp_path / "ok", layout=layout, dynamic_batch=True)
    batch3 = f"random seed {RANDOM_SEEDS[-1] + 1} (batch 3)"
    assert card.parity["onnxruntime"]["inputs"][-1] == batch3
    assert card.parity["max_abs_err"] <= PARITY_BOUNDS["fp32"]
    with pytest.raises(ParityError, match=re.escape(f"on input {batch3}")):
        export_policy(BakedBatch(), tmp_path / "baked", layout=layout, dynamic_batch=True)
    assert not (tmp_path / "baked").exists()
    # the same model at a static batch is exact: batch 3 is checked only where it is dynamic
    assert export_policy(BakedBatch(), tmp_path / "static", layout=layout).parity["max_abs_err"] <= 1e-4


def test_random_inputs_are_valid_and_vary():
    io = TinyPolicy(text_max_len=16).io_spec()
    vocab = ByteTokenizer.vocab_size
    lengths = set()
    for seed in range(10):
        f = random_inputs(io, seed, batch_size=3)
        assert {k: v.shape for k, v in f.items()} == io.input_shapes(3)
        assert f["images"].dtype == np.float32 and f["images"].min() >= 0 and f["images"].max() <= 1
        assert f["state"].dtype == np.float32 and np.isfinite(f["state"]).all()
        tok = f["tokens"]
        assert tok.dtype == np.int64 and tok.min() >= 0 and tok.max() < vocab
        for row in tok:
            n = int(np.count_nonzero(row != PAD_ID))
            assert row[0] == BOS_ID and (row[n:] == PAD_ID).all()  # padding only at the end
            assert n >= 2 and (row[n - 1] == EOS_ID or n == io.text_max_len)
            lengths.add(n)
    assert len(lengths) >= 4  # instructions of many lengths: the text mask varies
    assert not np.array_equal(random_inputs(io, 1)["state"], random_inputs(io, 2)["state"])
    np.testing.assert_array_equal(random_inputs(io, 1)["tokens"], random_inputs(io, 1)["tokens"])


def test_cosine_is_the_worst_sample():
    assert cosine(np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]])) == pytest.approx(1.0)
    assert cosine(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 1.0]])) == 0.0
    assert cosine(np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0]])) == -1.0
    assert cosine(np.zeros((2, 3)), np.zeros((2, 3))) == 1.0
    assert cosine(np.zeros((1, 3)), np.ones((1, 3))) == 0.0
    assert np.isnan(cosine(np.array([[np.nan]]), np.array([[1.0]])))


def test_int8_gate_uses_the_same_inputs_and_batch_3(tmp_path):
    torch.manual_seed(0)
    card = export_policy(TinyPolicy(), tmp_path, layout="split", precision="int8", dynamic_batch=True)
    rep = card.parity["onnxruntime"]
    assert rep["gate"] == "actions" and len(rep["inputs"]) == 1 + 7 + 1
    assert rep["inputs"][0] == TRACE_LABEL and rep["inputs"][-1].endswith("(batch 3)")
    assert rep["graphs"]["actions"]["graph"] == "prefix.int8.onnx + step.int8.onnx loop (end to end)"
    assert 0 < card.parity["max_abs_err"] <= PARITY_BOUNDS["int8"]
    assert 0.9 < card.parity["cosine_min"] < 1.0
    # the fp32 graphs passed their own gate first, on the trace input, 3 random ones and batch 3
    assert card.parity["onnxruntime_fp32"]["inputs"][-1].endswith("(batch 3)")
    assert card.parity["onnxruntime_fp32"]["max_abs_err"] <= PARITY_BOUNDS["fp32"]


def test_backend_gate_figures_over_the_inputs():
    """The TensorRT gate's comparison (``compare_runs``), run here between two CPU runtimes."""
    from support.export_testlib import exported_card

    from vla_ros.export.parity import card_parity_feeds, compare_runs
    from vla_ros.runtime import load_runtime

    card = PolicyCard.load(exported_card("act_tiny"))
    ref = load_runtime(card, "onnxruntime").run_model
    got = load_runtime(card, "torch").run_model
    inputs = [("fixed", card_parity_feeds(card))]
    inputs += [(f"seed {s}", random_inputs(card.io, s)) for s in RANDOM_SEEDS]
    fig = compare_runs(ref, got, inputs)
    assert list(fig["per_input"]) == [label for label, _ in inputs]
    assert fig["max_abs"] <= PARITY_BOUNDS["fp32"] and fig["cosine"] >= 0.99999
    # a runtime that halves the actions: the figures are the true ones, the worst input named
    half = compare_runs(ref, lambda f: 0.5 * ref(f), inputs)
    peaks = {label: 0.5 * float(np.max(np.abs(ref(f)))) for label, f in inputs}
    assert half["max_abs"] == pytest.approx(max(peaks.values()), rel=1e-6)
    assert half["worst_input"] == max(peaks, key=peaks.get)
    assert half["cosine"] == pytest.approx(1.0)  # same direction
    assert compare_runs(ref, lambda f: -ref(f), inputs)["cosine"] == pytest.approx(-1.0)


def test_dynamic_batch_follows_a_kv_cache_batch_axis(tmp_path):
    """flow_matching's prefix KV cache is [layers, B, heads, L, d]: its batch axis is 1."""
    import onnx

    card = export_policy("flow_matching_tiny", tmp_path, layout="split", dynamic_batch=True)
    assert card.parity["onnxruntime"]["inputs"][-1].endswith("(batch 3)")
    assert card.parity["max_abs_err"] <= PARITY_BOUNDS["fp32"]
    step = onnx.load(str(card.path("onnx_step")))
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in step.graph.input
    }
    assert dims["prefix_k"][1] == "batch" and dims["prefix_k"][0] == 2  # 2 layers, batch dynamic
    assert dims["x"][0] == "batch" and dims["step_index"] == []


class NaNBelowZero(TinyPolicy):
    """NaN actions where state[0] < 0, as a model may give on some valid inputs; finite on its
    trace input (state >= 0)."""

    def example_inputs(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
        out = super().example_inputs(batch_size)
        out["state"] = out["state"].abs()
        return out

    def predict_action(self, obs, noise=None):
        return super().predict_action(obs, noise) + 0.0 * torch.sqrt(obs["state"][:, -1, :1, None])


def test_nan_where_torch_gives_nan_is_parity_not_a_failure(tmp_path):
    torch.manual_seed(0)
    card = export_policy(NaNBelowZero(), tmp_path, layout="monolithic")
    rep = card.parity["onnxruntime"]
    negative = [s for s in RANDOM_SEEDS if random_inputs(card.io, s)["state"][0, -1, 0] < 0]
    assert negative  # the seeds do reach the NaN region
    assert rep["ref_nonfinite_inputs"] == [f"random seed {s} (batch 1)" for s in negative]
    assert card.parity["max_abs_err"] <= PARITY_BOUNDS["fp32"]


def test_max_abs_and_cosine_over_finite_values():
    from vla_ros.export.parity import max_abs

    nan, inf = float("nan"), float("inf")
    assert max_abs(np.array([nan, 1.0, inf]), np.array([nan, 1.5, inf])) == 0.5
    assert max_abs(np.array([nan, 1.0]), np.array([0.0, 1.0])) == inf  # NaN only in the graph
    assert max_abs(np.array([inf]), np.array([-inf])) == inf
    assert max_abs(np.array([nan]), np.array([nan])) == 0.0
    assert cosine(np.array([[nan, 1.0, 0.0]]), np.array([[nan, 1.0, 0.0]])) == 1.0
    assert np.isnan(cosine(np.array([[nan, 1.0]]), np.array([[1.0, 1.0]])))
