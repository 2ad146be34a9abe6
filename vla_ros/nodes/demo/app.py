"""``vla-ros demo``: episodes of the sim task through the real node graph, then a report folder.

The graph is ``vla-ros bringup``'s, built from ``config/demo.yaml`` in one process:
``sim_node`` -> cameras + ``joint_states`` -> ``policy_node`` -> ``vla/action_chunk`` ->
``executor_node`` -> ``vla/joint_command`` -> ``sim_node``, plus the demo's monitor node. It runs
``--episodes`` episodes with random targets (:mod:`vla_ros.nodes.demo.episodes`, one line each),
then writes the report folder (:mod:`vla_ros.nodes.demo.report`) and prints its path.
``--mode`` sets the executor's chunk mode, ``--latency-ms`` slows the policy's inference
(:mod:`vla_ros.nodes.demo.latency`), ``--record`` adds an MCAP recording of the run's topics.
Exit 0 when the loop ran (chunks and commands flowed), 1 with the reason otherwise, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.nodes.demo.config import (
    DemoError,
    available_tasks,
    chunk_modes,
    default_params_file,
    node_section,
    prepare_params,
    resolve_task,
)
from vla_ros.nodes.demo.episodes import EpisodeConfig, run_episodes
from vla_ros.nodes.demo.record import EpisodeResult, RunRecord
from vla_ros.util.entry import run_command

DEFAULT_OUT = Path("out") / "demo"
RECORDING = "recording"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``vla-ros demo`` arguments."""
    parser.add_argument("--episodes", type=int, default=10, help="episodes to run (default 10)")
    parser.add_argument(
        "--mode",
        default=None,
        help=f"executor chunk mode: {', '.join(chunk_modes())} (default: the YAML's, temporal_ensemble)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="inference latency added to every policy call, in ms (default 0: the model's own)",
    )
    parser.add_argument("--task", default="reach", help=f"sim task: {', '.join(available_tasks())}")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"report folder (default {DEFAULT_OUT}/<UTC time>); must not hold a report yet",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the episodes' targets (default 0)")
    parser.add_argument("--record", action="store_true", help="also record the run's topics (MCAP)")
    parser.add_argument("--episode-s", type=float, default=6.0, help="time limit per episode (s, default 6)")
    parser.add_argument("--params", type=Path, default=None, help="parameter YAML (default config/demo.yaml)")
    parser.add_argument("--card", default=None, help="policy card folder (default: the task's bundled card)")
    parser.add_argument("--log-level", default="warn", choices=("debug", "info", "warn", "error", "fatal"))
    parser.add_argument("--threads", type=int, default=0, help="executor threads (0 = one per CPU)")
    parser.add_argument("--json", action="store_true", help="print the report JSON as the last line")


def _check_args(args: argparse.Namespace) -> str | None:
    if args.episodes < 1:
        return f"--episodes must be >= 1, got {args.episodes}"
    if not 0 <= args.latency_ms < 60_000:
        return f"--latency-ms must be in [0, 60000) ms, got {args.latency_ms}"
    if not 0 < args.episode_s <= 600:
        return f"--episode-s must be in (0, 600] s, got {args.episode_s}"
    if args.mode is not None and args.mode not in chunk_modes():
        return f"--mode {args.mode!r} is not an executor chunk mode; use one of {', '.join(chunk_modes())}"
    return None


def _out_dir(args: argparse.Namespace) -> Path:
    out = args.out or DEFAULT_OUT / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    if (out / "report.json").exists() or (out / RECORDING).exists():
        raise DemoError(f"report folder {str(out)!r} already holds a report; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _build(names: list[str], context: Any, data: dict[str, Any], latency_ms: float) -> list[Any]:
    """The graph's nodes, in order; the policy node's runtime slowed when ``latency_ms`` > 0."""
    from vla_ros.nodes.bringup import BringupError, build_nodes

    nodes: list[Any] = []
    try:
        for name in names:
            if name == "policy_node" and latency_ms > 0:
                nodes.append(_slowed_policy_node(context, data, latency_ms))
            else:
                nodes += build_nodes([name], context)
    except BaseException:
        for node in reversed(nodes):
            node.destroy_node()
        raise
    if not nodes:
        raise BringupError("no nodes to run")
    return nodes


def _slowed_policy_node(context: Any, data: dict[str, Any], latency_ms: float) -> Any:
    from vla_ros.nodes.bringup import BringupError
    from vla_ros.nodes.demo.latency import SlowedRuntime
    from vla_ros.nodes.policy_node import PARAMS, PolicyNode
    from vla_ros.policy.config import runtime_options
    from vla_ros.runtime import load_runtime

    p = {s.name: s.default for s in PARAMS} | node_section(data, "policy_node")
    try:
        runtime = load_runtime(
            p["card"], backend=p["backend"], **runtime_options(p["backend"], p["device"], p["threads"])
        )
        return PolicyNode(context=context, runtime=SlowedRuntime(runtime, latency_ms))
    except Exception as exc:
        raise BringupError(f"policy_node failed to start: {exc}") from exc


def _publishers(nodes: list[Any]) -> dict[str, tuple[type, Any]]:
    """Every topic the graph's nodes publish (topic -> (message class, QoS)), ROS bookkeeping aside."""
    from vla_ros.nodes.demo.monitor import SKIP_TOPICS

    found: dict[str, tuple[type, Any]] = {}
    for node in nodes:
        for pub in node.publishers:
            if pub.topic_name not in SKIP_TOPICS:
                found.setdefault(pub.topic_name, (pub.msg_type, pub.qos_profile))
    return found


def _series(rows: list[tuple[int, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, n))
    return np.array([t for t, _ in rows], dtype=np.int64), np.stack([q for _, q in rows])


def _record(
    nodes: dict[str, Any], monitor: Any, episodes: list[EpisodeResult], radius: float, settings: dict
) -> RunRecord:
    policy, executor = nodes.get("policy_node"), nodes.get("executor_node")
    with monitor.lock:
        states, commands, chunks = list(monitor.states), list(monitor.commands), list(monitor.chunks)
    n = len(monitor.joint_names)
    state_t, state = _series(states, n)
    command_t, command = _series(commands, n)
    run = RunRecord(
        joint_names=list(monitor.joint_names),
        episodes=episodes,
        state_t_ns=state_t,
        state=state,
        command_t_ns=command_t,
        command=command,
        chunk_arrival_ns=np.array([a for a, _, _ in chunks], dtype=np.int64),
        chunk_stamp_ns=np.array([s for _, s, _ in chunks], dtype=np.int64),
        success_radius=radius,
        settings=settings,
    )
    if policy is not None and getattr(policy, "policy", None) is not None:
        timings = list(policy.timings)
        run.latency_ns = [int(t[0]) for t in timings]
        run.infer_ns = [int(t[1]) for t in timings]
        run.chunks_published = int(policy.policy.stats.snapshot().counts.get("chunks_published", 0))
        settings["policy_id"] = policy.policy_id
    if executor is not None:
        run.tick_ns = list(executor.tick_times_ns)
        run.control_period_ns = round(1e9 / float(executor.values["control_rate_hz"]))
        run.overruns = int(getattr(executor, "overruns", 0))
        run.commands_published = int(executor.published)
        settings["mode"] = executor.values["mode"]
    return run


def run(args: argparse.Namespace) -> int:
    """Run the demo (see the module docstring); returns the exit code."""
    problem = _check_args(args)
    if problem:
        print(f"vla-ros demo: {problem}", file=sys.stderr)
        return 2
    try:
        task = resolve_task(args.task)
        out = _out_dir(args)
        params_file, data = prepare_params(
            args.params or default_params_file(),
            args.card if args.card is not None else task.card,
            out,
            mode=args.mode,
            modes=chunk_modes(),
        )
    except DemoError as exc:
        print(f"vla-ros demo: {exc}", file=sys.stderr)
        return 1
    settings = {
        "task": task.name,
        "episodes": args.episodes,
        "mode": args.mode or node_section(data, "executor_node").get("mode", "temporal_ensemble"),
        "latency_ms": float(args.latency_ms),
        "seed": args.seed,
        "episode_s": args.episode_s,
        "card": node_section(data, "policy_node")["card"],
    }
    try:
        run_record, extra, recorded = _run_graph(args, task, params_file, data, out, settings)
    except DemoError as exc:
        print(f"vla-ros demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vla-ros demo: interrupted; no report written", file=sys.stderr)
        return 130
    from vla_ros.nodes.demo.report import write_report

    report = write_report(run_record, out, extra, recorded)
    print(_summary_text(report, out), flush=True)
    if args.json:
        print(json.dumps(report))
    if report["commands"]["received"] == 0:
        print(
            "vla-ros demo: no joint command reached vla/joint_command: is the executor armed and are "
            "its joint_names the sim's? (the report says what else flowed)",
            file=sys.stderr,
        )
        return 1
    return 0


def _run_graph(
    args: argparse.Namespace, task: Any, params_file: Path, data: dict[str, Any], out: Path, settings: dict
) -> tuple[RunRecord, dict[str, str], dict[str, int] | None]:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from vla_ros.nodes.bringup import BringupError, ros_arguments, select_nodes, yaml_sections
    from vla_ros.nodes.demo.monitor import DemoMonitor
    from vla_ros.nodes.demo.recorder import McapRecorder, RecordError, type_name
    from vla_ros.util.dds import use_large_data_profile

    try:
        names = select_nodes(yaml_sections(params_file), doctor=False, sim=True)
    except BringupError as exc:
        raise DemoError(str(exc)) from None
    joints = list(node_section(data, "sim_node").get("joint_names") or [f"joint_{i}" for i in range(1, 7)])
    context = Context()
    use_large_data_profile()
    # no rclpy signal handlers: Ctrl-C raises KeyboardInterrupt in this thread (the episode loop),
    # which tears the graph down below (rclpy's handler would only wake executors)
    rclpy.init(
        context=context,
        args=ros_arguments(params_file, log_level=args.log_level),
        signal_handler_options=SignalHandlerOptions.NO,
    )
    nodes: list[Any] = []
    monitor = recorder = executor = spinner = None
    extra: dict[str, str] = {}
    try:
        try:
            nodes = _build(names, context, data, args.latency_ms)
        except BringupError as exc:
            raise DemoError(str(exc)) from None
        monitor = DemoMonitor(context, joints)
        if args.record:
            topics = _publishers(nodes)
            try:
                recorder = McapRecorder(out / RECORDING, {t: type_name(c) for t, (c, _q) in topics.items()})
            except RecordError as exc:
                raise DemoError(str(exc)) from None
            monitor.record(recorder, topics)
            extra["mcap"] = str(recorder.mcap_file)
        executor = MultiThreadedExecutor(num_threads=args.threads or None, context=context)
        for node in [*nodes, monitor.node]:
            executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, name="demo_spin", daemon=True)
        spinner.start()
        print(
            f"vla-ros demo: task {task.name}, {args.episodes} episodes, mode {settings['mode']}, injected "
            f"latency {args.latency_ms:g} ms; {' + '.join(names)}",
            flush=True,
        )
        config = EpisodeConfig(episode_s=args.episode_s, start_timeout_s=20.0 + 5 * args.latency_ms / 1e3)
        episodes = run_episodes(
            monitor, task, args.episodes, args.seed, config, say=lambda s: print(s, flush=True)
        )
        time.sleep(0.1)  # the last messages in flight reach the monitor and the recording
        record = _record(dict(zip(names, nodes)), monitor, episodes, task.model.success_radius, settings)
        if recorder is not None:
            recorder.close()
            return record, extra, dict(recorder.counts)
        return record, extra, None
    finally:
        if recorder is not None:
            recorder.close()
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)
        if spinner is not None:
            spinner.join(timeout=5.0)
        if monitor is not None:
            monitor.destroy()
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def _summary_text(report: dict[str, Any], out: Path) -> str:
    def ms(block: dict[str, Any], key: str) -> str:
        v = block.get(key)
        return "n/a" if v is None else f"{v:.1f} ms"

    t = report["time_to_success_s"]
    c, inf = report["control"], report["inference_latency_ms"]
    rate = report["success_rate"] or 0.0
    files = ", ".join(
        Path(p).name if k != "mcap" else f"{Path(p).parent.name}/{Path(p).name}"
        for k, p in report["files"].items()
    )
    return "\n".join(
        [
            f"success {report['successes']}/{report['episodes']} ({rate:.0%}); time to success p50 "
            + ("n/a" if t["p50"] is None else f"{t['p50']:.2f} s")
            + f"; inference p50 {ms(inf, 'p50')}, p99 {ms(inf, 'p99')}; control jitter p50 "
            f"{ms(c, 'jitter_p50_ms')}, p99 {ms(c, 'jitter_p99_ms')}",
            f"report: {out}/ ({files})",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (same as ``vla-ros demo``)."""
    return run_command("vla-ros demo", __doc__, add_arguments, run, argv)
