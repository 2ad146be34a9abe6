"""int8 ONNX graphs for CPU inference: static QDQ quantization with ONNX Runtime's quantizer.

On a CPU without a GPU, fp32 inference is capped by the machine's fp32 GEMM peak (see
``benchmarks/bench_roofline.py``: ONNX Runtime already runs ``act_small`` at it). int8 with
VNNI/AVX512 or ARM dot-product instructions is the way past it. This is a *precision change*:
the int8 graph approximates the fp32 model, its error is measured against torch fp32 and gated
by a stated bound (``PARITY_BOUNDS["int8"]``, in normalized action units), and the card records
how it was calibrated.

Method: ``onnxruntime.quantization.quantize_static`` in QDQ format, weights int8 per output
channel, activations uint8 with ranges from calibration samples (MinMax), for Conv, MatMul and
Gemm. Calibration samples are the model's own inputs: either observations the user gives (a
``.npz``, see :func:`load_calibration`) passed through the card's pre-processing, or synthetic
inputs drawn from the card (uniform images, standard-normal normalized state) when none are given,
which the card then says. For a split layout the step graph is calibrated on the inputs it sees
inside the fp32 denoising loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.contract.card import PolicyCard
from vla_ros.contract.errors import ExportError
from vla_ros.contract.io_spec import IOSpec

#: operator types quantized (the ones carrying the FLOPs, see vla_ros.export.flops)
OP_TYPES = ("Conv", "MatMul", "Gemm")


def read_calibration(path: str | Path, io: IOSpec) -> dict[str, np.ndarray]:
    """Read and check a calibration ``.npz`` (see :func:`load_calibration`) against ``io``."""
    p = Path(path)
    if not p.is_file():
        raise ExportError(f"--calibration {str(p)!r} does not exist; give a .npz of observations")
    try:
        with np.load(p, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except Exception as exc:
        raise ExportError(f"--calibration {str(p)!r} is not a readable .npz: {exc}") from exc
    want = [f"images/{c}" for c in io.camera_names] + ["state"]
    missing = [k for k in want if k not in data]
    if missing:
        raise ExportError(
            f"--calibration {str(p)!r} lacks {missing}; it has {sorted(data)}. Expected "
            f"images/<camera> uint8 [N, H, W, 3] for cameras {list(io.camera_names)} and state "
            f"[N, {io.state_dim}]"
        )
    n = int(data["state"].shape[0]) if data["state"].ndim else 0
    if n == 0 or any(data[k].ndim == 0 or int(data[k].shape[0]) != n for k in want):
        raise ExportError(
            f"--calibration {str(p)!r}: every array needs the same number N > 0 of samples; "
            f"got { ({k: tuple(data[k].shape) for k in want}) }"
        )
    return data


def load_calibration(path: str | Path, card: PolicyCard) -> list[dict[str, np.ndarray]]:
    """Observations from a ``.npz`` -> model input dicts through the card's pre-processing.

    Keys: ``images/<camera>`` uint8 ``[N, H, W, 3]`` for every card camera (any size: resized
    like at run time), ``state`` ``[N, state_dim]`` in raw units, optionally ``instruction``
    (``[N]`` strings, or one string for all).
    """
    from vla_ros.contract.observation import Observation
    from vla_ros.runtime.processing import Preprocessor

    io = card.io
    data = read_calibration(path, io)
    n = int(data["state"].shape[0])
    text = data.get("instruction")
    pre = Preprocessor(card)
    out = []
    texts = [""] * n if text is None else np.broadcast_to(np.asarray(text, dtype=str), (n,)).tolist()
    for i in range(n):
        obs = Observation(
            images={c: data[f"images/{c}"][i] for c in io.camera_names},
            state=data["state"][i],
            instruction=texts[i],
        )
        out.append(pre(obs))
    return out


def synthetic_calibration(card: PolicyCard, samples: int, seed: int = 1) -> list[dict[str, np.ndarray]]:
    """``samples`` input dicts drawn from the card (uniform images, N(0, 1) normalized state)."""
    from vla_ros.export.parity import card_parity_feeds

    return [card_parity_feeds(card, seed=seed + i) for i in range(samples)]


def _with_noise(
    card: PolicyCard, feeds: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    if card.io.needs_noise and "noise" not in feeds:
        feeds = {**feeds, "noise": rng.standard_normal((1, *card.io.output_shape), dtype=np.float32)}
    return feeds


def graph_calibration(
    card: PolicyCard, samples: Sequence[dict[str, np.ndarray]]
) -> dict[str, list[dict[str, np.ndarray]]]:
    """Per fp32 ONNX file role, the input dicts its graph sees for ``samples``."""
    from vla_ros.export.onnx_parity import ort_session

    rng = np.random.default_rng(0)
    feeds = [_with_noise(card, dict(s), rng) for s in samples]
    if card.layout == "monolithic":
        sess = ort_session(card.path("onnx"))
        names = [i.name for i in sess.get_inputs()]
        return {"onnx": [{n: f[n] for n in names} for f in feeds]}
    if card.layout != "split":
        raise ExportError(
            f"--precision int8 supports the monolithic and split layouts; card {card.name!r} is "
            f"{card.layout!r}. Export with --precision fp32, or --layout monolithic"
        )
    spec = card.export["split"]
    prefix = ort_session(card.path("onnx_prefix"))
    step = ort_session(card.path("onnx_step"))
    pnames = [i.name for i in prefix.get_inputs()]
    snames = [i.name for i in step.get_inputs()]
    gnames = list(spec["prefix_outputs"])
    prefix_feeds, step_feeds = [], []
    for f in feeds:
        pf = {n: f[n] for n in pnames}
        prefix_feeds.append(pf)
        pout = dict(zip(gnames, prefix.run(gnames, pf)))
        x = f.get("noise", np.zeros((1, *card.io.output_shape), np.float32))
        for i in range(int(spec["num_steps"])):
            sf = {**pout, "x": x, "step_index": np.array(i, dtype=np.int64)}
            # a conditioned RTC step graph (flow_matching rtc: {max_delay}): nothing committed
            sf |= {"rtc_actions": np.zeros_like(x), "rtc_mask": np.zeros(x.shape[:2], np.float32)}
            sf = {n: sf[n] for n in snames}
            step_feeds.append(sf)
            x = step.run(["x_next"], sf)[0]
    return {"onnx_prefix": prefix_feeds, "onnx_step": step_feeds}


class _Reader:
    """``CalibrationDataReader`` over a list of input dicts."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_graph(src: Path, dst: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """Static QDQ int8 quantization of one ONNX file, calibrated on ``feeds``."""
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = type("Reader", (_Reader, CalibrationDataReader), {})(feeds)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        # symbolic shape inference + graph optimization first, as onnxruntime recommends
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        quantize_static(
            str(pre),
            str(dst),
            reader,
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(OP_TYPES),
        )


def quantize_card(card: Any, calibration: str | Path | None = None, samples: int = 16) -> dict[str, Any]:
    """Add int8 graphs to ``card``: each ONNX role now names its int8 file, ``<role>_fp32`` the
    fp32 one. Returns the record stored as ``card.export["quantization"]``."""
    if calibration is not None:
        inputs = load_calibration(calibration, card)
        source = f"{Path(calibration).name} ({len(inputs)} observations)"
    else:
        inputs = synthetic_calibration(card, samples)
        source = f"synthetic ({len(inputs)} samples: uniform images, N(0, 1) normalized state)"
    per_role = graph_calibration(card, inputs)
    for role, feeds in per_role.items():
        src = card.path(role)
        dst = src.with_name(f"{src.stem}.int8.onnx")
        try:
            quantize_graph(src, dst, feeds)
        except Exception as exc:  # the quantizer raises plain Exceptions
            raise ExportError(f"int8 quantization of {src.name} failed: {type(exc).__name__}: {exc}") from exc
        card.add_file(f"{role}_fp32", src.name)
        card.add_file(role, dst.name)
    return {
        "method": "onnxruntime quantize_static, QDQ, int8 weights per channel, uint8 activations (MinMax)",
        "op_types": list(OP_TYPES),
        "calibration": source,
    }
