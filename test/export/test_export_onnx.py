"""ONNX export of both layouts, the checker, and the parity gate (on a module we control)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from support.export_testlib import TinyPolicy

from vla_ros.contract.errors import ExportError, ParityError
from vla_ros.export import PolicyCard, export_policy
from vla_ros.export.onnx_export import export_onnx
from vla_ros.export.onnx_parity import onnx_parity


class BakedStep(TinyPolicy):
    """Uses ``int(step_index)`` in export_step: tracing bakes the value into the step graph."""

    def export_step(self, prefix, x, step_index):
        t = float(int(step_index)) / self.num_export_steps
        b = x.shape[0]
        tt = torch.full((b, 1), t)
        v = self.head(torch.cat([prefix["context"], x.reshape(b, -1), tt], dim=-1))
        return x + v.reshape(x.shape) / self.num_export_steps


@pytest.mark.parametrize("layout", ["monolithic", "split"])
def test_both_layouts_export_and_match_torch(tmp_path, layout):
    torch.manual_seed(0)
    model = TinyPolicy(text_max_len=6)
    card = export_policy(model, tmp_path, layout=layout, name="tiny")
    assert card.layout == layout
    assert card.parity["max_abs_err"] <= 1e-4
    roles = {"monolithic": {"onnx"}, "split": {"onnx_prefix", "onnx_step"}}[layout]
    assert roles <= set(card.files)
    for role in roles:
        m = onnx.load(str(card.path(role)))
        onnx.checker.check_model(m, full_check=True)
        assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 17
        # static shapes by default
        for inp in m.graph.input:
            assert all(d.HasField("dim_value") for d in inp.type.tensor_type.shape.dim)
    if layout == "split":
        sp = card.export["split"]
        assert sp["num_steps"] == model.num_export_steps
        assert sp["prefix_outputs"] == ["prefix_context"]
        assert "noise" not in sp["prefix_inputs"]
        assert set(card.parity["onnxruntime"]["per_output"]) == {"prefix", "step0", "actions"}
    # independent check: the ONNX graph(s) reproduce predict_action on fresh inputs
    g = torch.Generator().manual_seed(7)
    inputs = {
        "images": torch.rand(1, 1, 1, 3, 24, 32, generator=g),
        "state": torch.randn(1, 1, 4, generator=g),
        "tokens": torch.randint(0, 256, (1, 6), generator=g),
        "noise": torch.randn(1, 5, 3, generator=g),
    }
    with torch.no_grad():
        ref = model.predict_action(
            {k: v for k, v in inputs.items() if k != "noise"}, noise=inputs["noise"]
        ).numpy()
    feeds = {k: v.numpy() for k, v in inputs.items()}
    if layout == "monolithic":
        s = ort.InferenceSession(str(card.path("onnx")))
        out = s.run(None, feeds)[0]
    else:
        sp_, ss = (ort.InferenceSession(str(card.path(r))) for r in ("onnx_prefix", "onnx_step"))
        (ctx,) = sp_.run(None, {k: feeds[k] for k in ("images", "state", "tokens")})
        out = feeds["noise"]
        for i in range(model.num_export_steps):
            out = ss.run(None, {"prefix_context": ctx, "x": out, "step_index": np.array(i, np.int64)})[0]
    assert np.max(np.abs(out - ref)) < 1e-4


def test_baked_step_index_fails_the_gate(tmp_path):
    torch.manual_seed(0)
    model = BakedStep()
    res = export_onnx(model, tmp_path, "split")
    with pytest.raises(ParityError, match="max \\|onnxruntime - torch\\|"):
        onnx_parity(model, tmp_path, res["files"], res["split"])
    # export_policy refuses to write a card for it
    with pytest.raises(ParityError):
        export_policy(model, tmp_path / "card", layout="split")
    assert not (tmp_path / "card" / "card.yaml").exists()
    # the monolithic layout unrolls the Python loop and is exact
    card = export_policy(model, tmp_path / "mono", layout="monolithic")
    assert card.parity["max_abs_err"] <= 1e-4


def test_nan_model_fails_the_gate(tmp_path):
    model = TinyPolicy()
    model.poison = True
    with pytest.raises(ParityError, match="inf"):
        export_policy(model, tmp_path, layout="monolithic")


def test_bad_export_requests(tmp_path):
    model = TinyPolicy()
    with pytest.raises(ExportError, match="opset 13 is below 17"):
        export_onnx(model, tmp_path, "monolithic", opset=13)
    model.num_export_steps = 0  # no step loop -> no split layout
    with pytest.raises(ExportError, match="layout 'split' is not available"):
        export_policy(model, tmp_path, layout="split")
    with pytest.raises(ExportError, match="precision 'int4'"):
        export_policy(TinyPolicy(), tmp_path, precision="int4")
    with pytest.raises(ExportError, match="applies to the TensorRT engine"):
        export_policy(TinyPolicy(), tmp_path, precision="fp16")
    with pytest.raises(ExportError, match="unknown export backend 'coreml'"):
        export_policy(TinyPolicy(), tmp_path, backends="onnx,coreml")


def test_reexport_replaces_old_files(tmp_path):
    model = TinyPolicy()
    export_policy(model, tmp_path, layout="split")
    assert (tmp_path / "step.onnx").exists()
    card = export_policy(model, tmp_path, layout="monolithic")
    assert not (tmp_path / "step.onnx").exists()
    assert PolicyCard.load(tmp_path).policy_id == card.policy_id


def test_dynamo_exporter_also_passes(tmp_path):
    card = export_policy(TinyPolicy(needs_noise=False), tmp_path, layout="monolithic", exporter="dynamo")
    assert card.export["exporter"] == "dynamo"
    assert card.parity["max_abs_err"] <= 1e-4
