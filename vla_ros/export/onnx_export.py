"""torch -> ONNX for a spine model: monolithic, split or dual layout, and the checker.

The graphs only; ONNX Runtime against torch is :mod:`vla_ros.export.onnx_parity`.
"""

from __future__ import annotations

import contextlib
import io as _io
import warnings
from pathlib import Path
from typing import Any

from vla_ros.contract.errors import ExportError
from vla_ros.export.rtc_graphs import export_rtc_graphs, rtc_mode

DEFAULT_OPSET = 17
# max |onnxruntime - torch| on the parity inputs, per precision of the compared graph
PARITY_BOUNDS = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 8e-2, "fp8": 2.5e-1, "int8": 1e-1}
#: precisions of the ONNX graphs themselves (CPU, onnxruntime); the others are TensorRT's
ONNX_PRECISIONS = ("fp32", "int8")
EXPORTERS = ("torchscript", "dynamo")


def _torch() -> Any:
    import torch

    return torch


def dual_graphs(model: Any) -> dict[str, Any] | None:
    """The model's dual-rate graph description (``io_spec().extra["graphs"]`` with ``slow`` and
    ``fast`` entries) when it also has ``export_slow``/``export_fast``; else None."""
    if not all(hasattr(model, a) for a in ("export_slow", "export_fast")):
        return None
    graphs = model.io_spec().extra.get("graphs")
    if not isinstance(graphs, dict) or not {"slow", "fast"} <= set(graphs):
        return None
    return graphs


def model_layouts(model: Any) -> list[str]:
    """Layouts a model supports: always monolithic; split when it has the export hooks; dual
    when it has ``export_slow``/``export_fast`` and names the two graphs in ``io_spec().extra``."""
    out = ["monolithic"]
    hooks = all(hasattr(model, a) for a in ("export_prefix", "export_step"))
    if hooks and int(getattr(model, "num_export_steps", 0) or 0) > 0:
        out.append("split")
    if dual_graphs(model) is not None:
        out.append("dual")
    return out


def default_layout(model: Any, config: dict[str, Any] | None = None) -> str:
    """The layout export uses when none is asked for.

    An ``export_layout`` in the model's config wins; otherwise a model with dual-rate graphs
    exports ``dual`` (its graphs then run at their own rates); otherwise the model's
    ``export_layout`` (else class ``EXPORT_LAYOUT``); monolithic when that is unavailable.
    """
    layouts = model_layouts(model)
    explicit = (config or {}).get("export_layout")
    if explicit in layouts:
        return str(explicit)
    if "dual" in layouts:
        return "dual"
    layout = str(getattr(model, "export_layout", None) or getattr(model, "EXPORT_LAYOUT", "monolithic"))
    return layout if layout in layouts else "monolithic"


def parity_inputs(model: Any) -> dict[str, Any]:
    """``example_inputs(1)`` with ``noise`` added when the model needs one (seeded)."""
    torch = _torch()
    io = model.io_spec()
    inputs = dict(model.example_inputs(batch_size=1))
    if io.needs_noise and "noise" not in inputs:
        g = torch.Generator().manual_seed(0)
        inputs["noise"] = torch.randn((1, *io.noise_shape), generator=g)
    names = io.input_names
    missing = [n for n in names if n not in inputs]
    if missing:
        raise ExportError(
            f"{type(model).__name__}.example_inputs() lacks {missing}; it must return every "
            f"name in io_spec().input_names = {names}"
        )
    return {n: inputs[n] for n in names}


class _Monolithic:
    """Wraps ``predict_action`` as ``forward(*inputs) -> actions`` for tracing."""

    def __new__(cls, model: Any, names: list[str]) -> Any:
        torch = _torch()

        class Monolithic(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *args: Any) -> Any:
                obs = dict(zip(names, args))
                noise = obs.pop("noise", None)
                return self.model.predict_action(obs, noise=noise)

        return Monolithic().eval()


