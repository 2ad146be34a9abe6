"""Policy-node overhead and observation-to-command latency, through real rclpy topics.

    ./env.sh python benchmarks/bench_pipeline.py            # table
    ./env.sh python benchmarks/bench_pipeline.py --json     # JSON: overhead_p99_ms, ...

Set-up (one process, one MultiThreadedExecutor, as ``vla-ros bringup``): a policy card exported
from ``config/models/act_tiny.yaml`` with 224x224 images (or ``--card``), ``policy_node`` on
onnxruntime, ``executor_node`` armed at ``--control-rate`` Hz, and a bench node that publishes two
640x480 rgb8 cameras + a 7-joint JointState, all stamped with the current time, then waits for
the chunk and for the first joint command after it. Iterations are sequential (no queueing).

Figures per iteration (integer ns, reported in ms):

- ``stamp_to_publish``: the chunk's ``inference_latency`` = publish time - observation stamp
  (includes DDS transport of the images, callbacks, worker wake-up, conversion, runtime).
- ``model``: the model call alone (runtime stage ``model``: ONNX Runtime session run).
- ``overhead`` = stamp_to_publish - model: everything the node adds beyond the model call,
  including the runtime's pre-processing (resize to the card size) and post-processing.
- ``preprocess``: the runtime's pre-processing alone (resize + normalize), part of overhead.
- ``node_step``: worker iteration minus model (assemble, convert, pre/post, publish), i.e.
  overhead without transport and wake-up.
- ``node_own``: node_step minus the runtime's pre/post-processing: the policy node's own code
  (assemble, zero-copy image views, Observation, ActionChunk, publish).
- ``obs_to_command``: observation stamp -> first executor command received after the chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAMERAS = ("cam_high", "cam_wrist")
JOINTS = [f"joint_{i}" for i in range(1, 8)]


def export_card(out: Path) -> Path:
    """act_tiny with 224x224 images and this bench's joint names, exported to ONNX."""
    import yaml

    from vla_ros.export import export_policy

    cfg = yaml.safe_load((ROOT / "config" / "models" / "act_tiny.yaml").read_text())
    cfg["io"]["image_size"] = [224, 224]
    cfg["io"]["camera_names"] = list(CAMERAS)
    card = export_policy(
        cfg, out, backends=("onnx",), name="bench_act_tiny_224", state_joints=JOINTS, action_joints=JOINTS
    )
    return Path(card.root)


def _pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
    }


