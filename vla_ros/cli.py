"""vla-ros: one command line for doctor, export, bench, eval, tune, bringup and demo.

Each subcommand lives in its area's ``cli`` module, which provides ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their subcommand runs, so ``vla-ros doctor``
never pays for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("vla_ros.doctor.cli", "check ROS, workspace, middleware, GPU and TensorRT"),
    "export": ("vla_ros.export.cli", "export a model to a policy card (ONNX, TensorRT)"),
    "bench": ("vla_ros.runtime.bench_cli", "benchmark a policy card on each backend"),
    "eval": ("vla_ros.eval.cli", "replay a rosbag through the policy and executor"),
    "tune": ("vla_ros.eval.tune_cli", "sweep executor parameters on a rosbag, write YAML"),
    "bag2lerobot": ("vla_ros.dataset.cli", "convert a rosbag2 recording into a LeRobot dataset"),
    "bringup": ("vla_ros.nodes.bringup", "run policy + executor (+ doctor, sim) in one process"),
    "demo": ("vla_ros.nodes.demo", "sim robot + bundled policy through the node graph: episodes, report"),
}


def _module_exists(module: str) -> bool:
    """Whether ``vla_ros.<area>.<name>`` is installed, found without importing ``<area>``.

    Importing an area package can be slow (``vla_ros.export`` imports torch), so the listing
    looks for the files on the package path instead.
    """
    import vla_ros

    parts = module.split(".")[1:]
    return any(
        Path(root, *parts[:-1], parts[-1] + ".py").is_file() or Path(root, *parts, "__init__.py").is_file()
        for root in vla_ros.__path__
    )


def _available() -> dict[str, tuple[str, str]]:
    """Subcommands whose module exists in this installation."""
    return {name: entry for name, entry in SUBCOMMANDS.items() if _module_exists(entry[0])}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vla-ros``; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    available = _available()
    parser = argparse.ArgumentParser(prog="vla-ros", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_) in available.items():
        sub.add_parser(name, help=help_, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in available:
        if argv and argv[0] not in ("-h", "--help"):
            print(
                f"vla-ros: unknown command {argv[0]!r}; available: {', '.join(available)}",
                file=sys.stderr,
            )
            parser.print_help(sys.stderr)
            return 2
        parser.print_help()
        return 0
    name = argv[0]
    module = importlib.import_module(available[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"vla-ros {name}", description=available[name][1])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
