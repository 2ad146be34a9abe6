"""Human-readable output of a replay: a text summary and a plot (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_ros.eval.metrics import Track
from vla_ros.eval.replay import ExecutorTrace


def _f(x: float, unit: str = "", digits: int = 4) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}g}{unit}"


def _delay(p: dict) -> str:
    """The inference delay estimate of the policy figures as text."""
    if p.get("delay_steps") is None:
        return "n/a (no chunk after the warm-up one)"
    return (
        f"{p['delay_steps']} chunk steps (p95 stamp->chunk {p['delay_ns'] / 1e6:.4g} ms over "
        f"{p['delay_samples']} chunks, the first excluded as warm-up)"
    )


def summary(metrics: dict, title: str) -> str:
    """The figures of :func:`vla_ros.eval.metrics.compute_metrics` as a short text report."""
    p, c, m, r = metrics["policy"], metrics["chunks"], metrics["commands"], metrics["reference"]
    no_chunk = ", ".join(f"{k} {v}" for k, v in sorted(p["no_chunk"].items())) or "none"
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(c["rejected"].items())) or "none"
    faults = ", ".join(f"{k} {v}" for k, v in sorted(m["fault_ticks"].items())) or "none"
    steps = c["mae_by_step"]
    curve = " ".join(_f(x, digits=3) for x in steps[:: max(1, len(steps) // 8)]) if steps else "n/a"
    lines = [
        title,
        f"  replayed {metrics['duration_s']:.2f} s of bag time, joints {metrics['joints']}",
        f"  policy    {p['steps']} steps, {p['chunks']} chunks (no chunk: {no_chunk}); "
        f"latency {p['latency']}: "
        f"model p50 {_f(p['infer_ms_p50'], ' ms')} p99 {_f(p['infer_ms_p99'], ' ms')}, "
        f"stamp->chunk p50 {_f(p['obs_to_chunk_ms_p50'], ' ms')} p99 {_f(p['obs_to_chunk_ms_p99'], ' ms')}",
        f"            inference delay {_delay(p)}",
        f"  chunks    {c['accepted']} accepted by the executor, {c.get('expired', 0)} expired (every "
        f"action in the past: dropped) (rejected: {rejected}); "
        f"|action - reference| mean {_f(c['mae'])}",
        f"            by horizon step (every {max(1, len(steps) // 8)}): {curve}",
        f"  commands  {m['ticks']} ticks, holding {_f(100 * m['hold_fraction'], ' %', 3)}, compared "
        f"{_f(100 * m['compared_fraction'], ' %', 3)}; |command - reference| mean {_f(m['mae'])} "
        f"rms {_f(m['rmse'])}",
        f"            velocity rms {_f(m['velocity_rms'])}, acceleration rms {_f(m['acceleration_rms'])}, "
        f"jerk rms {_f(m['jerk_rms'])} (reference: {_f(r['velocity_rms'])}, {_f(r['acceleration_rms'])}, "
        f"{_f(r['jerk_rms'])}); max speed {_f(m['max_speed'])}",
        f"            ticks with a fault: {faults}",
    ]
    return "\n".join(lines)


def plot(executor: ExecutorTrace, reference: Track, metrics: dict, path: str | Path) -> Path:
    """Commands vs reference per joint, and the chunk error over the horizon, to a PNG."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            "--plot needs matplotlib, which is not installed; `pip install matplotlib` "
            "(or `pip install vla_ros[plot]`), or leave out --plot"
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = executor.joint_names
    n = len(names)
    fig, axes = plt.subplots(n + 1, 1, figsize=(10, 1.8 * (n + 1)), squeeze=False)
    t0 = executor.times_ns[0] if executor.times_ns.size else 0
    t = (executor.times_ns - t0) / 1e9
    ref = reference.at(executor.times_ns)
    for j, name in enumerate(names):
        ax = axes[j, 0]
        ax.plot(t, ref[:, j], color="0.6", lw=2.0, label="reference")
        ax.plot(t, executor.positions[:, j], color="tab:blue", lw=1.0, label="command")
        held = np.where(executor.holding, executor.positions[:, j], np.nan)
        ax.plot(t, held, color="tab:red", lw=1.0, label="hold")
        ax.set_ylabel(name)
        if j == 0:
            ax.legend(loc="upper right", fontsize="small", ncol=3)
    axes[n - 1, 0].set_xlabel("bag time [s]")
    ax = axes[n, 0]
    steps = metrics["chunks"]["mae_by_step"]
    ax.plot(np.arange(len(steps)), steps, marker="o")
    ax.set_xlabel("action index in chunk")
    ax.set_ylabel("|action - ref|")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
