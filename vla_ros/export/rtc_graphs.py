"""Real-time chunking (RTC) step graphs: export and ONNX Runtime vs torch parity.

A flow-matching model with ``rtc_mode`` (see :mod:`vla_ros.spine.families.flow_matching`):

- ``"conditioned"`` (trained with action conditioning): the split layout's step graph *is* the
  conditioned step, ``step.onnx`` with inputs ``[*prefix features, x, step_index,
  rtc_actions, rtc_mask]`` (TorchScript or dynamo exporter as asked). Nothing committed is a
  mask of zeros (exactly the unconditioned step). TensorRT builds it like any step graph.
- ``"guided"`` (inference-time guidance): ``step.onnx`` stays as is, and a second graph
  ``step_rtc.onnx`` (file role ``onnx_step_rtc``, inputs ``[*prefix features, x, step_index,
  rtc_actions, rtc_mask, rtc_max_guidance]``) computes the guided step exactly, the
  vector-Jacobian product through the velocity network included: ``make_fx`` traces
  ``torch.func.vjp`` into forward and backward aten ops, which the dynamo exporter writes as
  plain ONNX (opset >= 18). Batch 1 (the runtime's), static shapes.

The card's ``export.split.rtc`` records the mode, the graph role and its inputs; the parity
gate (:func:`rtc_parity_pairs`) compares the first conditioned/guided step and the whole loop
against torch (``predict_action_rtc``) on random committed prefixes with random delays.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.contract.errors import ExportError

#: the extra inputs of an RTC step graph (after ``[*prefix features, x, step_index]``)
RTC_INPUTS = ("rtc_actions", "rtc_mask")
#: the guided step graph's scalar input: the maximum guidance weight β
GUIDANCE_INPUT = "rtc_max_guidance"


def rtc_mode(model: Any) -> str | None:
    """The model's RTC mode (``conditioned``/``guided``) when it has an RTC step, else None."""
    mode = getattr(model, "rtc_mode", None)
    return mode if mode in ("conditioned", "guided") and hasattr(model, "export_step_rtc") else None


def example_rtc(model: Any, batch: int, seed: int) -> tuple[Any, Any, int]:
    """Seeded ``(rtc_actions [B, H, noise_dim], rtc_mask [B, H], d)``: N(0, 1) committed
    actions, zero after ``d``; ``d`` uniform in ``[1, max_delay]`` (conditioned) or
    ``[1, H - 1]`` (guided: the mask is the soft mask up to a random overlap end)."""
    import torch

    from vla_ros.control.rtc_guidance import soft_mask

    io = model.io_spec()
    h, a = io.noise_shape
    rng = np.random.default_rng(seed)
    if model.rtc_mode == "conditioned":
        d = int(rng.integers(1, int(model.rtc_max_delay) + 1))
        w = soft_mask(h, d)
    else:
        d = int(rng.integers(1, h))
        w = soft_mask(h, d, int(rng.integers(d, h + 1)))
    y = rng.standard_normal((batch, h, a)).astype(np.float32)
    y[:, w == 0] = 0.0
    mask = np.repeat(w[None], batch, axis=0)
    return torch.from_numpy(y), torch.from_numpy(mask), d


class _StepRTC:
    """Wraps ``export_step_rtc`` as ``forward(*features, x, step_index, *rtc inputs) -> x_next``."""

    def __new__(cls, model: Any, keys: list[str]) -> Any:
        import torch

        class StepRTC(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *args: Any) -> Any:
                n = len(keys)
                return self.model.export_step_rtc(dict(zip(keys, args[:n])), *args[n:])

        return StepRTC().eval()


