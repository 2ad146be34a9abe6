"""Parity inputs and figures shared by the export gates (ONNX fp32, int8, TensorRT).

A graph traced on one input reproduces the model on that input even when tracing baked in a
branch taken on data (``if x.sum() > 0``), a value read with ``.item()``/``int()``, or the batch
size. So the gates compare on the trace input *and* on seeded random inputs drawn in each
input's valid range (:func:`random_inputs`) at batch 1, plus one at batch
:data:`DYNAMIC_BATCH_CHECK` when the graphs' batch axis is dynamic. Per compared output
(one per graph, and the end-to-end actions) the gate records the largest absolute difference
(bounded) and the lowest cosine similarity, each the worst over the inputs, with the input that
gave it. :func:`gate` raises :class:`ParityError` naming the graph, the input, the figure and the
bound.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.contract.errors import ParityError
from vla_ros.contract.io_spec import IOSpec, example_inputs
from vla_ros.export.parity_metrics import cosine, max_abs, worst_cosine

#: seeds of the random parity inputs at batch 1 (kept apart from the int8 calibration's 1..N)
RANDOM_SEEDS = (10_001, 10_002, 10_003)
#: batch size checked as well when the ONNX batch axis is dynamic
DYNAMIC_BATCH_CHECK = 3
#: label of the input the graphs were traced on
TRACE_LABEL = "trace input (example_inputs, batch 1)"
# characters of random instructions: ASCII letters and digits, and a few multi-byte UTF-8 ones
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789éüßø→"
#: a random instruction gets 1 / PROMPT_SHARE of the token limit when the tokenizer writes it
#: into a longer prompt with the state (pi0.5)
PROMPT_SHARE = 8
#: per-graph outputs first, end to end last: a failure names the most specific graph
_ORDER = ("prefix", "step0", "step_rtc0", "slow", "fast", "actions", "actions_rtc")


#: where the LeRobot tokenizers warn about instructions cut to the token limit
TOKENIZER_LOGGERS = ("vla_ros.spine.components",)


@contextlib.contextmanager
def _quiet(loggers: Sequence[str]) -> Iterator[None]:
    """Warnings of ``loggers`` (and their children) silenced for the block."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def random_instruction(rng: np.random.Generator, max_len: int) -> str:
    """1 to ``max(1, max_len // 3)`` words of 1-8 random characters (a few multi-byte)."""
    n_words = int(rng.integers(1, max(1, max_len // 3) + 1))
    words = ["".join(rng.choice(list(_ALPHABET), size=int(rng.integers(1, 9)))) for _ in range(n_words)]
    return " ".join(words)


def random_inputs(
    io: IOSpec, seed: int, batch_size: int = 1, root: str | Path | None = None
) -> dict[str, np.ndarray]:
    """Seeded model inputs in each input's valid range, keyed by ``io.input_names``
    (:func:`vla_ros.contract.io_spec.example_inputs`).

    ``images`` float32 uniform in [0, 1]; ``state`` and ``noise`` float32 N(0, 1) (state is
    normalized); ``tokens`` int64 ``[B, text_max_len]`` from random instructions of random
    length through the card's own tokenizer (with each sample's state where the tokenizer
    writes it into the prompt: pi0.5), so ids are in its vocabulary and the padding
    (the text mask) is what the runtime produces; a relative tokenizer file (a card's own copy)
    is looked up under ``root`` (the card folder).
    """
    if io.text_max_len <= 0:
        return example_inputs(io, seed=seed, batch_size=batch_size)
    from vla_ros.spine.components.text import get_tokenizer

    tok = get_tokenizer(io.tokenizer, root=root)
    # pi0.5's prompt wraps the instruction with the state: shorter instructions, so that
    # the state bins are inside the token limit (and matter) on the random inputs
    budget = io.text_max_len // PROMPT_SHARE if tok.needs_state else io.text_max_len

    def draw(rng: np.random.Generator, n: int) -> list[str]:
        return [random_instruction(rng, budget) for _ in range(n)]

    def tokenize(texts: list[str], state: np.ndarray) -> np.ndarray:
        # random text may be cut to the token limit, as the runtime cuts; the tokenizers' warning
        # is for the user's instructions, not for these
        with _quiet(TOKENIZER_LOGGERS):
            if tok.needs_state:  # pi0.5: the prompt carries the sample's (drawn) normalized state
                return np.asarray([tok.encode(t, io.text_max_len, state=s[-1]) for t, s in zip(texts, state)])
            return np.asarray([tok.encode(t, io.text_max_len) for t in texts])

    return example_inputs(io, seed=seed, batch_size=batch_size, tokenize=tokenize, instructions=draw)


def input_sets(
    io: IOSpec,
    dynamic_batch: bool,
    seeds: Sequence[int] = RANDOM_SEEDS,
) -> list[tuple[str, dict[str, Any] | None]]:
    """``(label, torch inputs)`` for a gate: the trace input (``None``: ``onnx_parity`` builds
    it from ``example_inputs``), one random input per seed at batch 1, and one at
    :data:`DYNAMIC_BATCH_CHECK` when dynamic."""
    import torch

    def torch_inputs(seed: int, batch: int) -> dict[str, Any]:
        return {k: torch.from_numpy(v) for k, v in random_inputs(io, seed, batch).items()}

    out: list[tuple[str, dict[str, Any] | None]] = [(TRACE_LABEL, None)]
    out += [(f"random seed {s} (batch 1)", torch_inputs(s, 1)) for s in seeds]
    if dynamic_batch:
        s = seeds[-1] + 1
        out.append((f"random seed {s} (batch {DYNAMIC_BATCH_CHECK})", torch_inputs(s, DYNAMIC_BATCH_CHECK)))
    return out


def compare_runs(
    ref: Callable[[dict[str, np.ndarray]], np.ndarray],
    got: Callable[[dict[str, np.ndarray]], np.ndarray],
    inputs: Sequence[tuple[str, dict[str, np.ndarray]]],
) -> dict[str, Any]:
    """Two runtimes' outputs on each of ``inputs`` (``(label, feeds)``), for gates between
    backends (TensorRT vs ONNX Runtime): ``max_abs`` (worst, see :func:`max_abs`), ``cosine``
    (lowest), ``worst_input`` (label), ``per_input`` (max_abs by label). The first input's
    reference output must be finite (else :class:`ParityError`)."""
    per_input: dict[str, float] = {}
    cos: list[float] = []
    for label, feeds in inputs:
        a = np.asarray(got(dict(feeds)), dtype=np.float64)
        b = np.asarray(ref(dict(feeds)), dtype=np.float64)
        if a.shape != b.shape:
            raise ParityError(f"shape mismatch in parity on input {label}: {a.shape} vs {b.shape}")
        if label == inputs[0][0] and not np.all(np.isfinite(b)):
            raise ParityError(
                f"the reference output is not finite (nan/inf) on input {label}: the model is "
                "broken there, parity cannot be judged"
            )
        per_input[label] = max_abs(a, b)
        cos.append(cosine(a, b))
    worst = max(per_input, key=lambda lb: per_input[lb])
    return {
        "max_abs": per_input[worst],
        "cosine": worst_cosine(cos),
        "worst_input": worst,
        "per_input": per_input,
    }


def graph_names(files: Mapping[str, str], split: Any, dual: Any) -> dict[str, str]:
    """Human name of the graph(s) behind each compared output."""
    if dual is not None:
        s, f = files["onnx_slow"], files["onnx_fast"]
        return {"slow": s, "fast": f, "actions": f"{s} -> {f} (end to end)"}
    if split is not None:
        p, s = files["onnx_prefix"], files["onnx_step"]
        names = {"prefix": p, "step0": f"{s} (step 0)", "actions": f"{p} + {s} loop (end to end)"}
        rtc = split.get("rtc") if isinstance(split, Mapping) else None
        if rtc:  # real-time chunking: random committed prefixes with random delays
            r = files[rtc["role"]]
            names["step_rtc0"] = f"{r} (step 0, {rtc['mode']} RTC, random committed prefix)"
            names["actions_rtc"] = f"{p} + {r} loop ({rtc['mode']} RTC, end to end)"
        return names
    return {"actions": files["onnx"]}


def gate(
    model: Any,
    out_dir: Path,
    files: Mapping[str, str],
    split: Mapping[str, Any] | None,
    dual: Mapping[str, Any] | None,
    bound: float,
    inputs: Sequence[tuple[str, dict[str, Any] | None]],
    gated: str = "all",
    what: str = "ONNX",
    hint: str | None = None,
    compared: str = "onnxruntime - torch",
) -> dict[str, Any]:
    """ONNX Runtime vs torch on every input of ``inputs``; the worst figures per output.

    ``gated="all"`` bounds every compared output, ``"actions"`` the end-to-end actions only
    (the others are reported). Figures are over finite values: where torch gives NaN/inf on a
    random input the graph must give the same (listed in ``ref_nonfinite_inputs``; the runtime's
    NaN gate handles them), elsewhere a mismatch is inf. Returns the report stored in
    ``card.parity["onnxruntime"]``: ``max_abs_err`` and ``cosine_min`` over the gated outputs,
    and per output (``graphs``) the graph, ``max_abs``, ``cosine`` and ``worst_input``. Raises
    :class:`ParityError` above ``bound`` naming the graph, the input, the figure and the bound
    (``hint``: what to do; default: the likely cause, from whether the trace input passes).
    """
    from vla_ros.export.onnx_parity import onnx_parity

    sessions: dict[str, Any] = {}
    names = graph_names(files, split, dual)
    per: dict[str, dict[str, Any]] = {}
    by_input: dict[str, dict[str, float]] = {}
    ref_max = 0.0
    nonfinite: list[str] = []  # inputs on which torch itself gives NaN/inf (the graph matched it)
    for label, feeds in inputs:
        rep = onnx_parity(
            model,
            out_dir,
            dict(files),
            dict(split) if split is not None else None,
            math.inf,
            dual=dict(dual) if dual is not None else None,
            gate=gated,
            inputs=feeds,
            sessions=sessions,
            input_label=label,
        )
        by_input[label] = rep["per_output"]
        ref_max = max(ref_max, rep["ref_max_abs"])
        if not rep["ref_finite"]:
            nonfinite.append(label)
        for out, err in rep["per_output"].items():
            cos = rep["per_output_cosine"][out]
            g = per.setdefault(
                out, {"graph": names.get(out, out), "max_abs": -1.0, "cosine": 1.0, "worst_input": label}
            )
            if not err <= g["max_abs"]:  # NaN/inf count as worse
                g["max_abs"], g["worst_input"] = err, label
            g["cosine"] = worst_cosine((g["cosine"], cos))
    outs = [o for o in (*_ORDER, *per) if o in per]
    outs = list(dict.fromkeys(outs))
    bounded = outs if gated == "all" else ["actions"]
    worst = max(per[o]["max_abs"] for o in bounded)
    cos_min = worst_cosine(per[o]["cosine"] for o in bounded)
    report = {
        "reference": "torch predict_action (cpu, fp32)",
        "checked": "onnxruntime CPUExecutionProvider",
        "inputs": [label for label, _ in inputs],
        "gate": gated,
        "bound": bound,
        "max_abs_err": worst,
        "cosine_min": cos_min,
        "per_output": {o: per[o]["max_abs"] for o in outs},
        "graphs": {o: per[o] for o in outs},
        "ref_max_abs": ref_max,
        "ref_nonfinite_inputs": nonfinite,
    }
    for o in bounded:
        if not per[o]["max_abs"] <= bound:
            raise ParityError(_failure(what, compared, o, per[o], bound, by_input, len(inputs), hint))
    return report


def _failure(
    what: str,
    compared: str,
    out: str,
    fig: Mapping[str, Any],
    bound: float,
    by_input: Mapping[str, Mapping[str, float]],
    n: int,
    hint: str | None,
) -> str:
    label = fig["worst_input"]
    trace_err = by_input.get(TRACE_LABEL, {}).get(out, math.inf)
    failed = [lb for lb, errs in by_input.items() if not errs.get(out, math.inf) <= bound]
    if hint is None:
        at_batch_1 = all("(batch 1)" in lb for lb in failed if lb != TRACE_LABEL)
        if trace_err <= bound and at_batch_1:
            hint = (
                f"The graph matches torch on the trace input ({trace_err:.2g}) but not on "
                f"{len(failed)} of {n - 1} other valid inputs: tracing baked in a branch taken on "
                "data (Python `if` on a tensor value) or a value read with .item()/int()/float(). "
                "Write the branch with torch.where (or torch.cond with --exporter dynamo)"
            )
        elif trace_err <= bound:
            hint = (
                f"The graph matches torch on the trace input ({trace_err:.2g}) but not at another "
                "batch size: tracing baked in the batch size (e.g. int(x.shape[0])). Compute "
                "shapes from tensors (x.shape[0] without int(), reshape(-1, ...)), or drop "
                "--dynamic-batch"
            )
        else:
            hint = (
                "The graph does not reproduce the model: a Python-side value was baked in while "
                "tracing (e.g. int(step_index)), or an op is exported wrongly; try --exporter "
                "dynamo or --layout monolithic"
            )
    return (
        f"{what} parity failed: graph {fig['graph']} (output {out!r}) on input {label}: "
        f"max |{compared}| = {fig['max_abs']:.3g} > {bound:g} (cosine "
        f"{fig['cosine']:.6f}; fails on {failed}). {hint}"
    )


def card_parity_feeds(card: Any, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic model inputs ``{input name: array}`` (batch 1) built from the card alone: the
    fixed feeds of the TensorRT and int8 gates and of calibration. ``card`` is a
    :class:`~vla_ros.contract.card.PolicyCard`; the instruction goes through the runtime's
    tokenizer (:func:`vla_ros.contract.io_spec.example_inputs`)."""
    from vla_ros.runtime.processing import get_tokenizer

    def tokenize(texts: list[str], state: np.ndarray) -> np.ndarray:
        # the state reaches tokenizers that write it into the prompt
        step = get_tokenizer(card.io, root=card.root)
        return np.concatenate([step(t, state=s[-1]) for t, s in zip(texts, state)])

    return example_inputs(card.io, seed=seed, tokenize=tokenize, instructions=("pick up the red cube",))
