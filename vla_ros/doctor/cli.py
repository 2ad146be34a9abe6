"""``vla-ros doctor``: check ROS, workspace, middleware, GPU/Jetson, TensorRT, card and live graph.

With ``--card`` (and ``--latency-ms``, ``--live`` or a latency recorded in the card) it also
checks the inference delay against the execution horizon; ``--params`` gives the executor's
settings (``max_chunk_age_s``, ``time_offset_s``) that horizon depends on, and policy_node's names for
the card's joints (``state_joints``, ``action_joints``) that ``live.joints`` looks for.

Exit code 0 when no check FAILs (``--strict``: and none WARNs), 1 otherwise, 2 on bad arguments.
Works offline; rclpy is imported only for ``--live``; torch only when a GPU can be there (and in a
time-boxed subprocess), never with ``--no-gpu``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vla_ros.doctor.live import TopicExpectation
from vla_ros.doctor.report import (
    GROUP_TITLES,
    DoctorOptions,
    default_module_file,
    exit_code,
    format_text,
    run_checks,
    to_json_dict,
)
from vla_ros.doctor.result import DoctorContext
from vla_ros.util.entry import run_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the doctor's flags on ``parser``."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the JSON report (schema: docs/doctor.md) instead of the list",
    )
    parser.add_argument(
        "--card",
        type=Path,
        metavar="DIR",
        help="policy card folder to check (files, hashes, engine, timing, joints)",
    )
    parser.add_argument(
        "--workspace",
        type=Path,
        metavar="DIR",
        help="colcon workspace (or the vla_ros source) to check; default: the one "
        "the sourced install comes from",
    )
    parser.add_argument(
        "--live",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also sample the running graph for SECONDS (topics, rates, clocks, QoS, /joint_states)",
    )
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="NAME[:HZ[:TOL]]",
        help="expected topic for --live, with optional rate and relative tolerance (default 0.2); repeatable",
    )
    parser.add_argument(
        "--control-rate",
        type=float,
        metavar="HZ",
        help="the executor's control rate, checked against the policy's fps",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        metavar="MS",
        help="measured inference latency (default: from --live ActionChunks or the card)",
    )
    parser.add_argument(
        "--params",
        type=Path,
        metavar="YAML",
        help="parameter file the nodes run with: its executor_node max_chunk_age_s and "
        "time_offset_s decide the execution horizon the inference delay is checked against; its "
        "policy_node state_joints/action_joints are the joint names looked for on /joint_states",
    )
    parser.add_argument(
        "--namespace",
        default="/",
        metavar="NS",
        help="namespace the nodes run in, for reading --params (default /)",
    )
    parser.add_argument(
        "--no-gpu", action="store_true", help="skip the GPU/TensorRT probes (they import torch/tensorrt)"
    )
    parser.add_argument(
        "--gpu-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time box for importing torch/tensorrt in the probes (default 60)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(GROUP_TITLES),
        default=[],
        help="run only these check groups (repeatable)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 on WARN as well")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each check's details")


def options_from_args(args: argparse.Namespace) -> DoctorOptions:
    """:class:`DoctorOptions` from parsed flags; raises ``ValueError`` naming a bad flag."""
    if args.live < 0:
        raise ValueError(f"--live must be >= 0 seconds, got {args.live}")
    if args.card is not None and not args.card.exists():
        raise ValueError(f"--card {args.card}: no such folder")
    if args.workspace is not None and not args.workspace.is_dir():
        raise ValueError(f"--workspace {args.workspace}: no such folder")
    if args.params is not None and not args.params.is_file():
        raise ValueError(f"--params {args.params}: no such file")
    if args.latency_ms is not None and not args.latency_ms >= 0:
        raise ValueError(f"--latency-ms must be >= 0 ms, got {args.latency_ms}")
    topics = [TopicExpectation.parse(t) for t in args.topic]
    return DoctorOptions(
        workspace=args.workspace,
        card=args.card,
        live_s=args.live,
        topics=topics,
        gpu=not args.no_gpu,
        gpu_timeout_s=args.gpu_timeout,
        control_rate_hz=args.control_rate,
        latency_ms=args.latency_ms,
        module_file=default_module_file(),
        groups=tuple(args.only) if args.only else tuple(GROUP_TITLES),
        params=args.params,
        namespace=args.namespace,
    )


def run(args: argparse.Namespace) -> int:
    """Run the doctor; print the report; return the exit code."""
    try:
        opts = options_from_args(args)
    except ValueError as exc:
        print(f"vla-ros doctor: {exc}", file=sys.stderr)
        return 2
    results = run_checks(DoctorContext(), opts)
    if args.json:
        print(json.dumps(to_json_dict(results, opts, args.strict), indent=2))
    else:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        print(format_text(results, color=color, verbose=args.verbose))
    return exit_code(results, args.strict)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m vla_ros.doctor.cli``)."""
    return run_command("vla-ros doctor", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
