"""How far ONNX Runtime can go past torch eager on this CPU: each model's work vs the GEMM peak.

    ./env.sh python benchmarks/bench_roofline.py --threads 2
    ./env.sh python benchmarks/bench_roofline.py act_small --threads 2 --json

For each config: the FLOPs of one inference (MatMul/Gemm/Conv counted from the exported ONNX
graphs, :mod:`vla_ros.export.flops`), torch eager and ONNX Runtime model-call p50 measured in the
same run (:func:`vla_ros.runtime.bench.bench_card`), the GFLOP/s each achieves, and this
machine's dense fp32 GEMM peak measured here with both libraries (square MatMul, same threads).
``floor_ms`` = FLOPs / the better peak: no fp32 backend can run the model's multiply-adds faster,
so ``max_speedup`` = torch p50 / floor_ms bounds what any fp32 runtime can gain over torch eager.
"""

from __future__ import annotations

import json
import time

import numpy as np
from card_cache import config_cards, config_parser

from vla_ros.contract.card import PolicyCard
from vla_ros.export.flops import card_flops
from vla_ros.runtime.bench import bench_card


def gemm_peak_gflops(threads: int, n: int = 2048, iters: int = 10) -> dict[str, float]:
    """Median fp32 GFLOP/s of an n x n x n MatMul in onnxruntime and in torch, ``threads`` each."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.random((n, n), dtype=np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "gemm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, n])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = rng.random((n, n), dtype=np.float32)
    torch.set_num_threads(threads)
    a, b = torch.from_numpy(x), torch.from_numpy(rng.random((n, n), dtype=np.float32))

    def median(fn) -> float:
        for _ in range(2):
            fn()
        ts = []
        for _ in range(iters):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts))

    flops = 2.0 * n**3
    with torch.inference_mode():
        torch_s = median(lambda: a @ b)
    ort_s = median(lambda: sess.run(None, {"X": x}))
    return {"onnxruntime": flops / ort_s / 1e9, "torch": flops / torch_s / 1e9}


def roofline(card: PolicyCard, threads: int, iters: int, warmup: int) -> dict:
    """One config's row: work, measured p50s, achieved rates, the floor and the bound."""
    opts = {n: {"threads": threads} for n in ("torch", "onnxruntime")}
    report = bench_card(card, ["torch", "onnxruntime"], iters=iters, warmup=warmup, backend_opts=opts)
    peak = gemm_peak_gflops(threads)
    flops = card_flops(card)
    best_peak = max(peak.values())
    floor_ms = flops / best_peak / 1e6
    rows = {r["backend"]: r for r in report["results"]}
    torch_ms = rows["torch"]["model_latency"]["p50_ms"]
    ort_ms = rows["onnxruntime"]["model_latency"]["p50_ms"]
    return {
        "config": card.name,
        "gflop": flops / 1e9,
        "torch_p50_ms": torch_ms,
        "onnxruntime_p50_ms": ort_ms,
        "speedup": torch_ms / ort_ms,
        "torch_gflops": flops / torch_ms / 1e6,
        "onnxruntime_gflops": flops / ort_ms / 1e6,
        "gemm_peak_gflops": peak,
        "floor_ms": floor_ms,
        "max_speedup": torch_ms / floor_ms,
        "threads": threads,
    }


def main() -> int:
    """Command line: export (or reuse) each config's card, then print the table."""
    args = config_parser(__doc__.splitlines()[0], iters=15).parse_args()
    cards = config_cards(args, "vla_ros_roofline_", "default")
    rows = [roofline(card, args.threads, args.iters, args.warmup) for card in cards]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"fp32, {args.threads} threads; GEMM peak = median 2048^3 MatMul GFLOP/s (onnxruntime / torch)")
    head = f"{'config':<22}{'GFLOP':>7}{'torch ms':>10}{'ORT ms':>9}{'speedup':>9}"
    head += f"{'torch GF/s':>11}{'ORT GF/s':>10}{'peak GF/s':>13}{'floor ms':>10}{'max speedup':>13}"
    print(head)
    for r in rows:
        pk = r["gemm_peak_gflops"]
        print(
            f"{r['config']:<22}{r['gflop']:>7.2f}{r['torch_p50_ms']:>10.1f}{r['onnxruntime_p50_ms']:>9.1f}"
            f"{r['speedup']:>8.2f}x{r['torch_gflops']:>11.0f}{r['onnxruntime_gflops']:>10.0f}"
            f"{pk['onnxruntime']:>7.0f}/{pk['torch']:<5.0f}{r['floor_ms']:>10.1f}{r['max_speedup']:>12.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