class _Prefix:
    """Wraps ``export_prefix`` as ``forward(*inputs) -> tuple(features)``."""

    def __new__(cls, model: Any, names: list[str], keys: list[str]) -> Any:
        torch = _torch()

        class Prefix(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *args: Any) -> Any:
                out = self.model.export_prefix(dict(zip(names, args)))
                return tuple(out[k] for k in keys)

        return Prefix().eval()


class _Step:
    """Wraps ``export_step`` as ``forward(*features, x, step_index) -> x_next``."""

    def __new__(cls, model: Any, keys: list[str]) -> Any:
        torch = _torch()

        class Step(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *args: Any) -> Any:
                n = len(keys)
                prefix = dict(zip(keys, args[:n]))
                return self.model.export_step(prefix, args[n], args[n + 1])

        return Step().eval()


class _Slow:
    """Wraps ``export_slow`` as ``forward(*inputs) -> tuple(latents)``."""

    def __new__(cls, model: Any, names: list[str], keys: list[str]) -> Any:
        torch = _torch()

        class Slow(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *args: Any) -> Any:
                out = self.model.export_slow(dict(zip(names, args)))
                return tuple(out[k] for k in keys)

        return Slow().eval()


class _Fast:
    """Wraps ``export_fast`` as ``forward(*latents, *inputs) -> actions``."""

    def __new__(cls, model: Any, keys: list[str], names: list[str]) -> Any:
        torch = _torch()

        class Fast(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *args: Any) -> Any:
                n = len(keys)
                obs = dict(zip(names, args[n:]))
                return self.model.export_fast(dict(zip(keys, args[:n])), obs)

        return Fast().eval()


def prefix_graph_name(key: str) -> str:
    """ONNX value name of prefix feature ``key``: starts with ``prefix_`` so that it never
    collides with a model input or the step's ``x``/``step_index``/``x_next``."""
    return key if key.startswith("prefix_") else f"prefix_{key}"


