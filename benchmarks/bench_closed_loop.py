#!/usr/bin/env python3
"""The closed-loop latency study: success, time to success, seams and jerk vs. injected latency.

The bundled flow-matching card (``vla_ros/sim/bundled/sim_switching_targets_flow``, ONNX Runtime, 1 thread)
on the ``switching_targets`` task (:class:`vla_ros.sim.task.SwitchingTargetsTask`), for each
execution mode of :mod:`vla_ros.sim.study` (``sync``, ``latest``, ``temporal_ensemble``,
``blend``, ``rtc``) and injected latency (a chunk becomes available ``latency`` after its
observation's stamp):

* **pure loop** (default): :func:`vla_ros.sim.study.run_row` on simulated time, the same
  seeded episodes and noise for every row;
* **node graph** (``--graph``): a short run of a subset through the real nodes in one process
  (``sim_node`` -> ``policy_node`` -> ``executor_node`` from ``config/demo.yaml``, the card
  swapped in), the latency a real ``time.sleep`` after each inference on the policy node's worker
  thread (``rtc``: ``inference_trigger: horizon``, as docs/rtc.md recommends; the other modes
  at the pure loop's rate), the targets switched through ``sim_node``'s live ``target`` parameter, the metrics
  from the commands ``executor_node`` published (boundaries: the first command after each chunk
  message). ``sync`` has no node-graph form (policy_node never blocks the executor).

    ./env.sh python benchmarks/bench_closed_loop.py                       # pure loop, table + JSON
    ./env.sh python benchmarks/bench_closed_loop.py --graph               # + the node-graph subset
    ./env.sh python benchmarks/bench_closed_loop.py --episodes 4 --latencies 300 --no-write

Rows go to ``benchmarks/results/closed_loop.json`` (a list of ``{loop, mode, latency_ms,
episodes, success_rate, time_to_success_s, max_seam_jump, median_seam_jump, jerk_rms,
dropped_chunks}``; modes that cannot run here have ``note``). The table is in docs/latency.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's code, not an older colcon install copy

from vla_ros.sim.loop import evaluation_episodes  # noqa: E402
from vla_ros.sim.metrics import aggregate, jerk_rms, seam_jumps  # noqa: E402
from vla_ros.sim.study import (  # noqa: E402
    ASYNC_EXECUTION_HORIZON,
    RTC_HANDOVER_STEPS,
    STUDY_MODES,
    card_policy_for,
    expert_policy_for,
    mode_available,
    rows_for,
    unavailable_row,
)
from vla_ros.sim.task import SwitchingTargetsTask, TaskEpisode  # noqa: E402

DEFAULT_CARD = ROOT / "vla_ros" / "sim" / "bundled" / "sim_switching_targets_flow"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "closed_loop.json"
LATENCIES_MS = (0, 100, 200, 300, 500)
GRAPH_MODES = ("latest", "temporal_ensemble", "blend", "rtc")
GRAPH_LATENCIES_MS = (0, 300)
COLUMNS = ("success_rate", "time_to_success_s", "max_seam_jump", "jerk_rms")


def pure_rows(args: argparse.Namespace, task: SwitchingTargetsTask) -> list[dict[str, Any]]:
    """Every (mode, latency) row in the pure loop."""
    if args.expert:
        policy_for = expert_policy_for(task, 20, 0.05)
    else:
        from vla_ros.runtime import load_runtime
        from vla_ros.sim.loop import RuntimePolicy

        runtime = load_runtime(args.card, backend="onnxruntime", threads=1)
        policy_for = card_policy_for(RuntimePolicy(runtime, seed=args.seed), seed=args.seed)
    rows = []
    for mode in args.modes:
        for latency_ms in args.latencies:
            t0 = time.monotonic()
            (row,) = rows_for(policy_for, task, [mode], [latency_ms / 1e3], args.episodes, seed=args.seed)
            rows.append({"loop": "pure", **row})
            print(
                f"  pure {mode:>17} {latency_ms:4d} ms  {_cells(row)}  ({time.monotonic() - t0:.0f} s)",
                flush=True,
            )
    return rows


# ---------------------------------------------------------------------------------- node graph
class _DelayedRuntime:
    """The card's runtime, each ``infer`` returned ``latency_s`` later (a real sleep)."""

    def __init__(self, runtime: Any, latency_s: float) -> None:
        self._runtime, self.latency_s = runtime, latency_s

    def infer(self, *args: Any, **kwargs: Any) -> Any:
        out = self._runtime.infer(*args, **kwargs)
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)


