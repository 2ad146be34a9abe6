"""Policy-node overhead and observation-to-command latency, through real rclpy topics.

    ./env.sh python benchmarks/bench_pipeline.py            # table
    ./env.sh python benchmarks/bench_pipeline.py --json     # JSON: overhead_p99_ms, ...

Set-up: a policy card exported from ``config/models/act_tiny.yaml`` with 224x224 images (or
``--card``), ``policy_node`` on onnxruntime, ``executor_node`` armed at ``--control-rate`` Hz, and
a bench node (the camera driver) that publishes two 640x480 rgb8 cameras + a 7-joint JointState,
all stamped with the current time, then waits for the chunk and for the first joint command
after it. Iterations are sequential (no queueing). Two layouts (``--layout``):

- ``processes`` (default; what ``launch/vla.launch.py`` runs): policy_node and executor_node each
  in their own process, spun as their executables spin them, the bench (camera driver) in a
  third; every process uses the shipped Fast DDS profile (``config/fastdds_large_data.xml``).
- ``bringup``: everything in one process on one MultiThreadedExecutor (``vla-ros bringup``).

Figures per iteration (integer ns, reported in ms):

- ``stamp_to_publish``: the chunk's ``inference_latency`` = publish time - observation stamp
  (includes DDS transport of the images, callbacks, worker wake-up, conversion, runtime).
- ``model``: the model call alone (runtime stage ``model``: ONNX Runtime session run).
- ``overhead`` = stamp_to_publish - model: everything the node adds beyond the model call,
  including the runtime's pre-processing (resize to the card size) and post-processing.
- ``delivery`` (processes layout): observation stamp -> the last of its three messages reaching
  its callback in the policy process (the camera driver's publish, DDS, rclpy's take);
  ``in_node`` = overhead - delivery: from that callback to the chunk's publish, minus the model.
- ``preprocess``: the runtime's pre-processing alone (resize + normalize), part of overhead.
- ``node_step``: worker iteration minus model (assemble, convert, pre/post, publish), i.e.
  overhead without transport and wake-up.
- ``node_own``: node_step minus the runtime's pre/post-processing: the policy node's own code
  (assemble, zero-copy image views, Observation, ActionChunk, publish).
- ``obs_to_command``: observation stamp -> first executor command received after the chunk.
"""

from __future__ import annotations

import argparse
import contextlib
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


def _images() -> list:
    """One random 640x480 rgb8 Image per camera."""
    from sensor_msgs.msg import Image

    rng = np.random.default_rng(0)
    images = []
    for _ in CAMERAS:
        img = Image(height=480, width=640, encoding="rgb8", step=640 * 3)
        img.data = array("B", rng.integers(0, 256, 480 * 640 * 3, dtype=np.uint8).tobytes())
        images.append(img)
    return images


class CameraDriver:
    """The bench's side of the graph: two cameras + joint state out, chunk and command in.

    :meth:`observe` publishes one stamped observation and waits for the chunk made from it and
    for the first executor command after that chunk.
    """

    def __init__(self, node) -> None:
        from sensor_msgs.msg import Image, JointState

        from vla_ros.msg import ActionChunk

        self.node = node
        self._chunk_event, self._command_event = threading.Event(), threading.Event()
        self._want_stamp, self._chunk_rx, self.chunk, self.cmd_ns = -1, 0, None, 0
        node.create_subscription(ActionChunk, "vla/action_chunk", self._on_chunk, 10)
        node.create_subscription(JointState, "vla/joint_command", self._on_command, 10)
        self.cam_pubs = [node.create_publisher(Image, f"camera/{c}/image_raw", 5) for c in CAMERAS]
        self.state_pub = node.create_publisher(JointState, "joint_states", 10)
        self._images = _images()
        self._js = JointState(name=list(JOINTS), position=[0.0] * len(JOINTS))

    def _on_chunk(self, msg) -> None:
        if msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec == self._want_stamp:
            self.chunk, self._chunk_rx = msg, time.time_ns()
            self._chunk_event.set()

    def _on_command(self, msg) -> None:
        now = time.time_ns()
        if self._chunk_rx and not self._command_event.is_set() and now >= self._chunk_rx:
            self.cmd_ns = now
            self._command_event.set()

    def subscribed(self) -> bool:
        """Whether the policy node subscribes to every camera and the joint state."""
        return all(p.get_subscription_count() > 0 for p in [*self.cam_pubs, self.state_pub])

    def observe(self, timeout_s: float = 2.0) -> int | None:
        """Publish one observation stamped now; its stamp (ns) once chunk and command came, else None."""
        self._chunk_event.clear()
        self._command_event.clear()
        self._chunk_rx = 0
        stamp = time.time_ns()
        self._want_stamp = stamp
        for msg in (*self._images, self._js):
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        for pub, img in zip(self.cam_pubs, self._images):
            pub.publish(img)
        self.state_pub.publish(self._js)
        if not self._chunk_event.wait(timeout_s) or not self._command_event.wait(timeout_s):
            return None
        return stamp


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

    from vla_ros.nodes.executor_node import ExecutorNode
    from vla_ros.nodes.policy_node import PolicyNode

    context = Context()
    rclpy.init(context=context)
    policy = PolicyNode(context=context, parameter_overrides=_policy_overrides(card, threads))
    # the shipped config/executor.yaml settings (bringup runs policy + executor in one process)
    executor_node = ExecutorNode(
        context=context,
        parameter_overrides=_executor_overrides(control_rate, gil_switch_interval_s, thread_priority),
    )
    bench = Node("bench_pipeline", context=context)
    camera = CameraDriver(bench)

    ex = MultiThreadedExecutor(context=context)
    for node in (policy, executor_node, bench):
        ex.add_node(node)
    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    deadline = time.monotonic() + 10
    while not camera.subscribed():
        if time.monotonic() > deadline:
            raise RuntimeError("policy_node did not subscribe within 10 s")
        time.sleep(0.01)

    rows = []
    misses = 0
    for i in range(warmup + iterations):
        policy.runtime.reset_stats()
        stamp = camera.observe()
        if stamp is None:
            misses += 1
            continue
        chunk = camera.chunk
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
                    "obs_to_command": (camera.cmd_ns - stamp) / 1e6,
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
    return _result(rows, misses, card, control_rate, gil_switch_interval_s, thread_priority) | {
        "layout": "bringup"
    }