def _export_graph(
    module: Any,
    args: tuple[Any, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    opset: int,
    exporter: str,
    dynamic_batch: bool,
    batch_axes: dict[str, int | None] | None = None,
) -> None:
    """``torch.onnx.export`` of one graph; with ``dynamic_batch`` the batch axis of every input
    and output (axis 0, or ``batch_axes[name]``; None: none) is dynamic."""
    torch = _torch()
    if exporter not in EXPORTERS:
        raise ExportError(f"exporter {exporter!r} is not one of {EXPORTERS}")
    dynamic_axes = None
    if dynamic_batch:
        axes = {n: (batch_axes or {}).get(n, 0) for n in input_names + output_names if n != "step_index"}
        dynamic_axes = {n: {a: "batch"} for n, a in axes.items() if a is not None}
    sink = _io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
            warnings.simplefilter("ignore")
            kwargs: dict[str, Any] = {
                "input_names": input_names,
                "output_names": output_names,
                "opset_version": opset,
                "dynamic_axes": dynamic_axes,
                "do_constant_folding": True,
            }
            if exporter == "torchscript":
                kwargs["dynamo"] = False
            else:
                kwargs["dynamo"] = True
                kwargs["external_data"] = False
            module.eval()
            torch.onnx.export(module, args, str(path), **kwargs)
    except Exception as e:
        raise ExportError(
            f"torch.onnx.export ({exporter}) failed for {path.name}: {type(e).__name__}: "
            f"{str(e)[:600]}; try --exporter {'dynamo' if exporter == 'torchscript' else 'torchscript'}"
            " or --layout monolithic"
        ) from e


def check_onnx(path: Path) -> None:
    """``onnx.checker`` full check (with strict shape inference); raises :class:`ExportError`."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"onnx.checker rejects {path.name}: {str(e)[:600]}") from e


def onnx_opset(path: Path) -> int:
    """The default-domain opset a saved ONNX model imports."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)


def export_onnx(
    model: Any,
    out_dir: Path,
    layout: str,
    opset: int = DEFAULT_OPSET,
    exporter: str = "torchscript",
    dynamic_batch: bool = False,
) -> dict[str, Any]:
    """Write the layout's ONNX graph(s) into ``out_dir`` and check them.

    Returns ``{"files": {role: filename}, "split": {...} | None, "opset": int}``.
    """
    torch = _torch()
    if opset < 17:
        raise ExportError(f"opset {opset} is below 17 (LayerNormalization); use --opset 17+")
    if exporter == "dynamo":
        opset = max(opset, 18)  # the torch.export-based exporter implements opset 18 and up
    layouts = model_layouts(model)
    if layout not in layouts:
        raise ExportError(
            f"layout {layout!r} is not available for {type(model).__name__} (has {layouts}); "
            "split needs export_prefix/export_step/num_export_steps on the model, dual needs "
            "export_slow/export_fast and io_spec().extra['graphs']"
        )
    io = model.io_spec()
    inputs = parity_inputs(model)
    names = io.input_names
    files: dict[str, str] = {}
    split: dict[str, Any] | None = None
    dual: dict[str, Any] | None = None
    model.eval()
    with torch.inference_mode(False), torch.no_grad():
        if layout == "dual":
            dual = _export_dual(model, out_dir, inputs, opset, exporter, dynamic_batch)
            files["onnx_slow"], files["onnx_fast"] = "slow.onnx", "fast.onnx"
        elif layout == "monolithic":
            path = out_dir / "model.onnx"
            _export_graph(
                _Monolithic(model, names),
                tuple(inputs[n] for n in names),
                path,
                names,
                ["actions"],
                opset,
                exporter,
                dynamic_batch,
            )
            files["onnx"] = path.name
        else:
            obs_names = [n for n in names if n != "noise"]
            obs = {n: inputs[n] for n in obs_names}
            prefix = model.export_prefix(obs)
            keys = list(prefix)
            gnames = [prefix_graph_name(k) for k in keys]
            if len(set(gnames)) != len(gnames):
                raise ExportError(
                    f"export_prefix keys {keys} map to duplicate graph names {gnames}; "
                    "rename the features so that 'k' and 'prefix_k' are not both used"
                )
            axes = _prefix_batch_axes(model, obs, prefix, gnames) if dynamic_batch else None
            path_p = out_dir / "prefix.onnx"
            _export_graph(
                _Prefix(model, obs_names, keys),
                tuple(obs[n] for n in obs_names),
                path_p,
                obs_names,
                gnames,
                opset,
                exporter,
                dynamic_batch,
                axes,
            )
            x0 = inputs.get("noise", torch.zeros((1, *io.noise_shape)))
            idx = torch.tensor(0, dtype=torch.int64)
            path_s = out_dir / "step.onnx"
            if rtc_mode(model) != "conditioned":  # else step.onnx is the conditioned step
                _export_graph(
                    _Step(model, keys),
                    (*[prefix[k] for k in keys], x0, idx),
                    path_s,
                    [*gnames, "x", "step_index"],
                    ["x_next"],
                    opset,
                    exporter,
                    dynamic_batch,
                    axes,
                )
            files["onnx_prefix"], files["onnx_step"] = path_p.name, path_s.name
            rtc = None
            if rtc_mode(model) is not None:  # real-time chunking: the conditioned/guided step
                rtc_files, rtc = export_rtc_graphs(
                    model,
                    out_dir,
                    keys,
                    gnames,
                    prefix,
                    x0,
                    opset,
                    _export_graph,
                    exporter,
                    dynamic_batch,
                    axes,
                )
                files.update(rtc_files)
            split = {
                "prefix_inputs": obs_names,
                "prefix_keys": keys,
                "prefix_outputs": gnames,
                "prefix_shapes": {g: list(prefix[k].shape) for g, k in zip(gnames, keys)},
                "prefix_dtypes": {
                    g: str(prefix[k].dtype).replace("torch.", "") for g, k in zip(gnames, keys)
                },
                "num_steps": int(model.num_export_steps),
                "step_inputs": [*gnames, "x", "step_index"],
                "step_output": "x_next",
            }
            if rtc is not None:
                split["rtc"] = rtc
                if rtc["role"] == "onnx_step":
                    split["step_inputs"] = list(rtc["step_inputs"])
    for f in files.values():
        check_onnx(out_dir / f)
    opset_used = onnx_opset(out_dir / next(iter(files.values())))
    return {"files": files, "split": split, "dual": dual, "opset": opset_used}


def _prefix_batch_axes(
    model: Any, obs: dict[str, Any], prefix: dict[str, Any], gnames: list[str]
) -> dict[str, int | None]:
    """The batch axis of each prefix feature (a KV cache ``[layers, B, ...]`` has it on axis 1):
    the axis that grows from ``export_prefix`` at batch 1 to batch 2; None for a feature that
    does not depend on the batch. Raises :class:`ExportError` when that is ambiguous."""
    two = {n: v for n, v in model.example_inputs(batch_size=2).items() if n in obs}
    p2 = model.export_prefix(two)
    out: dict[str, int | None] = {}
    for g, (k, v) in zip(gnames, prefix.items()):
        grown = [i for i, (a, b) in enumerate(zip(v.shape, p2[k].shape)) if a != b]
        if len(grown) > 1 or v.ndim != p2[k].ndim:
            raise ExportError(
                f"export_prefix feature {k!r} has shape {tuple(v.shape)} at batch 1 and "
                f"{tuple(p2[k].shape)} at batch 2: no single batch axis for --dynamic-batch; "
                "export without --dynamic-batch"
            )
        out[g] = grown[0] if grown else None
    return out


def _export_dual(
    model: Any,
    out_dir: Path,
    inputs: dict[str, Any],
    opset: int,
    exporter: str,
    dynamic_batch: bool,
) -> dict[str, Any]:
    """Write ``slow.onnx`` (``export_slow``) and ``fast.onnx`` (``export_fast``); returns the
    card's ``export.dual`` section (graph inputs/outputs, latent shapes, rates)."""
    io = model.io_spec()
    graphs = dual_graphs(model) or {}
    names = io.input_names
    slow_in = [n for n in graphs["slow"].get("inputs", names) if n in names]
    obs = {n: inputs[n] for n in names}
    latent = model.export_slow({n: obs[n] for n in slow_in})
    keys = list(latent)
    clash = sorted(set(keys) & set(names))
    if not keys or clash:
        raise ExportError(
            f"{type(model).__name__}.export_slow returns keys {keys}; it must return at least one "
            f"latent, and none may be named like a model input {names} (clash: {clash})"
        )
    fast_in = [n for n in graphs["fast"].get("inputs", names) if n in names and n not in keys]
    _export_graph(
        _Slow(model, slow_in, keys),
        tuple(obs[n] for n in slow_in),
        out_dir / "slow.onnx",
        slow_in,
        keys,
        opset,
        exporter,
        dynamic_batch,
    )
    _export_graph(
        _Fast(model, keys, fast_in),
        (*[latent[k] for k in keys], *[obs[n] for n in fast_in]),
        out_dir / "fast.onnx",
        [*keys, *fast_in],
        ["actions"],
        opset,
        exporter,
        dynamic_batch,
    )
    rates = {g: graphs[g].get("rate_hz") for g in ("slow", "fast")}
    slow_hz = float(rates["slow"] if rates["slow"] is not None else io.extra.get("slow_hz", 0.0))
    if not slow_hz > 0:
        raise ExportError(
            f"{type(model).__name__}: io_spec().extra['graphs']['slow'] has no positive rate_hz "
            f"(got {rates['slow']!r}); the dual runtime needs the slow graph's rate"
        )
    fast_hz = rates["fast"] if rates["fast"] is not None else 1.0 / io.dt
    return {
        "slow_inputs": slow_in,
        "slow_outputs": keys,
        "latent_shapes": {k: list(latent[k].shape) for k in keys},
        "latent_dtypes": {k: str(latent[k].dtype).replace("torch.", "") for k in keys},
        "fast_inputs": [*keys, *fast_in],
        "fast_output": "actions",
        "slow_hz": slow_hz,
        "fast_hz": float(fast_hz),
    }
