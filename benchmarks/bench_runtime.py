"""Runtime benchmark: export the ``*_small`` configs and time every backend in one run.

    python benchmarks/bench_runtime.py                      # flow_matching_small, act_small
    python benchmarks/bench_runtime.py act_small --iters 50 --json

Prints, per config, p50/p90/p99/max latency of ``PolicyRuntime.infer`` (pre/post-processing
included), the model call's p50, throughput, peak memory and the speedup over torch eager
measured in the same process on the same observation and noise, and for split cards the
"split per-step latency" (prefix once, each step of the loop: p50/p99 per graph call); dual
cards print the slow and fast graphs. Benchmarks print; they never assert on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

from card_cache import cached_card, cards_root

from vla_ros.runtime.bench import available_backends, bench_card, format_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=["flow_matching_small", "act_small"])
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--backends", default=None, help="comma list (default: all available)")
    parser.add_argument("--layout", default=None, choices=("monolithic", "split", "dual"))
    parser.add_argument("--out", default=None, help="keep exported cards here")
    parser.add_argument("--threads", type=int, default=None, help="torch and ORT CPU threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = cards_root(args.out, "vla_ros_bench_")
    reports = []
    for cfg in args.configs:
        card = cached_card(root, cfg, args.layout or "default", layout=args.layout)
        names = args.backends.split(",") if args.backends else available_backends(card)
        opts = {}
        if args.threads:
            opts = {n: {"threads": args.threads} for n in ("torch", "onnxruntime")}
        report = bench_card(card, names, iters=args.iters, warmup=args.warmup, backend_opts=opts)
        report["config"] = cfg
        report["machine"] = {
            "cpus": len(os.sched_getaffinity(0)),
            "processor": platform.processor() or platform.machine(),
            "loadavg_1m": os.getloadavg()[0],
        }
        reports.append(report)
        if not args.json:
            print(f"\n== {cfg} (cards in {root}; load avg {os.getloadavg()[0]:.1f}) ==")
            print(format_table(report))
    if args.json:
        print(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