def _result(rows: list[dict], misses: int, card: Path, control_rate: float, switch: float, prio: int) -> dict:
    figures = {k: _pct([r[k] for r in rows]) for k in rows[0]}
    return {
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
            "executor_gil_switch_interval_s": switch,
            "executor_thread_priority": prio,
            "cpus": os.cpu_count(),
        },
    }


def _policy_overrides(card: Path, threads: int) -> list:
    from rclpy.parameter import Parameter as P

    return [
        P("card", value=str(card)),
        P("warmup", value=10),
        P("threads", value=threads),
        P("image_staleness_s", value=5.0),
        P("state_staleness_s", value=5.0),
    ]


def _executor_overrides(control_rate: float, switch: float, priority: int) -> list:
    from rclpy.parameter import Parameter as P

    return [
        P("armed_on_start", value=True),
        P("allow_unlimited", value=True),  # no robot here: the bench measures latency, not limits
        P("control_rate_hz", value=float(control_rate)),
        P("max_jump", value=[1e9]),
        P("gil_switch_interval_s", value=switch),
        P("thread_priority", value=priority),
    ]


def serve(
    role: str, card: Path, out: Path, threads: int, control_rate: float, switch: float, prio: int
) -> int:
    """Child process of ``--layout processes``: one node, spun as its executable spins it.

    The policy child writes one row per published chunk (observation stamp, stamp->publish,
    runtime stage times, worker step) to ``out`` when it is stopped (SIGINT/SIGTERM).
    """
    import signal

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from vla_ros.util.dds import use_large_data_profile

    use_large_data_profile()
    rclpy.init()
    rows: list[dict] = []
    if role == "policy":
        from vla_ros.nodes.policy_node import PolicyNode
        from vla_ros.perception.cdr import parse_image

        arrived: dict[int, int] = {}  # observation stamp -> wall time its last input reached a callback

        def arrive(stamp_ns: int) -> None:
            arrived[stamp_ns] = max(arrived.get(stamp_ns, 0), time.time_ns())

        class BenchPolicyNode(PolicyNode):
            def _raw_image_callback(self, camera, kind):
                inner = super()._raw_image_callback(camera, kind)

                def callback(buf: bytes) -> None:
                    stamp = parse_image(buf).header.stamp
                    arrive(stamp.sec * 1_000_000_000 + stamp.nanosec)
                    inner(buf)

                return callback

            def _image_callback(self, camera):  # zero_copy_images: false
                inner = super()._image_callback(camera)

                def callback(msg) -> None:
                    arrive(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
                    inner(msg)

                return callback

            def _on_joint_state(self, msg) -> None:
                arrive(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
                super()._on_joint_state(msg)

            def _publish(self, result) -> None:
                super()._publish(result)
                latency_ns, _, step_ns = self.timings[-1]
                rows.append(
                    {
                        "stamp": result.stamp_ns,
                        "latency_ns": latency_ns,
                        "step_ns": step_ns,
                        "delivery_ns": arrived.pop(result.stamp_ns, result.stamp_ns) - result.stamp_ns,
                    }
                    | self.runtime.last_times_ms()
                )

        node = BenchPolicyNode(parameter_overrides=_policy_overrides(card, threads))
        executor = SingleThreadedExecutor()  # as policy_node's main()
        spin_thread_prio = None
    else:
        from vla_ros.nodes.executor_node import ExecutorNode, make_executor

        node = ExecutorNode(parameter_overrides=_executor_overrides(control_rate, switch, prio))
        executor = make_executor(node)
        spin_thread_prio = prio
    executor.add_node(node)

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        if spin_thread_prio and spin_thread_prio > 1:
            with contextlib.suppress(PermissionError, OSError):
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(spin_thread_prio - 1))
        executor.spin()
    except KeyboardInterrupt:
        pass
    finally:
        if role == "policy":
            out.write_text(json.dumps(rows))
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def run_processes(
    card: Path, iterations: int, warmup: int, control_rate: float, threads: int, switch: float, prio: int
) -> dict:
    """``--layout processes``: policy and executor nodes in child processes; this one is the camera."""
    import signal
    import subprocess

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from vla_ros.util.dds import use_large_data_profile
    from vla_ros.util.memory import keep_heap

    profile = use_large_data_profile()
    keep_heap()
    tmp = Path(tempfile.mkdtemp(prefix="vla_ros_bench_pipeline_"))
    rows_file = tmp / "policy_rows.json"
    common = [str(card), "--threads", str(threads), "--control-rate", str(control_rate)]
    common += ["--switch-interval", str(switch), "--priority", str(prio), "--jitter-seconds", "0"]
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--serve", role, "--serve-out", str(rows_file), "--card", *common]
        )
        for role in ("policy", "executor")
    ]
    rclpy.init()
    bench = Node("bench_pipeline")
    camera = CameraDriver(bench)
    ex = SingleThreadedExecutor()
    ex.add_node(bench)
    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    sent: list[tuple[int, int]] = []  # (stamp, obs_to_command ns)
    misses = 0
    try:
        deadline = time.monotonic() + 120  # the children load onnxruntime and warm up first
        while not camera.subscribed() or bench.count_publishers("vla/joint_command") == 0:
            if time.monotonic() > deadline or any(c.poll() is not None for c in children):
                raise RuntimeError("policy_node / executor_node did not come up")
            time.sleep(0.05)
        time.sleep(0.5)
        for i in range(warmup + iterations):
            stamp = camera.observe()
            if stamp is None:
                misses += 1
                continue
            if i >= warmup:
                sent.append((stamp, camera.cmd_ns - stamp))
            time.sleep(0.02)
    finally:
        for c in children:
            c.send_signal(signal.SIGINT)
        for c in children:
            try:
                c.wait(timeout=20)
            except subprocess.TimeoutExpired:
                c.kill()
        ex.shutdown(timeout_sec=2.0)
        bench.destroy_node()
        rclpy.try_shutdown()
    policy_rows = {r["stamp"]: r for r in json.loads(rows_file.read_text())} if rows_file.is_file() else {}
    rows = []
    for stamp, o2c_ns in sent:
        r = policy_rows.get(stamp)
        if r is None:
            continue
        model = r["model"]
        step = r["step_ns"] / 1e6 - model
        rows.append(
            {
                "stamp_to_publish": r["latency_ns"] / 1e6,
                "model": model,
                "overhead": r["latency_ns"] / 1e6 - model,
                "delivery": r["delivery_ns"] / 1e6,
                "in_node": r["latency_ns"] / 1e6 - model - r["delivery_ns"] / 1e6,
                "preprocess": r["preprocess"],
                "postprocess": r["postprocess"],
                "node_step": step,
                "node_own": step - r["preprocess"] - r["postprocess"],
                "obs_to_command": o2c_ns / 1e6,
            }
        )
    if not rows:
        raise RuntimeError(f"no iteration completed ({misses} timed out)")
    return _result(rows, misses, card, control_rate, switch, prio) | {
        "layout": "processes",
        "fastdds_profile": str(profile) if profile else None,
    }


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
    parser.add_argument(
        "--layout",
        choices=("processes", "bringup"),
        default="processes",
        help="processes: policy_node and executor_node in their own processes, as the launch file "
        "runs them (default); bringup: all nodes in one process on one MultiThreadedExecutor",
    )
    parser.add_argument("--serve", choices=("policy", "executor"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(
            args.serve,
            args.card,
            args.serve_out,
            args.threads,
            args.control_rate,
            args.switch_interval,
            args.priority,
        )
    with tempfile.TemporaryDirectory() as tmp:
        card = args.card or export_card(Path(tmp) / "card")
        layout_run = run_processes if args.layout == "processes" else run
        result = layout_run(
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
        f"policy pipeline ({result['layout']} layout): {result['setup']['cameras']}, state {len(JOINTS)}, "
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
