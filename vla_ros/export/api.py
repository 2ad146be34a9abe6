"""``export_policy``: spine model (YAML and/or checkpoint, or a module) -> policy card folder."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vla_ros.contract.card import CARD_FILE, Normalization, PolicyCard
from vla_ros.contract.errors import (
    CardError,
    ExportError,
    ParityError,
)
from vla_ros.export.onnx_export import (
    DEFAULT_OPSET,
    ONNX_PRECISIONS,
    PARITY_BOUNDS,
    default_layout,
    export_onnx,
    model_layouts,
)
from vla_ros.export.parity import RANDOM_SEEDS, card_parity_feeds, compare_runs, input_sets, random_inputs
from vla_ros.export.parity import gate as parity_gate
from vla_ros.export.progress import Progress
from vla_ros.export.sources import (
    attach_tokenizer,
    build_model,
    classify_sources,
    load_lerobot_source,
)
from vla_ros.runtime.checkpoint import apply_state_dict, load_state_dict

BACKEND_NAMES = {
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "ort": "onnx",
    "tensorrt": "tensorrt",
    "trt": "tensorrt",
    "torch": "torch",
}


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("vla_ros", "torch", "onnx", "onnxruntime", "numpy"):
        with contextlib.suppress(ImportError, AttributeError):
            out[mod] = str(__import__(mod).__version__)
    return out


def parse_backends(backends: Iterable[str] | str) -> list[str]:
    """Normalize a backend list (``onnx,tensorrt``); ``onnx`` is always included."""
    items = backends.split(",") if isinstance(backends, str) else list(backends)
    out = ["onnx"]
    for b in items:
        key = b.strip().lower()
        if not key:
            continue
        if key not in BACKEND_NAMES:
            raise ExportError(
                f"unknown export backend {b!r}; choose from onnx, tensorrt (torch weights are always written)"
            )
        if BACKEND_NAMES[key] not in out:
            out.append(BACKEND_NAMES[key])
    return out


def _normalization(io: Any, normalization: Normalization | Mapping[str, Any] | None) -> Normalization:
    if normalization is None:
        return Normalization.identity(io.state_dim, io.action_dim)
    if isinstance(normalization, Normalization):
        return normalization
    try:
        return Normalization.from_dict(dict(normalization), "normalization")
    except CardError as e:
        raise ExportError(str(e)) from e


def default_joints(io: Any) -> tuple[list[str], list[str]]:
    """``joint_0..`` for state; actions reuse the first names (same joints) when they fit."""
    state = [f"joint_{i}" for i in range(io.state_dim)]
    action = [f"joint_{i}" for i in range(io.action_dim)]
    return state, action


def _remove_old_card(out: Path) -> None:
    """Delete a previous card.yaml (and the files it named) so a failed export leaves no card."""
    card_path = out / CARD_FILE
    if not card_path.is_file():
        return
    try:
        old = PolicyCard.load(out)
        for rel in old.files.values():
            (out / rel).unlink(missing_ok=True)
    except Exception:  # a broken old card is simply replaced
        pass
    card_path.unlink(missing_ok=True)


@dataclass(frozen=True)
class ExportOptions:
    """How :func:`export_policy` exports: every setting of ``vla-ros export`` in one value.

    Attributes:
        backends: ``onnx`` always; add ``tensorrt`` for engine(s) (needs TensorRT and a GPU).
        precision: ``fp32``; ``int8`` (int8 ONNX graphs for CPUs); ``fp16``/``bf16``/``fp8``
            (TensorRT engines).
        layout: ``monolithic``, ``split`` or ``dual``; ``None``: the family's default.
        checkpoint: weights loaded into the model (safetensors/torch file or folder).
        name: card name (default: the config file's stem or the family).
        state_joints, action_joints: joint names (default ``joint_i``).
        normalization: statistics (default identity).
        delta_to_absolute: whether the runtime adds the state to delta actions (default: when
            every action joint is a state joint).
        opset, exporter, dynamic_batch: ONNX settings.
        trt_options: ``workspace_gb``, ``version_compatible``, ``hardware_compatibility``,
            ``builder_optimization_level``.
        model_config: the config of an already-built module (for the torch backend).
        seed: torch seed of a random initialization.
        export_command: the command recorded in the card (default: one rebuilt from these).
        calibration, calibration_samples: int8 calibration (.npz of observations, or synthetic).
    """

    backends: Iterable[str] | str = ("onnx",)
    precision: str = "fp32"
    layout: str | None = None
    checkpoint: str | Path | None = None
    name: str | None = None
    state_joints: list[str] | None = None
    action_joints: list[str] | None = None
    normalization: Normalization | Mapping[str, Any] | None = None
    delta_to_absolute: bool | None = None
    opset: int = DEFAULT_OPSET
    exporter: str = "torchscript"
    dynamic_batch: bool = False
    trt_options: Mapping[str, Any] | None = None
    model_config: Mapping[str, Any] | None = None
    seed: int = 0
    export_command: str | None = None
    calibration: str | Path | None = None
    calibration_samples: int = 16

    def check(self, out_dir: str | Path) -> list[str]:
        """Refuse combinations that cannot work, before anything is written -> the backends.

        Raises :class:`ExportError` naming the option, its value and the fix.
        """
        wanted = parse_backends(self.backends)
        precision = self.precision
        if precision not in PARITY_BOUNDS:
            raise ExportError(f"precision {precision!r} is not one of {sorted(PARITY_BOUNDS)}")
        if precision == "int8" and self.calibration_samples < 1 and self.calibration is None:
            raise ExportError(
                f"--calibration-samples {self.calibration_samples} must be >= 1 (synthetic samples for "
                "int8 calibration), or give --calibration obs.npz"
            )
        if precision == "int8" and "tensorrt" in wanted:
            raise ExportError(
                "--precision int8 makes int8 ONNX graphs for onnxruntime on a CPU; TensorRT engines "
                "use fp16/bf16/fp8 here. Drop tensorrt from --backends, or pick one of those"
            )
        if "tensorrt" in wanted:
            from vla_ros.runtime.trt_engine import tensorrt_unavailable_reason

            reason = tensorrt_unavailable_reason()
            if reason:
                raise ExportError(
                    f"--backends tensorrt cannot run here: {reason}. Export ONNX here (drop "
                    "tensorrt), copy the card folder to the target and run there: "
                    f"vla-ros export {out_dir} --backends tensorrt --precision {precision}"
                )
        if precision not in ONNX_PRECISIONS and "tensorrt" not in wanted:
            raise ExportError(
                f"--precision {precision} applies to the TensorRT engine; the ONNX graph is fp32 (or "
                "int8 for CPUs). Add --backends onnx,tensorrt or use --precision fp32 or int8"
            )
        return wanted


def export_policy(
    model_or_yaml: Any,
    out_dir: str | Path,
    options: ExportOptions | None = None,
    *,
    progress: Progress | None = None,
    **settings: Any,
) -> PolicyCard:
    """Export a spine model to a policy card folder and return the card.

    ``model_or_yaml`` is a family YAML path (or a name under ``config/models``), a config dict,
    a checkpoint path, or an already-built module (then set ``model_config`` so the torch
    backend can rebuild it). ``options`` (:class:`ExportOptions`) says how; keyword ``settings``
    override single fields (``export_policy(cfg, out, layout="split")``). Writes
    ``model.safetensors`` and the layout's ONNX graph(s) (:mod:`~vla_ros.export.onnx_export`),
    runs the parity gates (:mod:`~vla_ros.export.parity`; :class:`ParityError` above the bound),
    quantizes (``int8``, :mod:`~vla_ros.export.quantize`), builds TensorRT engine(s)
    (:mod:`~vla_ros.export.tensorrt`), and writes ``card.yaml`` last. A failed export removes
    what it wrote (no card is left in ``out_dir``).

    Raises :class:`ExportError` (bad options, untraceable model), :class:`ParityError`,
    ``TypeError`` for a keyword that is not an :class:`ExportOptions` field.
    """
    opts = dataclasses.replace(options or ExportOptions(), **settings)
    return _export(model_or_yaml, out_dir, opts, progress)


def _export(
    model_or_yaml: Any, out_dir: str | Path, o: ExportOptions, progress: Progress | None
) -> PolicyCard:
    """The body of :func:`export_policy`."""
    import torch

    wanted = o.check(out_dir)
    precision, layout, checkpoint, seed = o.precision, o.layout, o.checkpoint, o.seed
    progress = progress or Progress(enabled=False)
    progress.total = 5 + (1 if "tensorrt" in wanted else 0) + (2 if precision == "int8" else 0)
    out = Path(out_dir)

    with progress.step("build model"):
        prov: dict[str, Any] = {}
        if isinstance(model_or_yaml, torch.nn.Module):
            model = model_or_yaml.eval()
            given = o.model_config or getattr(model, "config", None)
            cfg = dict(given) if isinstance(given, Mapping) else None
            if cfg is not None:
                cfg.pop("pretrained", None)
            prov["source"] = f"module {type(model).__name__}"
            if checkpoint is not None:
                apply_state_dict(model, load_state_dict(checkpoint), str(checkpoint))
                prov["checkpoint"] = str(checkpoint)
        else:
            config, ckpt = model_or_yaml, checkpoint
            if isinstance(model_or_yaml, (str, Path)):
                c, k, _ = classify_sources([model_or_yaml])
                config, ckpt = c, (k or checkpoint)
            model, cfg, prov = build_model(config, ckpt, seed=seed)
        io = model.io_spec()
        layout = layout or default_layout(model, cfg)
        if layout not in model_layouts(model):
            raise ExportError(
                f"layout {layout!r} is not available for {type(model).__name__} "
                f"(available: {model_layouts(model)})"
            )
        family = str(io.extra.get("family") or getattr(model, "FAMILY", "") or type(model).__name__)
        progress.note(f"{family}: layout {layout}, io {dict(io.input_shapes(1))}")

    sj, aj = default_joints(io)
    card = PolicyCard(
        name=o.name or (Path(str(model_or_yaml)).stem if isinstance(model_or_yaml, (str, Path)) else family),
        family=family,
        io=io,
        state_joints=list(o.state_joints) if o.state_joints is not None else sj,
        action_joints=list(o.action_joints) if o.action_joints is not None else aj,
        normalization=_normalization(io, o.normalization),
        export={
            "layout": layout,
            "precision": precision,
            "opset": o.opset,
            "exporter": o.exporter,
            "dynamic_batch": o.dynamic_batch,
        },
        model_config=cfg,
        root=out,
    )
    delta_to_absolute = o.delta_to_absolute
    if delta_to_absolute is None:
        delta_to_absolute = io.action_mode == "delta" and all(
            j in card.state_joints for j in card.action_joints
        )
    card.postprocess = {"delta_to_absolute": bool(delta_to_absolute)}
    try:
        card.validate()
    except CardError as e:
        raise ExportError(str(e)) from e
    if precision == "int8":  # refuse before an old card is removed and the export time is spent
        if layout not in ("monolithic", "split"):
            raise ExportError(
                f"--precision int8 supports the monolithic and split layouts; {card.name!r} exports "
                f"{layout!r}. Export with --precision fp32, or --layout monolithic"
            )
        if o.calibration is not None:
            from vla_ros.export.quantize import read_calibration

            read_calibration(o.calibration, io)
    card.provenance = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "platform": platform.platform(),
        "export_command": o.export_command
        or _default_command(model_or_yaml, checkpoint, out, wanted, precision, layout),
        **prov,
    }
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    _remove_old_card(out)
    before = set(out.iterdir())
    try:
        _write_card(card, model, wanted, progress, o.calibration, o.calibration_samples, o.trt_options or {})
    except BaseException:
        _remove_partial(out, card, before, created)
        raise
    return card


def _remove_partial(out: Path, card: PolicyCard, before: set[Path], created: bool) -> None:
    """After a failed export: delete what it wrote (no card.yaml was written), and ``out`` when
    the export created it and it is empty again."""
    written = {out / rel for rel in card.files.values()}
    written |= {p for p in out.iterdir() if p not in before and p.is_file()}
    for p in written:
        p.unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            out.rmdir()


def _write_card(
    card: PolicyCard,
    model: Any,
    wanted: list[str],
    progress: Progress,
    calibration: str | Path | None,
    calibration_samples: int,
    trt_options: Mapping[str, Any],
) -> None:
    """The writing half of :func:`export_policy` into ``card.root``, with the settings in
    ``card.export``: weights, ONNX, parity gates, engines, card.yaml last."""
    from vla_ros.spine.weights import save_weights

    out = Path(card.root)  # type: ignore[arg-type]
    layout, precision, opset = card.layout, card.precision, int(card.export["opset"])
    exporter, dynamic_batch = str(card.export["exporter"]), bool(card.export["dynamic_batch"])

    with progress.step("write weights (model.safetensors)"):
        save_weights(model, out / "model.safetensors")
        card.add_file("safetensors", "model.safetensors")

    with progress.step(f"export ONNX ({layout}, opset {opset}, {exporter}) + onnx.checker"):
        res = export_onnx(model, out, layout, opset=opset, exporter=exporter, dynamic_batch=dynamic_batch)
        for role, rel in res["files"].items():
            card.add_file(role, rel)
        card.export["opset"] = res["opset"]
        if res["split"] is not None:
            card.export["split"] = res["split"]
        if res["dual"] is not None:
            card.export["dual"] = res["dual"]

    sets = input_sets(card.io, dynamic_batch)
    with progress.step(f"parity: onnxruntime vs torch on {len(sets)} inputs (trace input + random)"):
        bound = PARITY_BOUNDS["fp32"]
        report = parity_gate(model, out, res["files"], res["split"], res["dual"], bound, sets)
        card.parity = {
            "max_abs_err": report["max_abs_err"],
            "cosine_min": report["cosine_min"],
            "bound": bound,
            "onnxruntime": report,
        }
        progress.note(
            f"max |ort - torch| = {report['max_abs_err']:.2e} (bound {bound:g}), "
            f"cosine >= {report['cosine_min']:.6f}"
        )

    if precision == "int8":
        _quantize_int8(card, model, res, calibration, calibration_samples, progress)

    if "tensorrt" in wanted:
        with progress.step(f"TensorRT engine ({precision})"):
            add_tensorrt_engines(card, precision, trt_options, progress=progress)

    with progress.step("write card.yaml"):
        card.save()


#: inputs the int8 gate compares on at batch 1 (the trace input + random ones the synthetic
#: calibration never saw; one more at batch 3 when the batch axis is dynamic)
INT8_GATE_SAMPLES = 8


def _quantize_int8(
    card: PolicyCard,
    model: Any,
    res: Mapping[str, Any],
    calibration: str | Path | None,
    samples: int,
    progress: Progress,
) -> None:
    """int8 graphs next to the fp32 ones (:mod:`vla_ros.export.quantize`), then their parity gate."""
    from vla_ros.export.quantize import quantize_card

    with progress.step(f"quantize int8 (calibration: {calibration or f'{samples} synthetic samples'})"):
        card.export["quantization"] = quantize_card(card, calibration, samples)
    sets = input_sets(
        card.io,
        bool(card.export.get("dynamic_batch")),
        seeds=tuple(RANDOM_SEEDS[0] + k for k in range(INT8_GATE_SAMPLES - 1)),
    )
    with progress.step(f"parity: onnxruntime int8 vs torch fp32 ({len(sets)} inputs)"):
        int8_files = {role: card.files[role] for role in res["files"]}
        bound = PARITY_BOUNDS["int8"]
        report = parity_gate(
            model,
            card.root,  # type: ignore[arg-type]
            int8_files,
            res["split"],
            res["dual"],
            bound,
            sets,
            gated="actions",
            what="int8",
            compared="onnxruntime int8 - torch fp32",
            hint=(
                "Figures in normalized action units: the int8 graphs approximate this model too coarsely; "
                "calibrate on real observations (--calibration obs.npz), or export --precision "
                "fp32. Families whose outputs are discrete tokens or long samplers amplify int8 "
                "error most"
            ),
        )
        card.parity = {
            "max_abs_err": report["max_abs_err"],
            "cosine_min": report["cosine_min"],
            "bound": bound,
            "precision": "int8",
            "onnxruntime": report,
            "onnxruntime_fp32": card.parity["onnxruntime"],
        }
        progress.note(
            f"max |ort int8 - torch fp32| = {report['max_abs_err']:.2e} (bound {bound:g}), "
            f"cosine >= {report['cosine_min']:.6f}"
        )


def _default_command(src: Any, ckpt: Any, out: Path, backends: list[str], precision: str, layout: str) -> str:
    parts = ["vla-ros", "export"]
    if isinstance(src, (str, Path)):
        parts.append(str(src))
    else:
        parts.append("<model.yaml>")
    if ckpt is not None:
        parts.append(str(ckpt))
    parts += [
        "--out",
        str(out),
        "--backends",
        ",".join(backends),
        "--precision",
        precision,
        "--layout",
        layout,
    ]
    return " ".join(parts)


def add_tensorrt_engines(
    card: PolicyCard,
    precision: str,
    trt_options: Mapping[str, Any],
    progress: Progress | None = None,
) -> None:
    """Build the card's TensorRT engine(s) from its ONNX graph(s) and gate them on parity.

    The reference is ONNX Runtime (CPU, fp32) on :func:`card_parity_feeds` and the export's
    random valid inputs (:func:`vla_ros.export.parity.random_inputs`); it matched torch within
    1e-4 at export. Raises :class:`ParityError` naming the engine(s), the input, the figure and
    the bound. Records ``export.tensorrt`` (TensorRT version, compute capability,
    flags) and ``parity.tensorrt``. Works on a card loaded from disk (``vla-ros export CARD``).
    """
    from vla_ros.export.tensorrt import build_engine
    from vla_ros.runtime.ort_backend import OnnxRuntimeBackend
    from vla_ros.runtime.trt_backend import TensorRTBackend

    if card.root is None:
        raise CardError("add_tensorrt_engines needs a card with a folder")
    if card.precision == "int8":
        raise ExportError(
            f"card {card.name!r} in {card.root} is an int8 card for onnxruntime on a CPU; TensorRT "
            "engines are built from fp32 graphs. Export a separate card for the GPU: vla-ros export "
            "MODEL --out DIR --backends onnx,tensorrt --precision fp16"
        )
    opts = dict(trt_options)
    pairs = {
        "onnx": "engine",
        "onnx_prefix": "engine_prefix",
        "onnx_step": "engine_step",
        "onnx_slow": "engine_slow",
        "onnx_fast": "engine_fast",
    }
    cache = card.root / "timing.cache"
    record: dict[str, Any] = {}
    for onnx_role, engine_role in pairs.items():
        if not card.has(onnx_role):
            continue
        src = card.path(onnx_role)
        dst = src.with_suffix(".engine")
        record = build_engine(
            src,
            dst,
            precision=precision,
            input_shapes=None,
            timing_cache=cache,
            workspace_gb=float(opts.get("workspace_gb", 2.0)),
            version_compatible=bool(opts.get("version_compatible", False)),
            hardware_compatibility=str(opts.get("hardware_compatibility", "none")),
            builder_optimization_level=opts.get("builder_optimization_level"),
        )
        card.add_file(engine_role, dst.name)
    if cache.is_file():
        card.add_file("timing_cache", cache.name)
    card.export["tensorrt"] = record
    card.export["precision"] = precision
    card.provenance["tensorrt"] = {
        k: record.get(k) for k in ("tensorrt_version", "compute_capability", "gpu_name")
    }
    # the card's fixed feeds and the random valid inputs of the export gate
    inputs = [("card_parity_feeds(0)", card_parity_feeds(card))]
    inputs += [
        (f"random seed {s} (batch 1)", random_inputs(card.io, s, root=card.root)) for s in RANDOM_SEEDS
    ]
    ref_rt, got_rt = OnnxRuntimeBackend(card, providers="cpu"), TensorRTBackend(card)
    fig = compare_runs(ref_rt.run_model, got_rt.run_model, inputs)
    err, bound = fig["max_abs"], PARITY_BOUNDS[precision]
    engines = ", ".join(card.files[r] for r in pairs.values() if r in card.files)
    card.parity["tensorrt"] = {
        "max_abs_err": err,
        "cosine_min": fig["cosine"],
        "bound": bound,
        "precision": precision,
        "reference": "onnxruntime CPU fp32",
        "engines": engines,
        "inputs": [label for label, _ in inputs],
        "worst_input": fig["worst_input"],
    }
    if progress:
        progress.note(
            f"max |tensorrt - onnxruntime| = {err:.2e} (bound {bound:g}), cosine >= {fig['cosine']:.6f}"
        )
    if not err <= bound:
        raise ParityError(
            f"TensorRT {precision} parity failed: engine(s) {engines} on input {fig['worst_input']}: "
            f"max |tensorrt - onnxruntime| = {err:.3g} > {bound:g} (cosine {fig['cosine']:.6f}); "
            "try --precision fp32 (or fp16 instead of bf16)"
        )


def add_engines_to_card(
    card_dir: str | Path,
    precision: str = "fp16",
    trt_options: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> PolicyCard:
    """Build TensorRT engine(s) for an existing card folder (on the target machine)."""
    progress = progress or Progress(enabled=False)
    progress.total = 2
    with progress.step(f"load card {card_dir}"):
        card = PolicyCard.load(card_dir)
    with progress.step(f"TensorRT engine ({precision})"):
        add_tensorrt_engines(card, precision, trt_options or {}, progress=progress)
    card.save()
    return card


def export_lerobot(
    path: str | Path,
    out_dir: str | Path,
    fps: float | None = None,
    name: str | None = None,
    tokenizer: str | Path | None = None,
    options: ExportOptions | None = None,
    *,
    sampler: str | None = None,
    sampler_steps: int | None = None,
    progress: Progress | None = None,
    **settings: Any,
) -> PolicyCard:
    """``vla-ros export PATH`` for a LeRobot folder: build, export (parity-gated), write the card.

    ``tokenizer`` (SmolVLA, pi0, pi0.5) as in
    :func:`~vla_ros.export.sources.load_lerobot_source`; their cards get a copy of it.
    ``options``/``settings`` as in :func:`export_policy` (backends, precision, layout, opset, ...);
    names, joints, statistics and the model config come from the folder. Raises
    :class:`~vla_ros.export.sources.SourceError` before writing anything when the folder (or
    the tokenizer) is bad input.
    """
    src = load_lerobot_source(
        path,
        fps=fps,
        name=name,
        tokenizer=tokenizer,
        sampler=sampler,
        sampler_steps=sampler_steps,
    )
    card = export_policy(
        src.model,
        out_dir,
        dataclasses.replace(options or ExportOptions(), **settings),
        progress=progress,
        name=src.name,
        state_joints=src.state_joints,
        action_joints=src.action_joints,
        normalization=src.normalization,
        delta_to_absolute=False,
        model_config=src.model_config,
    )
    card.provenance.update(src.provenance)
    if src.tokenizer_file is not None:
        attach_tokenizer(card, src.tokenizer_file, src.tokenizer_kind or "smolvla")
    card.save()
    return card


__all__ = [
    "ExportOptions",
    "add_engines_to_card",
    "build_model",
    "classify_sources",
    "export_lerobot",
    "export_policy",
    "parse_backends",
]
