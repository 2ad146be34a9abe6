"""Benchmark a policy card on several backends in one run (latency, throughput, memory)."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.contract.card import PolicyCard
from vla_ros.contract.errors import VlaRosError
from vla_ros.runtime.base import synthetic_observation
from vla_ros.util.stats import latency_summary_ms

# bench name -> (runtime backend, options)
BENCH_BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "torch": ("torch", {}),
    "torch_cuda": ("torch", {"device": "cuda"}),
    "torch_cudagraph": ("torch", {"device": "cuda", "cuda_graph": True}),
    "onnxruntime": ("onnxruntime", {"providers": "cpu"}),
    # an int8 card's fp32 graphs, to compare with its int8 ones in the same run
    "onnxruntime_fp32": ("onnxruntime", {"providers": "cpu", "graphs": "fp32"}),
    "onnxruntime_cuda": ("onnxruntime", {"providers": "cuda"}),
    "tensorrt": ("tensorrt", {}),
}


def _read_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def available_backends(card: PolicyCard) -> list[str]:
    """Bench names that can run for ``card`` on this machine."""
    out = []
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if card.model_config and card.has("safetensors"):
        out.append("torch")
        if cuda:
            out += ["torch_cuda", "torch_cudagraph"]
    out.append("onnxruntime")
    if any(card.has(r) for r in ("onnx_fp32", "onnx_prefix_fp32")):
        out.append("onnxruntime_fp32")
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            out.append("onnxruntime_cuda")
    except ImportError:
        pass
    from vla_ros.runtime.trt_engine import tensorrt_unavailable_reason

    engine = any(card.has(r) for r in ("engine", "engine_step", "engine_fast"))
    if engine and tensorrt_unavailable_reason() is None:
        out.append("tensorrt")
    return out


def _load(card: PolicyCard, name: str, warmup: int, **extra: Any) -> tuple[Any, dict[str, Any]]:
    """Load bench backend ``name`` and warm it up; returns (runtime, memory/load figures)."""
    from vla_ros.runtime import load_runtime

    if name not in BENCH_BACKENDS:
        raise VlaRosError(f"unknown bench backend {name!r}; choose from {sorted(BENCH_BACKENDS)}")
    backend, opts = BENCH_BACKENDS[name]
    gc.collect()
    cuda = "cuda" in name or name == "tensorrt"
    if cuda:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_base = torch.cuda.memory_allocated()
    peak_ok = _reset_peak_rss()
    rss_before = _read_status_kb("VmRSS")
    t0 = time.perf_counter()
    rt = load_runtime(card, backend, **{**opts, **extra})
    figures: dict[str, Any] = {"load_s": round(time.perf_counter() - t0, 3)}
    obs, noise = _bench_inputs(card)
    for _ in range(max(1, warmup)):
        rt.infer(obs, noise=noise)
    rt.reset_stats()
    rt.reset()
    hwm = _read_status_kb("VmHWM")
    if peak_ok and hwm is not None and rss_before is not None:
        figures["peak_rss_mb"] = round(hwm / 1024, 1)
        figures["peak_rss_delta_mb"] = round((hwm - rss_before) / 1024, 1)
    if cuda:
        figures["peak_cuda_mb"] = round((torch.cuda.max_memory_allocated() - cuda_base) / (1 << 20), 1)
    return rt, figures


def _bench_inputs(card: PolicyCard) -> tuple[Any, np.ndarray]:
    obs = synthetic_observation(card, seed=1)
    noise = np.random.default_rng(2).standard_normal(card.io.noise_shape, dtype=np.float32)
    return obs, noise


def bench_period_ns(card: PolicyCard) -> int:
    """Stamp step between timed iterations: the fast rate of a dual card (so its slow graph
    reruns at ``slow_hz`` as on the robot), else the card's action period ``dt``."""
    dual = card.export.get("dual") or {}
    hz = float(dual.get("fast_hz") or 0) or 1.0 / card.io.dt
    return round(1e9 / hz)


