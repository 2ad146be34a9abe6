"""``vla-ros demo``: the simulated arm and the bundled policy through the real node graph.

``sim_node`` -> ``camera/<name>/image_raw`` + ``joint_states`` -> ``policy_node`` ->
``vla/action_chunk`` -> ``executor_node`` -> ``vla/joint_command`` -> ``sim_node``, in one
process, built exactly as ``vla-ros bringup`` builds it (:mod:`vla_ros.nodes.bringup`: the YAML
is given to rcl as ``--params-file``) from ``config/demo.yaml``, whose ``policy_node.card`` is the
bundled card (``vla_ros/sim/bundled/sim_reach_act``, package data). A monitor node in the same
executor counts what flows on the topics. After ``--duration`` seconds it prints a report:
chunks, commands, policy latency, executor jitter and the task metric (the fingertip's distance
to the target the sim draws, against holding still), and exits 0 when the loop worked.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vla_ros.sim.render import DEFAULT_TARGET
from vla_ros.sim.task import fingertip
from vla_ros.util.dds import use_large_data_profile
from vla_ros.util.param_files import ParamsFileError, read_params

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the vla_ros package folder
BUNDLED_CARD = Path(__file__).resolve().parent / "bundled" / "sim_reach_act"
#: the loop "worked" when the fingertip ends at most this share of its start distance away
MIN_IMPROVEMENT = 0.5


class DemoError(RuntimeError):
    """The demo could not start; the message says how to fix it."""


def default_params_file() -> Path:
    """``config/demo.yaml`` from the source tree, else from the installed package's share folder."""
    candidates = [PACKAGE_ROOT.parent / "config" / "demo.yaml"]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("vla_ros")) / "config" / "demo.yaml")
    except Exception:  # ament_index missing or the package not installed: source tree only
        pass
    for path in candidates:
        if path.is_file():
            return path
    raise DemoError(
        f"no demo parameter file found (looked at {[str(c) for c in candidates]}); "
        "pass one with --params (see config/demo.yaml in the repository)"
    )


def resolve_card(card: str) -> Path:
    """A card path from the YAML or ``--card``: absolute, from the current directory, or package data."""
    if not card:
        return BUNDLED_CARD
    path = Path(card).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve()
    parts = path.parts
    inside = PACKAGE_ROOT.joinpath(*parts[1:]) if parts and parts[0] == "vla_ros" else PACKAGE_ROOT / path
    return inside if inside.exists() else path.resolve()