def run(
    card: Path,
    iterations: int,
    warmup: int,
    control_rate: float,
    threads: int,
    gil_switch_interval_s: float = 0.00005,
    thread_priority: int = 40,
) -> dict:
    """Run the pipeline; returns the figures (ms) and the set-up."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image, JointState

    from vla_ros.msg import ActionChunk
    from vla_ros.nodes.executor_node import ExecutorNode
    from vla_ros.nodes.policy_node import PolicyNode

    context = Context()
    rclpy.init(context=context)
    P = Parameter
    policy = PolicyNode(
        context=context,
        parameter_overrides=[
            P("card", value=str(card)),
            P("warmup", value=10),
            P("threads", value=threads),
            P("image_staleness_s", value=5.0),
            P("state_staleness_s", value=5.0),
        ],
    )
    executor_node = ExecutorNode(
        context=context,
        parameter_overrides=[
            P("armed_on_start", value=True),
            P("allow_unlimited", value=True),  # no robot here: the bench measures latency, not limits
            P("control_rate_hz", value=float(control_rate)),
            P("max_jump", value=[1e9]),
            # the shipped config/executor.yaml settings (bringup runs policy + executor in one process)
            P("gil_switch_interval_s", value=gil_switch_interval_s),
            P("thread_priority", value=thread_priority),
        ],
    )
    bench = Node("bench_pipeline", context=context)
    chunk_event, command_event = threading.Event(), threading.Event()
    state = {"chunk": None, "chunk_rx": 0, "want_stamp": -1, "cmd_ns": 0}

    def on_chunk(msg: ActionChunk) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if stamp == state["want_stamp"]:
            state["chunk"] = msg
            state["chunk_rx"] = bench.get_clock().now().nanoseconds
            chunk_event.set()

    def on_command(msg: JointState) -> None:
        now = bench.get_clock().now().nanoseconds
        if state["chunk_rx"] and not command_event.is_set() and now >= state["chunk_rx"]:
            state["cmd_ns"] = now
            command_event.set()

    bench.create_subscription(ActionChunk, "vla/action_chunk", on_chunk, 10)
    bench.create_subscription(JointState, "vla/joint_command", on_command, 10)
    cam_pubs = [bench.create_publisher(Image, f"camera/{c}/image_raw", 5) for c in CAMERAS]
    state_pub = bench.create_publisher(JointState, "joint_states", 10)
    rng = np.random.default_rng(0)
    images = []
    for _ in CAMERAS:
        img = Image(height=480, width=640, encoding="rgb8", step=640 * 3)
        img.data = array("B", rng.integers(0, 256, 480 * 640 * 3, dtype=np.uint8).tobytes())
        images.append(img)
    js = JointState(name=list(JOINTS), position=[0.0] * len(JOINTS))

    ex = MultiThreadedExecutor(context=context)
    for node in (policy, executor_node, bench):
        ex.add_node(node)
    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    deadline = time.monotonic() + 10
    while any(p.get_subscription_count() == 0 for p in [*cam_pubs, state_pub]):
        if time.monotonic() > deadline:
            raise RuntimeError("policy_node did not subscribe within 10 s")
        time.sleep(0.01)

    rows = []
    misses = 0
    for i in range(warmup + iterations):
        chunk_event.clear()
        command_event.clear()
        state["chunk_rx"] = 0
        policy.runtime.reset_stats()
        now = bench.get_clock().now().to_msg()
        stamp = now.sec * 1_000_000_000 + now.nanosec
        state["want_stamp"] = stamp
        for msg in (*images, js):
            msg.header.stamp = now
        for pub, img in zip(cam_pubs, images):
            pub.publish(img)
        state_pub.publish(js)
        if not chunk_event.wait(2.0) or not command_event.wait(2.0):
            misses += 1
            continue
        chunk = state["chunk"]
        latency = chunk.inference_latency.sec * 1_000_000_000 + chunk.inference_latency.nanosec
        stats = policy.runtime.stats()
        _, _, step_ns = policy.timings[-1]
        model_ms = stats["model"]["p50_ms"]
        if i >= warmup:
            rows.append(
                {
                    "stamp_to_publish": latency / 1e6,
                    "model": model_ms,
                    "overhead": latency / 1e6 - model_ms,
                    "preprocess": stats["preprocess"]["p50_ms"],
                    "postprocess": stats["postprocess"]["p50_ms"],
                    "node_step": step_ns / 1e6 - model_ms,
                    "node_own": step_ns / 1e6
                    - model_ms
                    - stats["preprocess"]["p50_ms"]
                    - stats["postprocess"]["p50_ms"],
                    "obs_to_command": (state["cmd_ns"] - stamp) / 1e6,
                }
            )
        time.sleep(0.02)

    for node in (policy, executor_node, bench):
        ex.remove_node(node)
    ex.shutdown(timeout_sec=2.0)
    spin.join(timeout=5.0)
    for node in (bench, executor_node, policy):
        node.destroy_node()
    rclpy.try_shutdown(context=context)
    if not rows:
        raise RuntimeError(f"no iteration completed ({misses} timed out)")
    figures = {k: _pct([r[k] for r in rows]) for k in rows[0]}
    out = {
        "overhead_p50_ms": figures["overhead"]["p50"],
        "overhead_p99_ms": figures["overhead"]["p99"],
        "obs_to_command_p50_ms": figures["obs_to_command"]["p50"],
        "obs_to_command_p99_ms": figures["obs_to_command"]["p99"],
        "figures_ms": figures,
        "iterations": len(rows),
        "timeouts": misses,
        "setup": {
            "cameras": "2 x 640x480 rgb8 -> card 224x224",
            "state_dim": len(JOINTS),
            "card": str(card),
            "backend": "onnxruntime",
            "control_rate_hz": control_rate,
            "executor_gil_switch_interval_s": gil_switch_interval_s,
            "executor_thread_priority": thread_priority,
            "cpus": os.cpu_count(),
        },
    }
    return out


def executor_jitter(seconds: float) -> dict:
    """``jitter_p99_ms_200hz`` / ``_500hz``: bench_executor.py's measurement, its default settings."""
    import importlib.util

    path = Path(__file__).with_name("bench_executor.py")
    spec = importlib.util.spec_from_file_location("bench_executor", path)
    bench_executor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_executor)
    args = bench_executor.build_parser().parse_args(["--seconds", str(seconds), "--timers", "thread"])
    out = {}
    for rate in (200.0, 500.0):
        r = bench_executor.measure(rate, "thread", args)
        out[f"jitter_p99_ms_{int(rate)}hz"] = round(r["p99_ms"], 4)
        out[f"jitter_run_{int(rate)}hz"] = r
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: run and print a table (or JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--card",
        type=Path,
        default=None,
        help=f"existing card (2 cameras {CAMERAS}, joints joint_1..7); default: export act_tiny at 224x224",
    )
    parser.add_argument("--control-rate", type=float, default=200.0, help="executor rate, Hz")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0=default)")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.00005,
        help="executor gil_switch_interval_s (process-wide; as config/executor.yaml; 0: Python's 5 ms)",
    )
    parser.add_argument("--priority", type=int, default=40, help="executor thread_priority (as the YAML)")
    parser.add_argument(
        "--jitter-seconds",
        type=float,
        default=10.0,
        help="also measure executor tick jitter at 200 and 500 Hz with a policy inferring in another "
        "process (benchmarks/bench_executor.py, shipped executor settings) for this long each; 0: skip",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        card = args.card or export_card(Path(tmp) / "card")
        result = run(
            card,
            args.iterations,
            args.warmup,
            args.control_rate,
            args.threads,
            args.switch_interval,
            args.priority,
        )
    if args.jitter_seconds > 0:
        result.update(executor_jitter(args.jitter_seconds))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"policy pipeline: {result['setup']['cameras']}, state {len(JOINTS)}, "
        f"{result['iterations']} iterations ({result['timeouts']} timeouts), "
        f"executor {args.control_rate:g} Hz"
    )
    print(f"{'figure (ms)':<20}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for name, f in result["figures_ms"].items():
        print(f"{name:<20}{f['p50']:>9.3f}{f['p90']:>9.3f}{f['p99']:>9.3f}{f['max']:>9.3f}")
    print(f"overhead_p99_ms = {result['overhead_p99_ms']:.3f} (target <= 1.5)")
    for rate in (200, 500):
        key = f"jitter_p99_ms_{rate}hz"
        if key in result:
            print(f"{key} = {result[key]:.4f}" + (" (target <= 0.3)" if rate == 200 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
