"""``vla-ros export MODEL --out DIR``: write a policy card (ONNX, optionally TensorRT)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

from vla_ros.contract.errors import VlaRosError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vla-ros export``."""
    parser.add_argument(
        "model",
        nargs="+",
        metavar="MODEL",
        help="family YAML (or a name in config/models) and/or a checkpoint (.safetensors, or a "
        ".pt/.pth/.ckpt/.bin that loads with weights_only); or an existing card folder to add "
        "TensorRT engines to it on this machine",
    )
    parser.add_argument("--out", default=None, help="card folder to write (created)")
    parser.add_argument("--backends", default="onnx", help="comma list: onnx (always), tensorrt [onnx]")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "fp16", "bf16", "fp8", "int8"),
        help="TensorRT engine precision (fp16, bf16, fp8), or int8: int8 ONNX graphs for "
        "onnxruntime on a CPU (calibrated, parity-gated against torch fp32) [fp32]",
    )
    parser.add_argument(
        "--calibration",
        default=None,
        metavar="NPZ",
        help="--precision int8: observations to calibrate on, a .npz with images/<camera> uint8 "
        "[N, H, W, 3], state [N, D] (raw units) and optional instruction; default: synthetic inputs",
    )
    parser.add_argument(
        "--calibration-samples",
        type=int,
        default=16,
        help="--precision int8 without --calibration: synthetic samples [16]",
    )
    parser.add_argument(
        "--layout",
        default=None,
        choices=("monolithic", "split"),
        help="graph layout (default: the family's)",
    )
    parser.add_argument("--name", default=None, help="policy name (default: the YAML's stem)")
    parser.add_argument(
        "--stats",
        default=None,
        help="YAML/JSON with normalization {state: {mean, std}, action: {mean, std}}, "
        "state_joints, action_joints, delta_to_absolute (default: identity stats, joint_i names)",
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=None,
        help="LeRobot checkpoint folders: the dataset's frame rate, sets the card's dt [30]",
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        metavar="PATH",
        help="LeRobot SmolVLA / pi0 / pi0.5 folders: the VLM's tokenizer.json (or a folder holding "
        "it), copied into the card [looked up by the tokenizer's name, locally and in the HF cache]",
    )
    parser.add_argument(
        "--sampler",
        default=None,
        choices=("DDIM", "DDPM"),
        help="LeRobot Diffusion Policy folders: the deployed sampler [the checkpoint's own]",
    )
    parser.add_argument(
        "--sampler-steps",
        type=int,
        default=None,
        metavar="K",
        help="LeRobot Diffusion Policy folders: sampler steps [the checkpoint's num_inference_steps]",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17) [17]")
    parser.add_argument(
        "--exporter",
        default="torchscript",
        choices=("torchscript", "dynamo"),
        help="torch.onnx exporter [torchscript]",
    )
    parser.add_argument(
        "--dynamic-batch", action="store_true", help="dynamic batch dimension (static by default)"
    )
    parser.add_argument("--seed", type=int, default=0, help="init seed when no checkpoint is given")
    parser.add_argument("--trt-workspace-gb", type=float, default=2.0, help="TensorRT workspace")
    parser.add_argument(
        "--trt-version-compatible",
        action="store_true",
        help="build a version-compatible engine (loads on newer TensorRT of the same major)",
    )
    parser.add_argument(
        "--trt-hardware-compat",
        default="none",
        choices=("none", "ampere_plus", "same_compute_capability"),
        help="TensorRT hardware-compatibility level [none]",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def read_stats_file(path: str | Path) -> dict[str, Any]:
    """Normalization statistics and joint names from a YAML/JSON file."""
    from vla_ros.contract.errors import ExportError

    p = Path(path)
    if not p.is_file():
        raise ExportError(f"--stats file {str(p)!r} does not exist")
    try:
        data = json.loads(p.read_text()) if p.suffix == ".json" else yaml.safe_load(p.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ExportError(f"--stats file {str(p)!r} is not valid YAML/JSON: {e}") from e
    if not isinstance(data, dict):
        raise ExportError(f"--stats file {str(p)!r} must hold a mapping")
    if "normalization" not in data and {"state", "action"} <= set(data):
        data = {"normalization": {"state": data["state"], "action": data["action"]}}
    known = {"normalization", "state_joints", "action_joints", "delta_to_absolute"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ExportError(f"--stats file {str(p)!r} has unknown keys {unknown}; known: {known}")
    return data


def run(args: argparse.Namespace) -> int:
    """Export; exit code 0 on success, 2 on bad input (a LeRobot folder), 1 on other errors."""
    from vla_ros.export.api import (
        ExportOptions,
        add_engines_to_card,
        classify_sources,
        export_lerobot,
        export_policy,
        parse_backends,
    )
    from vla_ros.export.progress import Progress

    progress = Progress(enabled=not args.quiet)
    trt_options = {
        "workspace_gb": args.trt_workspace_gb,
        "version_compatible": args.trt_version_compatible,
        "hardware_compatibility": args.trt_hardware_compat,
    }
    command = "vla-ros export " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    # the settings every kind of MODEL shares
    options = ExportOptions(
        precision=args.precision,
        layout=args.layout,
        opset=args.opset,
        exporter=args.exporter,
        dynamic_batch=args.dynamic_batch,
        trt_options=trt_options,
        export_command=command,
        calibration=args.calibration,
        calibration_samples=args.calibration_samples,
        seed=args.seed,
    )
    from vla_ros.export.sources import SourceError, is_foreign_folder

    try:
        if len(args.model) == 1 and is_foreign_folder(args.model[0]):
            if not args.out:
                raise SourceError("--out DIR is required: the card folder to write")
            if args.stats:
                raise SourceError(
                    "--stats does not apply to a LeRobot folder: its statistics are in the folder"
                )
            card = export_lerobot(
                args.model[0],
                args.out,
                fps=args.fps,
                name=args.name,
                tokenizer=args.tokenizer,
                options=options,
                sampler=args.sampler,
                sampler_steps=args.sampler_steps,
                backends=parse_backends(args.backends),
                progress=progress,
            )
            return _report(card)
    except SourceError as e:
        print(f"vla-ros export: error: {e}", file=sys.stderr)
        return 2
    except VlaRosError as e:
        print(f"vla-ros export: error: {e}", file=sys.stderr)
        return 1
    try:
        config, ckpt, card_dir = classify_sources(args.model)
        backends = parse_backends(args.backends)
        if card_dir is not None:
            if "tensorrt" not in backends:
                raise VlaRosError(
                    f"{card_dir} is already a policy card; to add TensorRT engines to it run: "
                    f"vla-ros export {card_dir} --backends tensorrt --precision fp16"
                )
            card = add_engines_to_card(card_dir, args.precision, trt_options, progress=progress)
        else:
            if not args.out:
                raise VlaRosError("--out DIR is required: the card folder to write")
            if args.tokenizer:
                raise VlaRosError(
                    "--tokenizer applies to LeRobot SmolVLA / pi0 / pi0.5 checkpoint folders; a spine "
                    "model's tokenizer is named by its config (io.tokenizer)"
                )
            if args.sampler or args.sampler_steps is not None:
                raise VlaRosError(
                    "--sampler/--sampler-steps apply to LeRobot Diffusion Policy checkpoint folders; "
                    "a spine model's sampler is set in its config"
                )
            extra = read_stats_file(args.stats) if args.stats else {}
            card = export_policy(
                config if config is not None else ckpt,
                args.out,
                options,
                progress=progress,
                backends=backends,
                checkpoint=ckpt if config is not None else None,
                name=args.name,
                state_joints=extra.get("state_joints"),
                action_joints=extra.get("action_joints"),
                normalization=extra.get("normalization"),
                delta_to_absolute=extra.get("delta_to_absolute"),
            )
    except VlaRosError as e:
        print(f"vla-ros export: error: {e}", file=sys.stderr)
        return 1
    return _report(card)


def _report(card: Any) -> int:
    files = ", ".join(sorted(card.files.values()))
    print(f"wrote {card.root}/card.yaml ({card.policy_id}; {files})")
    print(f"parity: max_abs_err {card.parity.get('max_abs_err', float('nan')):.2e}")
    return 0
