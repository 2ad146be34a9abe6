"""torch -> ONNX for a spine model: monolithic or split layout, checker, ONNX Runtime parity."""

from __future__ import annotations

import contextlib
import io as _io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.contract.errors import ExportError, ParityError
from vla_ros.export.rtc_graphs import export_rtc_graphs, rtc_mode, rtc_parity_pairs

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


# ---------------------------------------------------------------------- parity
def _ort_session(path: Path, threads: int = 0) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def _session(cache: dict[str, Any] | None, path: Path) -> Any:
    """``_ort_session(path)``, created once per ``cache`` (a gate runs several inputs)."""
    if cache is None:
        return _ort_session(path)
    if str(path) not in cache:
        cache[str(path)] = _ort_session(path)
    return cache[str(path)]


def _run(sess: Any, outputs: list[str], feeds: dict[str, np.ndarray], graph: str, label: str) -> list[Any]:
    """``sess.run`` on the feeds it takes; an onnxruntime failure is a :class:`ParityError`."""
    names = [i.name for i in sess.get_inputs()]
    try:
        return list(sess.run(outputs, {n: feeds[n] for n in names}))
    except Exception as e:  # onnxruntime raises its own error types (Fail, InvalidArgument, ...)
        shapes = {n: tuple(feeds[n].shape) for n in names}
        raise ParityError(
            f"ONNX parity failed: onnxruntime cannot run graph {graph} on input {label} (shapes "
            f"{shapes}): {type(e).__name__}: {str(e)[:400]}. A shape was baked in while tracing "
            "(with --dynamic-batch: the batch size); compute shapes from tensors, or drop "
            "--dynamic-batch"
        ) from e


def _np(t: Any) -> np.ndarray:
    return t.detach().float().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _err(a: Any, b: Any) -> float:
    a, b = _np(a), _np(b)
    if a.shape != b.shape:
        raise ParityError(f"shape mismatch in parity: onnxruntime {a.shape} vs torch {b.shape}")
    from vla_ros.export.parity import max_abs

    return max_abs(a, b)


def _dual_parity(
    model: Any,
    out_dir: Path,
    files: dict[str, str],
    dual: dict[str, Any],
    obs: dict[str, Any],
    feeds: dict[str, np.ndarray],
    ref: Any,
    sessions: dict[str, Any] | None,
    label: str,
) -> dict[str, list[tuple[Any, Any]]]:
    torch = _torch()
    slow = _session(sessions, out_dir / files["onnx_slow"])
    fast = _session(sessions, out_dir / files["onnx_fast"])
    keys = list(dual["slow_outputs"])
    latent = dict(zip(keys, _run(slow, keys, feeds, files["onnx_slow"], label)))
    t_latent = model.export_slow(obs)
    pairs = {"slow": [(latent[k], t_latent[k]) for k in keys]}
    t_feeds = {**feeds, **{k: _np(t_latent[k]) for k in keys}}
    (f_out,) = _run(fast, ["actions"], t_feeds, files["onnx_fast"], label)
    with torch.no_grad():
        pairs["fast"] = [(f_out, model.export_fast(t_latent, obs))]
    (actions,) = _run(fast, ["actions"], {**feeds, **latent}, files["onnx_fast"], label)
    pairs["actions"] = [(actions, ref)]
    return pairs


