"""CPU int8: torch eager fp32 vs ONNX Runtime fp32 vs ONNX Runtime int8, one card, one run.

    ./env.sh python benchmarks/bench_int8.py [CONFIG ...] [--threads 2] [--json]

Each config (default ``act_small`` and ``flow_matching_small``) is exported once with
``--precision int8`` (synthetic calibration; reuse with ``--out DIR``). The card holds both the
fp32 graphs and the int8 ones, so the three backends run the same model, interleaved on the same
observations (:func:`vla_ros.runtime.bench.bench_card`). The table gives end-to-end p50
(pre-processing + model + post-processing), the speedup over torch eager, and the card's parity:
max |int8 - torch fp32| on the export's example inputs, in normalized action units, against
its stated bound. int8 is a precision change; see docs/export.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure the checkout

from card_cache import config_cards, config_parser

from vla_ros.export import PolicyCard
from vla_ros.runtime.bench import bench_card

BACKENDS = ("torch", "onnxruntime_fp32", "onnxruntime")


def measure(card: PolicyCard, threads: int, iters: int, warmup: int) -> dict:
    """One config's row: p50 per backend, speedups over torch eager, int8 parity."""
    opts = {n: {"threads": threads} for n in BACKENDS}
    report = bench_card(card, list(BACKENDS), iters=iters, warmup=warmup, backend_opts=opts)
    rows = {r["backend"]: r for r in report["results"]}
    failed = {n: r["error"] for n, r in rows.items() if "error" in r}
    if failed:
        raise RuntimeError(f"backends failed: {failed}")
    p50 = {n: rows[n]["latency"]["p50_ms"] for n in BACKENDS}
    return {
        "config": card.name,
        "layout": card.layout,
        "p50_ms": p50,
        "speedup_vs_torch": {n: p50["torch"] / p50[n] for n in BACKENDS},
        "int8_max_abs_err": card.parity["max_abs_err"],
        "int8_bound": card.parity["bound"],
        "calibration": card.export["quantization"]["calibration"],
        "threads": threads,
    }


def main() -> int:
    """Command line: export (or reuse) each config's int8 card, then print the table."""
    args = config_parser(__doc__.splitlines()[0], iters=20).parse_args()
    cards = config_cards(args, "vla_ros_int8_", "int8", precision="int8")
    rows = [measure(card, args.threads, args.iters, args.warmup) for card in cards]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{args.threads} threads, end-to-end p50 ms (speedup over torch eager fp32), same run per config")
    print(f"{'config':<22}{'torch fp32':>12}{'ORT fp32':>18}{'ORT int8':>18}{'int8 err / bound':>20}")
    for r in rows:
        p, s = r["p50_ms"], r["speedup_vs_torch"]
        print(
            f"{r['config']:<22}{p['torch']:>12.1f}"
            f"{p['onnxruntime_fp32']:>10.1f} ({s['onnxruntime_fp32']:.2f}x)"
            f"{p['onnxruntime']:>10.1f} ({s['onnxruntime']:.2f}x)"
            f"{r['int8_max_abs_err']:>13.4f} / {r['int8_bound']:g}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