def export_rtc_graphs(
    model: Any,
    out_dir: Path,
    keys: list[str],
    gnames: list[str],
    prefix: dict[str, Any],
    x0: Any,
    opset: int,
    export_graph: Any,
    exporter: str,
    dynamic_batch: bool,
    axes: dict[str, int | None] | None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Write the RTC step graph (see the module docstring); returns ``(files, split["rtc"])``.

    ``export_graph`` is :func:`vla_ros.export.onnx_export._export_graph` (passed in to keep
    the import one way). Raises :class:`ExportError` when the guided graph cannot be traced.
    """
    import torch

    mode = rtc_mode(model)
    y0, m0, _ = example_rtc(model, int(x0.shape[0]), seed=0)
    idx = torch.tensor(0, dtype=torch.int64)
    base = [*gnames, "x", "step_index"]
    if mode == "conditioned":
        inputs = [*base, *RTC_INPUTS]
        export_graph(
            _StepRTC(model, keys),
            (*[prefix[k] for k in keys], x0, idx, y0, m0),
            out_dir / "step.onnx",
            inputs,
            ["x_next"],
            opset,
            exporter,
            dynamic_batch,
            axes,
        )
        spec = {"mode": "conditioned", "role": "onnx_step", "step_inputs": inputs}
        spec["max_delay"] = int(model.rtc_max_delay)
        return {}, spec
    inputs = [*base, *RTC_INPUTS, GUIDANCE_INPUT]
    beta = torch.tensor(float(model.rtc_guidance), dtype=torch.float32)
    args = (*[prefix[k] for k in keys], x0, idx, y0, m0, beta)
    path = out_dir / "step_rtc.onnx"
    _export_traced_vjp(model, keys, args, path, inputs, opset)
    spec = {"mode": "guided", "role": "onnx_step_rtc", "step_inputs": inputs}
    spec["max_guidance"] = float(model.rtc_guidance)
    return {"onnx_step_rtc": path.name}, spec


def _export_traced_vjp(
    model: Any, keys: list[str], args: tuple[Any, ...], path: Path, names: list[str], opset: int
) -> None:
    """``make_fx`` of the guided step (forward + the VJP's backward ops), then the dynamo
    exporter on the traced graph (the TorchScript exporter has no symbolics for the aten
    backward ops; torch.export cannot trace ``torch.func.vjp`` itself)."""
    import contextlib
    import io as _io
    import warnings

    import torch
    from torch.fx.experimental.proxy_tensor import make_fx

    n = len(keys)

    def step(*a: Any) -> Any:
        return model.export_step_rtc(dict(zip(keys, a[:n])), *a[n:])

    sink = _io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            traced = make_fx(step)(*args)

            class Traced(torch.nn.Module):
                def __init__(self) -> None:
                    super().__init__()
                    self.graph_module = traced

                def forward(self, *a: Any) -> Any:
                    return self.graph_module(*a)

            torch.onnx.export(
                Traced().eval(),
                args,
                str(path),
                input_names=names,
                output_names=["x_next"],
                opset_version=max(int(opset), 18),
                dynamo=True,
                external_data=False,
            )
    except Exception as e:
        raise ExportError(
            f"exporting the guided RTC step graph {path.name} failed: {type(e).__name__}: "
            f"{str(e)[:600]}; export without rtc: {{guidance: ...}} in the model config (committed "
            "actions are then ignored)"
        ) from e


def rtc_parity_pairs(
    model: Any,
    out_dir: Path,
    files: dict[str, str],
    split: dict[str, Any],
    pout: dict[str, np.ndarray],
    tprefix: dict[str, Any],
    feeds: dict[str, np.ndarray],
    obs: dict[str, Any],
    session: Any,
    run: Any,
    label: str,
) -> dict[str, list[tuple[Any, Any]]]:
    """ONNX Runtime vs torch for the RTC step graph on one input, with a random committed
    prefix of random delay (seeded by ``label``): ``step_rtc0`` (first step, fed torch's
    prefix features' ONNX twins) and ``actions_rtc`` (the whole Euler loop vs
    ``predict_action_rtc``). Empty when the guided graph's static batch 1 differs from the
    input's batch. ``session``/``run`` are onnx_export's session cache and run helpers."""
    import torch

    spec = split["rtc"]
    batch = int(feeds["state"].shape[0])
    if spec["mode"] == "guided" and batch != 1:
        return {}
    y, m, _ = example_rtc(model, batch, seed=zlib.crc32(label.encode()))
    role = spec["role"]
    sess = session(out_dir / files[role])
    x = feeds.get("noise", np.zeros((batch, *model.io_spec().noise_shape), np.float32))
    t_x = torch.from_numpy(x)
    extra = {"rtc_actions": y.numpy(), "rtc_mask": m.numpy()}
    beta = None
    if spec["mode"] == "guided":
        beta = float(spec["max_guidance"])
        extra[GUIDANCE_INPUT] = np.array(beta, dtype=np.float32)
    pairs: dict[str, list[tuple[Any, Any]]] = {}
    for i in range(int(split["num_steps"])):
        sf = {**pout, **extra, "x": x, "step_index": np.array(i, dtype=np.int64)}
        (x,) = run(sess, ["x_next"], sf, files[role], label)
        if i == 0:
            idx = torch.tensor(0, dtype=torch.int64)
            t_step = model.export_step_rtc(tprefix, t_x, idx, y, m, beta)
            pairs["step_rtc0"] = [(x, t_step)]
    ref = model.predict_action_rtc(obs, y, m, noise=t_x if "noise" in feeds else None)
    a = model.io_spec().action_dim
    pairs["actions_rtc"] = [(x[..., :a], ref[..., :a])]
    return pairs
