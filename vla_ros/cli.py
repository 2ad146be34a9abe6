"""vla-ros: one command line for doctor, export, bench, eval, tune, bringup and demo.

Each subcommand lives in its area's ``cli`` module, which provides ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their subcommand runs, so ``vla-ros doctor``
never pays for importing torch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("vla_ros.doctor.cli", "check ROS, workspace, middleware, GPU and TensorRT"),
    "export": ("vla_ros.export.cli", "export a model to a policy card (ONNX, TensorRT)"),
    "bench": ("vla_ros.runtime.bench_cli", "benchmark a policy card on each backend"),
    "eval": ("vla_ros.eval.cli", "replay a rosbag through the policy and executor"),
    "tune": ("vla_ros.eval.tune_cli", "sweep executor parameters on a rosbag, write YAML"),
    "bringup": ("vla_ros.nodes.bringup", "run policy + executor (+ doctor, sim) in one process"),
    "demo": ("vla_ros.sim.demo", "run the embedded default: sim robot + bundled policy"),
}


def _available() -> dict[str, tuple[str, str]]:
    """Subcommands whose module exists in this installation."""
    out = {}
    for name, (module, help_) in SUBCOMMANDS.items():
        if importlib.util.find_spec(module.rsplit(".", 1)[0]) is None:
            continue
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            out[name] = (module, help_)
    return out


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