def _graph_params(card: Path, mode: str, out_dir: Path) -> Path:
    """config/demo.yaml with the card, the executor mode and the async observation rate."""
    import yaml

    data = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    policy = data["/**/policy_node"]["ros__parameters"]
    policy["card"] = str(card)
    policy["rate_hz"] = 1.0 / (ASYNC_EXECUTION_HORIZON * 0.05)  # as the pure loop's async modes
    data["/**/executor_node"]["ros__parameters"]["mode"] = mode
    if mode == "rtc":  # docs/rtc.md: start each inference when fewer than d + margin actions remain
        policy["inference_trigger"] = "horizon"
        data["/**/executor_node"]["ros__parameters"]["rtc_handover_steps"] = (
            RTC_HANDOVER_STEPS  # as the pure loop
        )
    path = out_dir / f"graph_{mode}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def graph_row(
    card: Path, task: SwitchingTargetsTask, mode: str, latency_ms: int, episodes: int, seed: int
) -> dict:
    """One row through the real node graph (episodes run back to back from where the arm is)."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import JointState

    from vla_ros.msg import ActionChunk
    from vla_ros.nodes.bringup import build_nodes, ros_arguments
    from vla_ros.nodes.policy_node import PolicyNode
    from vla_ros.runtime import load_runtime
    from vla_ros.util.dds import use_large_data_profile

    with tempfile.TemporaryDirectory() as tmp:
        params = _graph_params(card, mode, Path(tmp))
        context = Context()
        use_large_data_profile()
        rclpy.init(context=context, args=ros_arguments(params, log_level="warn"))
        nodes: list[Any] = []
        executor = spinner = None
        try:
            (sim,) = build_nodes(["sim_node"], context)
            nodes.append(sim)
            if not sim.has_parameter("target"):
                raise SystemExit(
                    "--graph: this sim_node has no live 'target' parameter to switch targets with"
                )
            runtime = load_runtime(card, backend="onnxruntime", threads=1)
            nodes.append(PolicyNode(context=context, runtime=_DelayedRuntime(runtime, latency_ms / 1e3)))
            nodes += build_nodes(["executor_node"], context)
            watch = rclpy.create_node("closed_loop_watch", context=context)
            nodes.append(watch)
            lock = threading.Lock()
            state: dict[str, Any] = {"pos": None, "cmds": [], "chunks": []}

            def on_state(msg: JointState) -> None:
                with lock:
                    state["pos"] = np.asarray(msg.position, dtype=np.float64)

            def on_cmd(msg: JointState) -> None:
                with lock:
                    state["cmds"].append((time.monotonic_ns(), np.asarray(msg.position, dtype=np.float64)))

            def on_chunk(_msg: Any) -> None:
                with lock:
                    state["chunks"].append(time.monotonic_ns())

            watch.create_subscription(JointState, "joint_states", on_state, 10)
            watch.create_subscription(JointState, "vla/joint_command", on_cmd, 100)
            watch.create_subscription(ActionChunk, "vla/action_chunk", on_chunk, 10)
            executor = MultiThreadedExecutor(context=context)
            for node in nodes:
                executor.add_node(node)
            spinner = threading.Thread(target=executor.spin, daemon=True)
            spinner.start()

            def set_target(xy: np.ndarray) -> None:
                sim.set_parameters([Parameter("target", Parameter.Type.DOUBLE_ARRAY, [float(v) for v in xy])])

            deadline = time.monotonic() + 30.0
            while not state["cmds"] and time.monotonic() < deadline:  # warm-up: first commands
                time.sleep(0.05)
            per_episode = []
            for ep in evaluation_episodes(episodes, task, seed):
                per_episode.append(_graph_episode(ep, task, state, lock, set_target))
            return {"loop": "node_graph", "mode": mode, "latency_ms": latency_ms, **aggregate(per_episode)}
        finally:
            if executor is not None:
                executor.shutdown(timeout_sec=2.0)
            if spinner is not None:
                spinner.join(timeout=5.0)
            for node in reversed(nodes):
                node.destroy_node()
            rclpy.try_shutdown(context=context)


def _graph_episode(
    ep: TaskEpisode, task: SwitchingTargetsTask, state: dict, lock: Any, set_target: Any
) -> dict:
    set_target(ep.target)
    start = time.monotonic_ns()
    with lock:
        state["cmds"].clear()
        state["chunks"].clear()
    while not ep.success and (time.monotonic_ns() - start) / 1e9 <= task.deadline_s:
        time.sleep(0.005)
        with lock:
            pos = state["pos"]
        if pos is not None and ep.update(pos, (time.monotonic_ns() - start) / 1e9):
            set_target(ep.target)
    with lock:
        stamps = np.array([t for t, _ in state["cmds"]], dtype=np.int64)
        cmds = np.stack([c for _, c in state["cmds"]]) if state["cmds"] else np.zeros((0, 6))
        chunk_times = list(state["chunks"])
    boundaries = sorted({int(np.searchsorted(stamps, t)) for t in chunk_times} - {len(stamps)})
    seams = seam_jumps(cmds, boundaries, 6) if len(cmds) else np.zeros(0)  # one chunk step + a tick
    return {
        "success": ep.success,
        "time_to_success_s": ep.time_to_success_s,
        "max_seam_jump": float(seams.max()) if seams.size else 0.0,
        "seam_jumps": seams.tolist(),
        "jerk_rms": jerk_rms(cmds, 0.01) if len(cmds) else 0.0,
        "dropped": 0,
        "chunks": len(chunk_times),
    }


# ---------------------------------------------------------------------------------- output
def _cells(row: dict[str, Any]) -> str:
    if row.get("note"):
        return row["note"]
    tts = row["time_to_success_s"]
    return (
        f"success {row['success_rate']:6.1%}  time {('-' if tts is None else f'{tts:5.2f} s'):>7}  "
        f"max seam {row['max_seam_jump']:.4f} rad  jerk {row['jerk_rms']:8.0f} rad/s^3"
    )


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the rows."""
    out = [
        "| loop | mode | latency (ms) | episodes | success | time to success (s) | max seam jump (rad) "
        "| median seam jump (rad) | jerk RMS (rad/s^3) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("note"):
            out.append(f"| {r['loop']} | {r['mode']} | {r['latency_ms']} | - | {r['note']} | | | | |")
            continue
        tts = "-" if r["time_to_success_s"] is None else f"{r['time_to_success_s']:.2f}"
        out.append(
            f"| {r['loop']} | {r['mode']} | {r['latency_ms']} | {r['episodes']} | {r['success_rate']:.0%} "
            f"| {tts} | {r['max_seam_jump']:.4f} | {_num(r.get('median_seam_jump'))} | {r['jerk_rms']:.0f} |"
        )
    return "\n".join(out)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _ms_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _mode_list(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in modes if m not in STUDY_MODES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {bad}; choose from {','.join(STUDY_MODES)}")
    return modes


def main(argv: list[str] | None = None) -> int:
    """Run the study; print the table; write the JSON rows unless ``--no-write``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--card", type=Path, default=DEFAULT_CARD, help="policy card folder")
    parser.add_argument("--expert", action="store_true", help="the scripted expert instead of the card")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per pure-loop row")
    parser.add_argument("--seed", type=int, default=1234, help="episode (and noise) seed")
    parser.add_argument("--modes", type=_mode_list, default=list(STUDY_MODES), help="comma-separated")
    parser.add_argument("--latencies", type=_ms_list, default=list(LATENCIES_MS), help="ms, comma-separated")
    parser.add_argument("--graph", action="store_true", help="also run the node-graph subset")
    parser.add_argument("--graph-episodes", type=int, default=3, help="episodes per node-graph row")
    parser.add_argument("--graph-modes", type=_mode_list, default=list(GRAPH_MODES), help="comma-separated")
    parser.add_argument("--graph-latencies", type=_ms_list, default=list(GRAPH_LATENCIES_MS), help="ms")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON rows file")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.graph_episodes < 1:
        parser.error("--episodes and --graph-episodes must be >= 1")
    if not args.expert and not (args.card / "card.yaml").is_file():
        parser.error(
            f"--card {args.card} holds no policy card (card.yaml); train it: python -m vla_ros.sim.train_flow"
        )
    task = SwitchingTargetsTask()
    print(
        f"closed-loop latency study: {'expert' if args.expert else args.card.name}, task switching_targets "
        f"({task.n_targets} targets, deadline {task.deadline_s:g} s), {args.episodes} episodes per row, "
        f"load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = pure_rows(args, task)
    if args.graph:
        for mode in args.graph_modes:
            for latency_ms in args.graph_latencies:
                why = "sync has no node-graph form" if mode == "sync" else mode_available(mode)
                if why is not None:
                    rows.append({"loop": "node_graph", **unavailable_row(mode, latency_ms / 1e3, why)})
                    continue
                t0 = time.monotonic()
                row = graph_row(args.card, task, mode, latency_ms, args.graph_episodes, args.seed)
                rows.append(row)
                print(
                    f"  graph {mode:>16} {latency_ms:4d} ms  {_cells(row)}  ({time.monotonic() - t0:.0f} s)",
                    flush=True,
                )
    print()
    print(table(rows))
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
        print(f"\nrows: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