def prepare_params(params_file: Path, card: str | None, out_dir: Path) -> tuple[Path, dict[str, Any]]:
    """The demo YAML with the policy card resolved to an absolute path, written to ``out_dir``.

    Returns (the written file, the parsed data). Raises :class:`DemoError` naming the problem.
    """
    if not params_file.is_file():
        raise DemoError(f"parameter file {str(params_file)!r} does not exist; pass --params config/demo.yaml")
    try:
        read_params(params_file)  # checked as rcl reads it: size first, UTF-8, aliases, depth
        data = yaml.safe_load(params_file.read_text())
    except ParamsFileError as exc:
        raise DemoError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise DemoError(f"parameter file {str(params_file)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise DemoError(f"parameter file {str(params_file)!r} must map node names to ros__parameters")
    key = next((k for k in data if str(k).rstrip("/").rsplit("/", 1)[-1] == "policy_node"), None)
    if key is None:
        data["/**/policy_node"] = {"ros__parameters": {}}
        key = "/**/policy_node"
    section = data[key].setdefault("ros__parameters", {})
    path = resolve_card(card if card is not None else str(section.get("card", "")))
    if not (path / "card.yaml").is_file():
        raise DemoError(
            f"policy card {str(path)!r} not found (no card.yaml there); the bundled card lives in "
            f"{BUNDLED_CARD} (rebuild it with: python -m vla_ros.sim.train_bundled)"
        )
    section["card"] = str(path)
    out = out_dir / "demo_params.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out, data


@dataclass
class Report:
    """What the demo saw; :meth:`problems` says whether the loop worked."""

    duration_s: float
    nodes: list[str]
    policy_id: str = ""
    chunks_published: int = 0
    chunks_seen: int = 0
    commands_published: int = 0
    commands_seen: int = 0
    joint_states_seen: int = 0
    infer_p50_ms: float = float("nan")
    infer_p99_ms: float = float("nan")
    latency_p50_ms: float = float("nan")
    latency_p99_ms: float = float("nan")
    tick_period_ms: float = float("nan")
    jitter_p50_ms: float = float("nan")
    jitter_p99_ms: float = float("nan")
    overruns: int = 0
    target: list[float] = field(default_factory=lambda: list(DEFAULT_TARGET))
    start_distance: float = float("nan")
    final_distance: float = float("nan")
    min_distance: float = float("nan")
    reached_after_s: float | None = None
    success_radius: float = 0.05
    policy_faults: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Why the loop did not work (empty when it did)."""
        out = []
        if self.chunks_seen == 0:
            out.append(
                "no action chunks on vla/action_chunk: the policy produced nothing"
                + (f" (policy faults: {', '.join(self.policy_faults)})" if self.policy_faults else "")
            )
        if self.commands_seen == 0:
            out.append(
                "no joint commands on vla/joint_command: is the executor armed (armed_on_start) and "
                "are its joint_names the sim's?"
            )
        if not np.isfinite(self.final_distance):
            out.append("no joint_states from sim_node: the task metric could not be measured")
        elif self.final_distance > MIN_IMPROVEMENT * self.start_distance:
            out.append(
                f"the fingertip ended {self.final_distance:.3f} from the target, not closer than "
                f"{MIN_IMPROVEMENT:.0%} of its start distance {self.start_distance:.3f} (holding "
                "still keeps it there): the policy did not do the task; try a longer --duration"
            )
        return out

    def text(self) -> str:
        """The human-readable report."""

        def ms(x: float) -> str:
            return f"{x:.1f} ms" if np.isfinite(x) else "n/a"

        d = self.duration_s
        reached = (
            f"reached (within {self.success_radius:g}) after {self.reached_after_s:.1f} s"
            if self.reached_after_s is not None
            else f"not within {self.success_radius:g}"
        )
        lines = [
            f"vla-ros demo: {' + '.join(self.nodes)} for {d:.1f} s, policy {self.policy_id}",
            f"  chunks     {self.chunks_published} published ({self.chunks_published / d:.1f}/s), "
            f"{self.chunks_seen} seen on vla/action_chunk",
            f"  commands   {self.commands_published} published ({self.commands_published / d:.1f}/s), "
            f"{self.commands_seen} seen on vla/joint_command",
            f"  policy     inference p50 {ms(self.infer_p50_ms)}, p99 {ms(self.infer_p99_ms)}; "
            f"observation -> chunk p50 {ms(self.latency_p50_ms)}, p99 {ms(self.latency_p99_ms)}",
            f"  executor   tick period p50 {ms(self.tick_period_ms)}, jitter |period - nominal| "
            f"p50 {ms(self.jitter_p50_ms)}, p99 {ms(self.jitter_p99_ms)}, overruns {self.overruns}",
            f"  task       reach the target at ({self.target[0]:g}, {self.target[1]:g}): fingertip "
            f"distance {self.start_distance:.3f} -> {self.final_distance:.3f} (min "
            f"{self.min_distance:.3f}; holding still: {self.start_distance:.3f}); {reached}",
        ]
        problems = self.problems()
        lines.append("result: OK, the loop worked" if not problems else "result: FAILED")
        lines += [f"  - {p}" for p in problems]
        return "\n".join(lines)


class _Monitor:
    """Counts chunks and commands on the topics and tracks the fingertip from joint_states."""

    def __init__(self, context: Any, joint_names: list[str], target: tuple[float, float]) -> None:
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import JointState

        from vla_ros.msg import ActionChunk

        self.node = Node("vla_demo_monitor", context=context)
        self.joint_names = list(joint_names)
        self.target = np.asarray(target, dtype=np.float64)
        self.lock = threading.Lock()
        self.chunks = self.commands = self.states = 0
        self.distances: list[tuple[float, float]] = []  # (monotonic s, distance)
        self.node.create_subscription(ActionChunk, "vla/action_chunk", self._on_chunk, 10)
        self.node.create_subscription(JointState, "vla/joint_command", self._on_command, 10)
        self.node.create_subscription(JointState, "joint_states", self._on_state, qos_profile_sensor_data)

    def _on_chunk(self, _msg: Any) -> None:
        with self.lock:
            self.chunks += 1

    def _on_command(self, _msg: Any) -> None:
        with self.lock:
            self.commands += 1

    def _on_state(self, msg: Any) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if not all(n in index for n in self.joint_names):
            return
        q = np.array([msg.position[index[n]] for n in self.joint_names])
        d = float(np.linalg.norm(fingertip(q) - self.target))
        with self.lock:
            self.states += 1
            self.distances.append((time.monotonic(), d))


def _jitter(tick_times_ns: list[int], period_ns: float) -> tuple[float, float, float]:
    """(median period, p50 and p99 of |period - nominal|) in ms."""
    if len(tick_times_ns) < 3:
        return float("nan"), float("nan"), float("nan")
    periods = np.diff(np.asarray(tick_times_ns, dtype=np.float64))
    dev = np.abs(periods - period_ns)
    p50, p99 = np.percentile(dev, (50, 99))
    return float(np.median(periods)) / 1e6, float(p50) / 1e6, float(p99) / 1e6


def _report(nodes: dict[str, Any], monitor: _Monitor, duration_s: float, t_start: float) -> Report:
    report = Report(duration_s=duration_s, nodes=list(nodes))
    policy, executor = nodes.get("policy_node"), nodes.get("executor_node")
    if policy is not None:
        snap = policy.policy.stats.snapshot(recent=100_000)
        report.policy_id = policy.policy_id
        report.chunks_published = snap.counts["chunks_published"]
        report.infer_p50_ms, report.infer_p99_ms = snap.infer_p50_ms, snap.infer_p99_ms
        report.latency_p50_ms, report.latency_p99_ms = snap.latency_p50_ms, snap.latency_p99_ms
        report.policy_faults = sorted(policy.policy.faults.totals)
    if executor is not None:
        report.commands_published = int(executor.published)
        report.overruns = int(getattr(executor, "overruns", 0))
        period_ns = 1e9 / float(executor.values["control_rate_hz"])
        report.tick_period_ms, report.jitter_p50_ms, report.jitter_p99_ms = _jitter(
            list(executor.tick_times_ns), period_ns
        )
    with monitor.lock:
        report.chunks_seen, report.commands_seen = monitor.chunks, monitor.commands
        report.joint_states_seen = monitor.states
        dist = list(monitor.distances)
    report.target = monitor.target.tolist()
    if dist:
        values = np.array([d for _, d in dist])
        report.start_distance, report.final_distance = float(values[0]), float(values[-1])
        report.min_distance = float(values.min())
        inside = [t for t, d in dist if d <= report.success_radius]
        report.reached_after_s = round(inside[0] - t_start, 2) if inside else None
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``vla-ros demo`` arguments."""
    parser.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    parser.add_argument("--params", type=Path, default=None, help="parameter YAML (default config/demo.yaml)")
    parser.add_argument(
        "--card",
        default=None,
        help="policy card folder (default: the YAML's: the bundled card)",
    )
    parser.add_argument("--log-level", default="warn", choices=("debug", "info", "warn", "error", "fatal"))
    parser.add_argument("--threads", type=int, default=0, help="executor threads (0 = one per CPU)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when chunks and commands flowed and the arm did the task, else 1."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    from vla_ros.nodes.bringup import BringupError, build_nodes, ros_arguments, select_nodes, yaml_sections

    if not args.duration > 0:
        print(f"vla-ros demo: --duration must be > 0 seconds, got {args.duration}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vla_demo_") as tmp:
        try:
            params_file, data = prepare_params(args.params or default_params_file(), args.card, Path(tmp))
            names = select_nodes(yaml_sections(params_file), doctor=False, sim=True)
        except (DemoError, BringupError) as exc:
            print(f"vla-ros demo: {exc}", file=sys.stderr)
            return 1
        sim_section = next((v["ros__parameters"] for k, v in data.items() if str(k).endswith("sim_node")), {})
        joints = list(sim_section.get("joint_names") or [f"joint_{i}" for i in range(1, 7)])
        context = Context()
        use_large_data_profile()
        rclpy.init(context=context, args=ros_arguments(params_file, log_level=args.log_level))
        nodes: list[Any] = []
        monitor: _Monitor | None = None
        executor = None
        t_start = time.monotonic()
        try:
            try:
                nodes = build_nodes(names, context)
            except BringupError as exc:
                print(f"vla-ros demo: {exc}", file=sys.stderr)
                return 1
            monitor = _Monitor(context, joints, DEFAULT_TARGET)
            executor = MultiThreadedExecutor(num_threads=args.threads or None, context=context)
            for node in [*nodes, monitor.node]:
                executor.add_node(node)
            if not args.json:
                print(f"vla-ros demo: running {', '.join(names)} for {args.duration:g} s ...", flush=True)
            t_start = time.monotonic()
            deadline = t_start + args.duration
            while context.ok() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=min(0.1, max(0.0, deadline - time.monotonic())))
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            elapsed = max(time.monotonic() - t_start, 1e-9)
            report = (
                _report(dict(zip(names, nodes)), monitor, elapsed, t_start) if monitor is not None else None
            )
            if executor is not None:
                executor.shutdown(timeout_sec=2.0)
            if monitor is not None:
                monitor.node.destroy_node()
            for node in reversed(nodes):
                node.destroy_node()
            rclpy.try_shutdown(context=context)
    if report is None:
        return 1
    problems = report.problems()
    if args.json:
        print(json.dumps({**asdict(report), "ok": not problems, "problems": problems}))
    else:
        print(report.text())
    return 0 if not problems else 1


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (same as ``vla-ros demo``)."""
    parser = argparse.ArgumentParser(prog="vla-ros demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
