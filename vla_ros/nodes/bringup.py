"""``vla-ros bringup PARAMS.yaml``: policy + executor (+ doctor, + sim) in one process.

The nodes share one rclpy context and one MultiThreadedExecutor, and read their parameters from
the same YAML the launch file passes to separate processes (``launch/vla.launch.py``): the file
is given to rcl as ``--params-file``, so each ``<node_name>:`` / ``/**/<node_name>:`` section
applies exactly as under ``ros2 launch``. ``policy_node`` and ``executor_node`` always run;
``doctor_node`` and ``sim_node`` run when the YAML has a section for them (``--no-doctor``,
``--no-sim`` turn them off; ``--sim`` turns the sim on with its defaults).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

from vla_ros.contract.errors import VlaRosError
from vla_ros.util.dds import use_large_data_profile
from vla_ros.util.entry import run_command
from vla_ros.util.param_files import ParamsFileError, fully_qualified_name, names_node, read_params

#: node name -> (module, class); construction order (the sim robot first, the doctor last)
NODES: dict[str, tuple[str, str]] = {
    "sim_node": ("vla_ros.nodes.sim_node", "SimNode"),
    "policy_node": ("vla_ros.nodes.policy_node", "PolicyNode"),
    "executor_node": ("vla_ros.nodes.executor_node", "ExecutorNode"),
    "doctor_node": ("vla_ros.nodes.doctor_node", "DoctorNode"),
}
REQUIRED = ("policy_node", "executor_node")
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


class BringupError(VlaRosError, RuntimeError):
    """The parameter file or a node could not be brought up; the message says how to fix it."""


def yaml_sections(params_file: str | Path, namespace: str = "/") -> set[str]:
    """Node names (of :data:`NODES`) that have a section naming them which rcl applies to them in
    ``namespace`` (``/**/x`` anywhere, ``/ns/x`` in ``/ns``, ``x`` in ``/``; not ``/**``).

    The file is read checked (size before parsing, UTF-8, no aliases, depth; see
    :func:`vla_ros.util.param_files.read_params`). Raises :class:`BringupError` when the file is
    missing, too large or not a parameter file.
    """
    try:
        pf = read_params(params_file)
    except ParamsFileError as exc:
        raise BringupError(str(exc)) from exc
    fqns = {name: fully_qualified_name(name, namespace) for name in NODES}
    return {name for name, fqn in fqns.items() if any(names_node(s, fqn) for s in pf.sections)}


def select_nodes(sections: set[str], *, doctor: bool = True, sim: bool | None = None) -> list[str]:
    """Which nodes to start, in construction order. ``sim=None`` = when the YAML has sim_node."""
    wanted = {
        "policy_node": True,
        "executor_node": True,
        "doctor_node": doctor and "doctor_node" in sections,
        "sim_node": bool(sim) or (sim is None and "sim_node" in sections),
    }
    chosen = [name for name in NODES if wanted[name]]
    return chosen


def ros_arguments(
    params_file: str | Path,
    *,
    namespace: str = "",
    use_sim_time: bool = False,
    log_level: str = "info",
) -> list[str]:
    """The ``--ros-args`` that apply the YAML, namespace, sim time and log level to every node."""
    args = ["vla-ros-bringup", "--ros-args", "--params-file", str(params_file)]
    if namespace:
        args += ["-r", f"__ns:={namespace if namespace.startswith('/') else '/' + namespace}"]
    if use_sim_time:
        args += ["-p", "use_sim_time:=true"]
    args += ["--log-level", log_level]
    return args


def build_nodes(names: list[str], context: Any) -> list[Any]:
    """Construct the named nodes in ``context``; on failure destroys those already built."""
    nodes: list[Any] = []
    try:
        for name in names:
            module, cls = NODES[name]
            try:
                node_cls = getattr(importlib.import_module(module), cls)
            except (ImportError, AttributeError) as exc:
                raise BringupError(f"{name}: cannot import {module}.{cls} ({exc})") from exc
            try:
                nodes.append(node_cls(context=context))
            except Exception as exc:
                raise BringupError(f"{name} failed to start: {exc}") from exc
    except BaseException:
        for node in reversed(nodes):
            node.destroy_node()
        raise
    return nodes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``vla-ros bringup`` arguments."""
    parser.add_argument("params_file", help="ROS 2 parameter YAML (e.g. config/vla.yaml)")
    parser.add_argument("--namespace", default="", help="namespace for every node")
    parser.add_argument("--use-sim-time", action="store_true", help="use /clock (bag replay, sim)")
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS, help="ROS log level")
    parser.add_argument("--no-doctor", action="store_true", help="do not start doctor_node")
    sim = parser.add_mutually_exclusive_group()
    sim.add_argument(
        "--sim",
        dest="sim",
        action="store_true",
        default=None,
        help="start sim_node even without a sim_node section",
    )
    sim.add_argument(
        "--no-sim",
        dest="sim",
        action="store_false",
        help="do not start sim_node even with a sim_node section",
    )
    parser.add_argument("--threads", type=int, default=0, help="executor threads (0 = one per CPU)")
    parser.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds (0 = run until Ctrl-C)"
    )


def run(args: argparse.Namespace) -> int:
    """Bring the nodes up and spin them; returns the exit code (1 on a start-up error)."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    try:
        sections = yaml_sections(args.params_file, args.namespace or "/")
        names = select_nodes(sections, doctor=not args.no_doctor, sim=args.sim)
    except BringupError as exc:
        print(f"vla-ros bringup: {exc}", file=sys.stderr)
        return 1
    context = Context()
    use_large_data_profile()
    try:
        rclpy.init(
            context=context,
            args=ros_arguments(
                Path(args.params_file).resolve(),
                namespace=args.namespace,
                use_sim_time=args.use_sim_time,
                log_level=args.log_level,
            ),
        )
    except Exception as exc:  # rcl refused the arguments (a file rcl reads differently, a bad namespace)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        print(f"vla-ros bringup: ROS refused {args.params_file} / --namespace: {reason}", file=sys.stderr)
        return 1
    nodes: list[Any] = []
    executor = None
    try:
        try:
            nodes = build_nodes(names, context)
        except BringupError as exc:
            print(f"vla-ros bringup: {exc}", file=sys.stderr)
            return 1
        executor = MultiThreadedExecutor(num_threads=args.threads or None, context=context)
        for node in nodes:
            executor.add_node(node)
        nodes[0].get_logger().info(f"bringup: running {', '.join(names)} from {args.params_file}")
        if args.duration > 0:
            deadline = time.monotonic() + args.duration
            while context.ok() and time.monotonic() < deadline:
                executor.spin_once(timeout_sec=min(0.1, max(0.0, deadline - time.monotonic())))
        else:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=2.0)
        for node in reversed(nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (same as ``vla-ros bringup``)."""
    return run_command("vla-ros bringup", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
