#!/usr/bin/env python3
"""Executor tick jitter with the real node while a policy infers in another process.

Starts the real ``ExecutorNode`` (armed, JointState output, 7 joints, limits on) on its
production rclpy executor, and a second process that plays the policy: torch inference on CPU
(an MLP over 64 tokens, a few tens of ms) publishing a 50-step ActionChunk after each, at most
``--chunk-hz``, plus joint_states at 100 Hz. The node records the steady-clock time at the start
of every tick; the period error is ``(t[k+1] - t[k]) - 1/rate``.

    ./env.sh python benchmarks/bench_executor.py            # table
    ./env.sh python benchmarks/bench_executor.py --json     # JSON: jitter_p99_ms_200hz, ...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # measure this checkout's code, not an older colcon install copy

POLICY_SCRIPT = r"""
import sys, threading, time
import numpy as np
import rclpy, torch
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import JointState
from vla_ros.msg import ActionChunk

threads, width, seconds, chunk_hz = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
torch.set_num_threads(threads)
rclpy.init()
node = rclpy.create_node("bench_policy")
chunks = node.create_publisher(ActionChunk, "vla/action_chunk", 10)
states = node.create_publisher(JointState, "joint_states", 10)
names = [f"j{i}" for i in range(7)]
horizon = 50
model = torch.nn.Sequential(
    torch.nn.Linear(7, width), torch.nn.ReLU(), torch.nn.Linear(width, width), torch.nn.ReLU(),
    torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, horizon * 7))

def pub_state():
    msg = JointState(name=names, position=[0.0] * 7)
    msg.header.stamp = node.get_clock().now().to_msg()
    states.publish(msg)

node.create_timer(0.01, pub_state)
def spin():
    try:
        rclpy.spin(node)
    except Exception:
        pass

threading.Thread(target=spin, daemon=True).start()
end = time.monotonic() + seconds
seq, lat = 0, []
while time.monotonic() < end:
    t_start = time.monotonic()
    stamp = node.get_clock().now()
    with torch.inference_mode():
        out = model(torch.zeros(64, 7))[0].numpy().reshape(horizon, 7) * 1e-3
    lat.append(time.monotonic() - t_start)
    msg = ActionChunk()
    msg.header.stamp = stamp.to_msg()
    msg.policy_id, msg.seq, msg.joint_names = "bench@0", seq, names
    msg.dt = Duration(sec=0, nanosec=20_000_000)
    msg.horizon, msg.action_dim, msg.action_mode = horizon, 7, "absolute"
    msg.actions = out.astype(np.float32).ravel().tolist()
    chunks.publish(msg)
    seq += 1
    rest = 1.0 / chunk_hz - (time.monotonic() - t_start)
    if rest > 0:
        time.sleep(rest)
