"""``vla-ros bench CARD``: latency, throughput, memory and speedup per backend."""

from __future__ import annotations

import argparse
import json
import sys

from vla_ros.contract.errors import VlaRosError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vla-ros bench``."""
    parser.add_argument("card", help="policy card folder (or its card.yaml)")
    parser.add_argument(
        "--backends",
        default=None,
        help="comma list of torch, torch_cuda, torch_cudagraph, onnxruntime, onnxruntime_fp32 (an "
        "int8 card's fp32 graphs), onnxruntime_cuda, tensorrt (default: every one available here; "
        "torch eager is always added as baseline)",
    )
    parser.add_argument("--iters", type=int, default=200, help="timed inferences per backend")
    parser.add_argument("--warmup", type=int, default=20, help="untimed inferences first")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (ORT and torch)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; exit code 1 on a card/model error."""
    from vla_ros.contract.card import PolicyCard
    from vla_ros.runtime.bench import available_backends, bench_card, format_table

    try:
        card = PolicyCard.load(args.card)
        names = (
            [b.strip() for b in args.backends.split(",") if b.strip()]
            if args.backends
            else available_backends(card)
        )
        if "torch" not in names and "torch" in available_backends(card):
            names.insert(0, "torch")
        opts = {}
        if args.threads:
            opts = {n: {"threads": args.threads} for n in ("torch", "onnxruntime")}
        report = bench_card(card, names, iters=args.iters, warmup=args.warmup, backend_opts=opts)
    except VlaRosError as e:
        print(f"vla-ros bench: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0