def onnx_parity(
    model: Any,
    out_dir: Path,
    files: dict[str, str],
    split: dict[str, Any] | None,
    bound: float = PARITY_BOUNDS["fp32"],
    dual: dict[str, Any] | None = None,
    gate: str = "all",
    inputs: dict[str, Any] | None = None,
    sessions: dict[str, Any] | None = None,
    input_label: str | None = None,
) -> dict[str, Any]:
    """Run ONNX Runtime vs torch on one input; raise :class:`ParityError` above ``bound``.

    The input is ``example_inputs(1)`` (the trace input), or ``inputs`` (torch tensors keyed by
    ``io.input_names``, any batch size the graphs take); ``input_label`` names it in errors.
    The export gates run this on several inputs: :func:`vla_ros.export.parity.gate`.
    ``gate="all"`` bounds every compared output (intermediate features included: an exact
    export must reproduce them all); ``gate="actions"`` bounds only the end-to-end actions and
    reports the rest (int8 graphs, whose internal features are approximate by design).
    Reports ``per_output`` max abs differences and ``per_output_cosine`` (lowest per sample),
    over finite values: where torch's output is NaN/inf the graph must give the same (else the
    difference is inf); on the trace input torch's actions must be finite (else
    :class:`ParityError`).

    Split layouts are compared graph by graph (prefix features, step 0) and end to end: the
    runtime's prefix + step loop on ONNX Runtime against torch ``predict_action``. Dual layouts
    compare the slow graph (latent vs ``export_slow``), the fast graph fed torch's latent (vs
    ``export_fast``) and both chained on ONNX Runtime (vs ``predict_action``). ``sessions`` is a
    cache of ONNX Runtime sessions by path (reused across inputs). Raises :class:`ExportError`
    when torch itself fails on the input.
    """
    from vla_ros.export.parity import cosine, worst_cosine

    torch = _torch()
    model.eval()
    trace = inputs is None
    label = input_label or ("example_inputs(batch_size=1)" if trace else "the given inputs")
    inputs = dict(inputs) if inputs is not None else parity_inputs(model)
    feeds = {k: _np(v) if v.is_floating_point() else v.cpu().numpy() for k, v in inputs.items()}
    # per compared output, the (onnxruntime, torch) pairs (one per prefix feature, else one)
    pairs: dict[str, list[tuple[Any, Any]]] = {}
    with torch.no_grad():
        obs = {k: v for k, v in inputs.items() if k != "noise"}
        try:
            ref = model.predict_action(obs, noise=inputs.get("noise"))
        except Exception as e:  # any model error: say which input it was
            raise ExportError(
                f"torch {type(model).__name__}.predict_action fails on parity input {label}: "
                f"{type(e).__name__}: {str(e)[:400]}. The model must take every input in its valid "
                "range (images in [0, 1], normalized state, tokens from its tokenizer, any noise)"
            ) from e
        ref_np = _np(ref)
        ref_finite = bool(np.all(np.isfinite(ref_np)))
        if trace and not ref_finite:
            raise ParityError(
                f"torch {type(model).__name__}.predict_action gives non-finite actions (nan/inf) on "
                f"its own example input {label}: the model is broken there, parity cannot be judged"
            )
        if dual is not None:
            pairs.update(_dual_parity(model, out_dir, files, dual, obs, feeds, ref, sessions, label))
        elif split is None:
            sess = _session(sessions, out_dir / files["onnx"])
            (out,) = _run(sess, ["actions"], feeds, files["onnx"], label)
            pairs["actions"] = [(out, ref)]
        else:
            sp = _session(sessions, out_dir / files["onnx_prefix"])
            ss = _session(sessions, out_dir / files["onnx_step"])
            gnames, keys = split["prefix_outputs"], split["prefix_keys"]
            pout = dict(zip(gnames, _run(sp, gnames, feeds, files["onnx_prefix"], label)))
            tprefix = model.export_prefix(obs)
            pairs["prefix"] = [(pout[g], tprefix[k]) for g, k in zip(gnames, keys)]
            batch = int(feeds["state"].shape[0])
            x = feeds.get("noise", np.zeros((batch, *model.io_spec().noise_shape), np.float32))
            t_x = torch.from_numpy(x)
            # a conditioned step graph with nothing committed (mask 0) is the plain step
            horizon = model.io_spec().noise_shape[0]
            no_rtc = {"rtc_actions": np.zeros_like(x), "rtc_mask": np.zeros((batch, horizon), np.float32)}
            for i in range(int(split["num_steps"])):
                sf = {**no_rtc, **pout, "x": x, "step_index": np.array(i, dtype=np.int64)}
                (x_next,) = _run(ss, ["x_next"], sf, files["onnx_step"], label)
                if i == 0:
                    t_step = model.export_step(tprefix, t_x, torch.tensor(0, dtype=torch.int64))
                    pairs["step0"] = [(x_next, t_step)]
                x = x_next
            # the loop state may be wider than the actions (noise_dim): cut as the runtime does
            pairs["actions"] = [(x[..., : model.io_spec().action_dim], ref)]
            if split.get("rtc"):  # random committed prefixes with random delays
                pairs.update(
                    rtc_parity_pairs(
                        model,
                        out_dir,
                        files,
                        split,
                        pout,
                        tprefix,
                        feeds,
                        obs,
                        lambda p: _session(sessions, p),
                        _run,
                        label,
                    )
                )
    errs = {k: max((_err(a, b) for a, b in ps), default=0.0) for k, ps in pairs.items()}
    cos = {k: worst_cosine(cosine(_np(a), _np(b)) for a, b in ps) for k, ps in pairs.items()}
    worst_err = max(errs.values()) if gate == "all" else errs["actions"]
    report = {
        "reference": "torch predict_action (cpu, fp32)",
        "checked": "onnxruntime CPUExecutionProvider",
        "inputs": label,
        "max_abs_err": worst_err,
        "bound": bound,
        "gate": gate,
        "per_output": errs,
        "per_output_cosine": cos,
        "ref_max_abs": float(np.max(np.abs(ref_np[np.isfinite(ref_np)]), initial=0.0)),
        "ref_finite": ref_finite,
    }
    if not worst_err <= bound:
        raise ParityError(
            f"ONNX parity failed on input {label}: max |onnxruntime - torch| = {worst_err:.3g} > "
            f"{bound:g} (per output {errs}). The graph does not reproduce the model: a Python-side "
            "value was baked in while tracing (e.g. int(step_index)), or an op is exported "
            "wrongly; try --exporter dynamo or --layout monolithic"
        )
    return report
