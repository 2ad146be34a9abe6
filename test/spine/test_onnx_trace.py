"""Every family's inference path traces into ONNX (opset 17, static shapes) and matches torch.

Monolithic families export ``predict_action``; split families export ``export_prefix`` and one
``export_step`` graph (with the step index as a graph input) and loop it in ONNX Runtime.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from spine_helpers import FAMILIES

from vla_ros.spine import build_vla


def _export(module: torch.nn.Module, args: tuple, names: list[str], outs: list[str]) -> ort.InferenceSession:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, args, buf, input_names=names, output_names=outs, opset_version=17, dynamo=False
        )
    return ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])


class _Mono(torch.nn.Module):
    def __init__(self, model, names):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *args):
        obs = dict(zip(self.names, args))
        return self.model.predict_action(obs, noise=obs.pop("noise", None))


class _Prefix(torch.nn.Module):
    def __init__(self, model, names, keys):
        super().__init__()
        self.model, self.names, self.keys = model, names, keys

    def forward(self, *args):
        out = self.model.export_prefix(dict(zip(self.names, args)))
        return tuple(out[k] for k in self.keys)


class _Step(torch.nn.Module):
    def __init__(self, model, keys):
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, *args):
        n = len(self.keys)
        return self.model.export_step(dict(zip(self.keys, args[:n])), args[n], args[n + 1])


CASES = [(f, None) for f in FAMILIES] + [("tokens", "split")]
# the token decoder's monolithic graph unrolls horizon * action_dim steps; 1 x 7 keeps it quick
OVERRIDES = {"tokens": {"io": {"horizon": 1}}}


@pytest.mark.parametrize(("family", "layout"), CASES)
def test_family_traces_to_onnx_and_matches_torch(family: str, layout: str | None) -> None:
    overrides = dict(OVERRIDES.get(family, {}))
    if layout:
        overrides["export_layout"] = layout
    model = build_vla(f"{family}_tiny", overrides).eval()
    spec = model.io_spec()
    inputs = model.example_inputs(1)
    feeds = {k: v.numpy() for k, v in inputs.items()}
    obs = {k: v for k, v in inputs.items() if k != "noise"}
    with torch.no_grad():
        ref = model.predict_action(obs, noise=inputs.get("noise")).numpy()
        # dual families also trace as one graph; their two-graph export is tested in test/export
        if model.export_layout in ("monolithic", "dual"):
            names = spec.input_names
            sess = _export(_Mono(model, names), tuple(inputs[n] for n in names), names, ["actions"])
            out = sess.run(None, feeds)[0]
        else:
            names = [n for n in spec.input_names if n != "noise"]
            prefix = model.export_prefix(obs)
            keys = list(prefix)
            ps = _export(_Prefix(model, names, keys), tuple(obs[n] for n in names), names, keys)
            x0 = inputs.get("noise", torch.zeros(1, *spec.output_shape))
            idx = torch.tensor(0, dtype=torch.int64)
            ss = _export(_Step(model, keys), (*prefix.values(), x0, idx), [*keys, "x", "i"], ["x1"])
            pf = dict(zip(keys, ps.run(None, {n: feeds[n] for n in names})))
            out = x0.numpy()
            for i in range(model.num_export_steps):
                out = ss.run(None, {**pf, "x": out, "i": np.array(i, dtype=np.int64)})[0]
    assert out.shape == (1, spec.horizon, spec.action_dim)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