mean = 1e3 * sum(lat) / max(len(lat), 1)
print(f"policy: {seq} chunks, mean inference {mean:.1f} ms", flush=True)
node.destroy_node()
rclpy.try_shutdown()
"""


def measure(rate_hz: float, timer: str, args: argparse.Namespace) -> dict:
    """Run the executor at ``rate_hz`` with ``timer`` for ``args.seconds``; return stats."""
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from vla_ros.nodes.executor_node import ExecutorNode, make_executor, spin

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-c", POLICY_SCRIPT, str(args.policy_threads), str(args.width)]
    cmd += [str(args.seconds + 3), str(args.chunk_hz)]
    policy = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ctx = Context()
    rclpy.init(context=ctx)
    overrides = [
        Parameter("joint_names", value=[f"j{i}" for i in range(7)]),
        Parameter("control_rate_hz", value=float(rate_hz)),
        Parameter("armed_on_start", value=True),
        Parameter("timer", value=timer),
        Parameter("thread_priority", value=args.priority),
        Parameter("gil_switch_interval_s", value=args.switch_interval),
        Parameter("max_velocity", value=[2.0]),
        Parameter("max_jump", value=[0.5]),
        Parameter("position_lower", value=[-3.0]),
        Parameter("position_upper", value=[3.0]),
    ]
    node = ExecutorNode("executor_node", context=ctx, parameter_overrides=overrides)
    executor = make_executor(node, context=ctx)
    spinner = threading.Thread(target=spin, args=(node, executor), daemon=True)
    spinner.start()
    try:
        time.sleep(2.0)  # discovery, torch start-up in the policy, first chunks
        node.tick_times_ns.clear()
        node.tick_durations_ns.clear()
        published0, overruns0 = node.published, node.overruns
        time.sleep(args.seconds)
        ticks = np.array(node.tick_times_ns, dtype=np.int64)
        work_ms = np.array(node.tick_durations_ns, dtype=np.int64) / 1e6
        published = node.published - published0
        overruns = node.overruns - overruns0
        live = 0 if node.last_command is None else node.last_command.n_live
    finally:
        executor.shutdown(timeout_sec=2.0)
        spinner.join(timeout=5.0)  # the spin thread must be out before the node and context go
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        out, _ = policy.communicate(timeout=60)
    err_ms = np.abs(np.diff(ticks) - 1e9 / rate_hz) / 1e6
    return {
        "rate_hz": rate_hz,
        "timer": timer,
        "ticks": len(ticks),
        "published": int(published),
        "overruns": int(overruns),
        "live_chunks_at_end": int(live),
        "p50_ms": float(np.percentile(err_ms, 50)),
        "p99_ms": float(np.percentile(err_ms, 99)),
        "max_ms": float(err_ms.max()),
        "tick_work_p50_ms": float(np.percentile(work_ms, 50)),
        "tick_work_p99_ms": float(np.percentile(work_ms, 99)),
        "mean_period_ms": float(np.diff(ticks).mean() / 1e6),
        "policy": out.strip().splitlines()[-1] if out.strip() else "",
    }


def build_parser() -> argparse.ArgumentParser:
    """The command line (also used by bench_pipeline.py to run the same measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per run")
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 500.0])
    parser.add_argument(
        "--timers",
        nargs="+",
        default=["thread", "ros_timer"],
        choices=["thread", "ros_timer"],
        help="first one gives the JSON keys",
    )
    parser.add_argument("--policy-threads", type=int, default=1, help="torch threads of the policy")
    parser.add_argument("--width", type=int, default=1024, help="policy MLP width (load)")
    parser.add_argument("--priority", type=int, default=40, help="thread_priority (as config/executor.yaml)")
    parser.add_argument("--switch-interval", type=float, default=0.00005, help="as config/executor.yaml")
    parser.add_argument("--chunk-hz", type=float, default=30.0, help="max policy chunk rate")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the measurements; print a table (or JSON with ``--json``)."""
    args = build_parser().parse_args(argv)
    results = [measure(r, t, args) for t in args.timers for r in args.rates]
    main_timer = args.timers[0]
    report: dict = {
        f"jitter_p99_ms_{int(r['rate_hz'])}hz": round(r["p99_ms"], 4)
        for r in results
        if r["timer"] == main_timer
    }
    report["timer"] = main_timer
    report["thread_priority"] = args.priority
    report["runs"] = results
    report["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"executor tick jitter, real node + policy process ({os.cpu_count()} CPUs)")
    head = ("timer", "rate Hz", "ticks", "|err| p50 ms", "p99 ms", "max ms", "overruns", "work p99")
    print("{:>9} {:>8} {:>7} {:>13} {:>8} {:>8} {:>9} {:>9}".format(*head))
    for r in results:
        row = (r["timer"], f"{r['rate_hz']:.0f}", r["ticks"], f"{r['p50_ms']:.4f}")
        row += (f"{r['p99_ms']:.4f}", f"{r['max_ms']:.3f}", r["overruns"])
        row += (f"{r['tick_work_p99_ms']:.3f}",)
        print("{:>9} {:>8} {:>7} {:>13} {:>8} {:>8} {:>9} {:>9}".format(*row))
        print(f"{'':>18} {r['policy']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
