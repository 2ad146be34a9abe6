"""ONNX Runtime against torch on one input: the comparison every ONNX parity gate runs.

:func:`onnx_parity` runs the exported graph(s) of one layout (monolithic, split with the runtime's
Euler loop, dual, and the RTC step graphs) on ONNX Runtime's CPU provider and torch on the same
input, and reports the difference per compared output. The gates that call it on several inputs
live in :mod:`vla_ros.export.parity`; the graphs are written by :mod:`vla_ros.export.onnx_export`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.contract.errors import ExportError, ParityError
from vla_ros.export.onnx_export import PARITY_BOUNDS, _torch, parity_inputs
from vla_ros.export.parity_metrics import cosine, max_abs, worst_cosine
from vla_ros.export.rtc_graphs import rtc_parity_pairs


def ort_session(path: Path, threads: int = 0) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def _session(cache: dict[str, Any] | None, path: Path) -> Any:
    """``ort_session(path)``, created once per ``cache`` (a gate runs several inputs)."""
    if cache is None:
        return ort_session(path)
    if str(path) not in cache:
        cache[str(path)] = ort_session(path)
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