def bench_card(
    card: PolicyCard | str | Path,
    backends: list[str] | None = None,
    iters: int = 200,
    warmup: int = 20,
    backend_opts: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Benchmark every backend of ``backends`` (default: all available) in this process.

    All runtimes are loaded and warmed up first (peak memory is measured per backend while it
    loads and warms up), then timed *interleaved*: each iteration runs every backend once on
    the same observation and noise, so a busy machine slows all of them alike. Each result
    carries ``speedup_vs_torch`` = torch eager p50 / the backend's p50 (end to end, and for the
    model call alone). A backend that fails to load is reported with its error.
    """
    if not isinstance(card, PolicyCard):
        card = PolicyCard.load(card)
    names = backends or available_backends(card)
    loaded: dict[str, tuple[Any, dict[str, Any]]] = {}
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            loaded[name] = _load(card, name, warmup, **(backend_opts or {}).get(name, {}))
        except VlaRosError as e:
            results[name] = {"backend": name, "error": str(e)}
    obs, noise = _bench_inputs(card)
    samples: dict[str, list[float]] = {n: [] for n in loaded}
    busy: dict[str, float] = dict.fromkeys(loaded, 0.0)
    period = bench_period_ns(card)
    for i in range(iters):
        # stamps advance as on the robot (every backend sees the same sequence): a dual card's
        # slow graph reruns at its own rate, the other layouts ignore the stamp
        obs.stamp_ns = 1_000_000_000 + i * period
        for name, (rt, _) in loaded.items():
            t = time.perf_counter()
            rt.infer(obs, noise=noise)
            dt = time.perf_counter() - t
            samples[name].append(dt)
            busy[name] += dt
    for name, (rt, figures) in loaded.items():
        st = rt.stats()
        results[name] = {
            "backend": name,
            "iters": iters,
            "warmup": warmup,
            "latency": latency_summary_ms(samples[name], unit_s=1.0),
            "model_latency": st["model"],
            # per graph call (split: prefix once, step num_steps times per infer; dual: slow
            # when due, fast every infer)
            "stages": {g: st[g] for g in rt.graph_stages()},
            "throughput_hz": iters / busy[name] if busy[name] > 0 else float("nan"),
            "info": {k: v for k, v in st.items() if not isinstance(v, dict)},
            **figures,
        }
        rt.close()
    loaded.clear()
    gc.collect()
    ordered = [results[n] for n in names if n in results]
    base = results.get("torch")
    for r in ordered:
        if base is not None and "latency" in base and "latency" in r:
            r["speedup_vs_torch"] = base["latency"]["p50_ms"] / r["latency"]["p50_ms"]
            r["model_speedup_vs_torch"] = base["model_latency"]["p50_ms"] / r["model_latency"]["p50_ms"]
            for g, st in r.get("stages", {}).items():
                ref = base.get("stages", {}).get(g, {})
                if st.get("count") and ref.get("count"):
                    st["speedup_vs_torch"] = ref["p50_ms"] / st["p50_ms"]
    return {
        "policy_id": card.policy_id,
        "family": card.family,
        "layout": card.layout,
        "precision": card.precision,
        "iters": iters,
        "warmup": warmup,
        "results": ordered,
    }


def format_table(report: dict[str, Any]) -> str:
    """Plain-text table of :func:`bench_card` results."""
    head = (
        f"{'backend':<18}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}"
        f"{'model p50':>11}{'Hz':>9}{'peak MB':>9}{'speedup':>9}"
    )
    lines = [
        f"{report['policy_id']}  family={report['family']} layout={report['layout']} "
        f"precision={report['precision']} iters={report['iters']} warmup={report['warmup']}",
        head,
        "-" * len(head),
    ]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"{r['backend']:<18}  unavailable: {r['error'][:120]}")
            continue
        lat, mod = r["latency"], r["model_latency"]
        peak = r.get("peak_cuda_mb", r.get("peak_rss_delta_mb", float("nan")))
        sp = r.get("speedup_vs_torch")
        lines.append(
            f"{r['backend']:<18}{lat['p50_ms']:>10.2f}{lat['p90_ms']:>10.2f}"
            f"{lat['p99_ms']:>10.2f}{lat['max_ms']:>10.2f}{mod['p50_ms']:>11.2f}"
            f"{r['throughput_hz']:>9.2f}"
            f"{peak:>9.1f}{(f'{sp:.2f}x' if sp else '-'):>9}"
        )
    lines += format_stages(report)
    return "\n".join(lines)


def format_stages(report: dict[str, Any]) -> list[str]:
    """Table lines of the per-graph stages: "split per-step latency" (prefix once, then each
    step) or "dual-rate graph latency" (slow when due, fast every infer); empty otherwise."""
    rows = [r for r in report["results"] if r.get("stages")]
    if not rows:
        return []
    title = {"split": "split per-step latency", "dual": "dual-rate graph latency"}.get(
        report["layout"], "graph latency"
    )
    head = (
        f"{'backend':<18}{'graph':<8}{'calls':>7}{'per infer':>10}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'max ms':>10}{'speedup':>9}"
    )
    lines = ["", f"{title} (per graph call)", head, "-" * len(head)]
    for r in rows:
        for g, st in r["stages"].items():
            if not st.get("count"):
                lines.append(f"{r['backend']:<18}{g:<8}{0:>7}{0:>10.2f}")
                continue
            sp = st.get("speedup_vs_torch")
            lines.append(
                f"{r['backend']:<18}{g:<8}{st['count']:>7}{st['count'] / r['iters']:>10.2f}"
                f"{st['p50_ms']:>10.3f}{st['p99_ms']:>10.3f}{st['max_ms']:>10.3f}"
                f"{(f'{sp:.2f}x' if sp else '-'):>9}"
            )
    return lines
