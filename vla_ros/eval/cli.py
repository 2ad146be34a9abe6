"""``vla-ros eval BAG``: replay a rosbag2 recording through the policy and the executor, offline.

    vla-ros eval BAG --card CARD [--params config/vla.yaml] [--latency measured|MS] [--json]
    vla-ros eval BAG --write-sim-bag --card bundled     # make a demonstration bag first, then eval

The bag's camera and ``joint_states`` topics go through the policy node's own code (the same
YAML, the same card, the same staleness rules); its chunks go through the executor's controller
at the YAML's control rate; the commands are compared with the recorded joint states. See
:mod:`vla_ros.eval.replay` and :mod:`vla_ros.eval.metrics`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vla_ros.contract.errors import VlaRosError
from vla_ros.eval.bag import BagError, BagSource
from vla_ros.eval.metrics import MetricsError, Track, compute_metrics
from vla_ros.eval.replay import ExecutorTrace, PolicyTrace, replay_executor, replay_policy
from vla_ros.eval.setup import ExecutorSetup, executor_setup, load_policy_step, load_values, replay_topics


class EvalError(VlaRosError, RuntimeError):
    """The replay cannot run; the message says what and how to fix it."""


def parse_latency(text: str) -> int | None:
    """``measured`` -> None; ``35`` / ``35ms`` -> 35 ms in ns. Raises ``argparse.ArgumentTypeError``."""
    text = text.strip().lower()
    if text == "measured":
        return None
    try:
        ms = float(text.removesuffix("ms"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--latency {text!r}: give 'measured' or milliseconds such as 35 or 35ms"
        ) from None
    if not 0 <= ms <= 10_000:
        raise argparse.ArgumentTypeError(f"--latency {ms:g} ms must be in [0, 10000]")
    return round(ms * 1e6)


def parse_assignments(items: list[str] | None, option: str) -> dict[str, Any]:
    """``['key=value', ...]`` with YAML values (``mode=latest``, ``speed_scale=0.5``, ``max_jump=[0.3]``)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise EvalError(f"{option} {item!r} is not key=value (e.g. {option} mode=latest)")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise EvalError(f"{option} {item!r}: the value is not valid YAML ({exc})") from None
    return out


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``eval`` and ``tune``."""
    parser.add_argument("bag", type=Path, help="rosbag2 folder (sqlite3 or mcap) or a ROS 1 .bag")
    parser.add_argument(
        "--card",
        help="policy card folder ('bundled' = the embedded sim policy); "
        "default: policy_node's card in --params",
    )
    parser.add_argument(
        "--params",
        type=Path,
        help="parameter YAML with policy_node/executor_node "
        "sections (as for the robot, e.g. config/vla.yaml); default: the nodes' defaults",
    )
    parser.add_argument(
        "-p",
        "--policy-param",
        action="append",
        metavar="KEY=VALUE",
        help="override a policy_node parameter (repeatable)",
    )
    parser.add_argument(
        "-e",
        "--executor-param",
        action="append",
        metavar="KEY=VALUE",
        help="override an executor_node parameter (repeatable), e.g. -e control_rate_hz=200",
    )
    parser.add_argument(
        "--namespace", default="/", help="namespace the nodes ran in (resolves relative topics)"
    )
    parser.add_argument(
        "--reference",
        help="JointState topic the commands are compared with (default: "
        "the joint_states topic: what the robot did)",
    )
    parser.add_argument(
        "--latency",
        type=parse_latency,
        default=None,
        metavar="measured|MS",
        help="inference latency in bag time: 'measured' (each inference's duration here; "
        "default) or a fixed value in ms, e.g. the robot's p50 from `vla-ros bench`",
    )
    parser.add_argument("--start", type=float, default=0.0, help="skip this many seconds of the bag")
    parser.add_argument(
        "--duration", type=float, default=0.0, help="replay at most this long (0: to the end)"
    )
    parser.add_argument("--distro", default="humble", help="message definitions for bags without them")
    parser.add_argument(
        "--write-sim-bag",
        action="store_true",
        help="first record a demonstration bag of the embedded sim arm at BAG (must not exist)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``vla-ros eval`` arguments."""
    add_common_arguments(parser)
    parser.add_argument("--plot", type=Path, help="write commands vs reference to this PNG")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON only")
    parser.add_argument("--out", type=Path, help="also write the metrics JSON to this file")


@dataclass
class Replayed:
    """A finished policy pass and what the executor pass needs."""

    values: Any
    policy: PolicyTrace
    reference: Track
    executor: ExecutorSetup
    card: Path
    bag_notes: list[str] = field(default_factory=list)  # repairs made reading the bag, messages skipped


def replay_bag(args: argparse.Namespace, log: Any = None) -> Replayed:
    """Set up from ``args`` and run the policy pass (the expensive one). Raises :class:`EvalError`."""
    from vla_ros.sim.cards import resolve_card

    try:
        values = load_values(
            args.params,
            parse_assignments(args.policy_param, "-p"),
            parse_assignments(args.executor_param, "-e"),
            namespace=args.namespace,
        )
    except ValueError as exc:
        raise EvalError(str(exc)) from exc
    card_arg = args.card or values.policy["card"]
    if not card_arg:
        raise EvalError(
            "no policy card: pass --card CARD (or 'bundled'), or set policy_node card in --params"
        )
    card = resolve_card("" if card_arg == "bundled" else card_arg)
    if args.write_sim_bag:
        from vla_ros.eval.simbag import write_sim_bag

        write_sim_bag(args.bag)
        print(f"wrote a demonstration bag of the simulated arm to {args.bag}", file=sys.stderr)
    from vla_ros.contract.errors import VlaRosError

    try:
        step = load_policy_step(values.policy, card, log=log)
    except (VlaRosError, ValueError, OSError) as exc:
        raise EvalError(f"cannot load policy card {str(card)!r}: {exc}") from exc
    if args.start < 0 or args.duration < 0:
        raise EvalError(f"--start {args.start:g} and --duration {args.duration:g} must be >= 0 (seconds)")
    with BagSource(args.bag, distro=args.distro) as bag:
        try:
            topics = replay_topics(
                values.policy, step, bag, namespace=args.namespace, reference=args.reference
            )
            setup = executor_setup(values.executor, step.action_joints, bag, namespace=args.namespace)
        except BagError:
            raise
        except ValueError as exc:  # cameras, joint names, limits, controller configuration
            raise EvalError(str(exc)) from exc
        start = bag.start_ns + round(args.start * 1e9)
        if start >= bag.end_ns:
            length = (bag.end_ns - bag.start_ns) / 1e9
            raise EvalError(f"--start {args.start:g} s is past the end of the bag ({length:.2f} s long)")
        stop = min(start + round(args.duration * 1e9), bag.end_ns) if args.duration > 0 else None
        trace = replay_policy(
            bag,
            step,
            topics,
            latency_ns=args.latency,
            rate_hz=values.policy["rate_hz"],
            start_ns=start,
            stop_ns=stop,
        )
        notes = list(bag.notes)
        notes += [f"skipped {n} messages on {t}: {bag.decode_errors[t]}" for t, n in bag.undecodable.items()]
    for note in notes:
        print(f"vla-ros: bag note: {note}", file=sys.stderr)
    try:
        reference = Track.from_samples(trace.reference, setup.config.joint_names)
    except MetricsError as exc:
        raise EvalError(str(exc)) from exc
    return Replayed(values, trace, reference, setup, card, notes)


def run_executor(replayed: Replayed, setup: ExecutorSetup | None = None) -> tuple[ExecutorTrace, dict]:
    """The executor pass and the metrics for ``setup`` (default: the YAML's)."""
    setup = setup or replayed.executor
    ex = replay_executor(replayed.policy, setup.core())
    return ex, compute_metrics(replayed.policy, ex, replayed.reference)


def _seconds(t_ns: float) -> str:
    return f"{t_ns / 1e9:.3f} s"


def nothing_evaluated(replayed: Replayed, ex: ExecutorTrace, metrics: dict) -> str | None:
    """Why the replay evaluated nothing, or None when it did.

    Nothing is evaluated when the policy produced no chunk, the executor accepted none, or
    neither a chunk action nor a command could be compared with the reference (every figure
    would be n/a).
    """
    p = replayed.policy
    if not p.chunks:
        if not p.steps:
            return (
                "the policy never ran: no camera image or joint state arrived in the replayed window "
                f"({dict(p.messages) or 'no message on the replayed topics'})"
            )
        causes = ", ".join(f"{k} x{n}" for k, n in p.no_chunk.most_common())
        return (
            f"the policy produced no chunk in {p.steps} steps ({causes}); the [policy] lines say why "
            "(stale or unstamped inputs, missing joints, images that do not convert)"
        )
    if not ex.chunk_targets:
        causes = ", ".join(f"{k} x{n}" for k, n in ex.rejected_chunks.most_common()) or "none delivered"
        return f"the executor accepted none of the {len(p.chunks)} chunks ({causes})"
    if math.isnan(metrics["chunks"]["mae"]) and math.isnan(metrics["commands"]["mae"]):
        if not ex.times_ns.size:
            return "no control tick fell between the first joint state and the end of the replayed window"
        if ex.no_state.all():
            states = dict(ex.rejected_states) or "none rejected"
            return (
                "the executor never had a complete, fresh joint state for "
                f"{list(ex.joint_names)} (rejected states: {states}), so no command was computed"
            )
        ref = replayed.reference
        return (
            "no chunk action or command could be compared with the reference: its stamps span "
            f"{_seconds(ref.times_ns[0])}..{_seconds(ref.times_ns[-1])}, the commands "
            f"{_seconds(ex.times_ns[0])}..{_seconds(ex.times_ns[-1])} (bag log time); the reference "
            "must be stamped on the recording's clock"
        )
    return None


def run(args: argparse.Namespace) -> int:
    """Run ``vla-ros eval``; 0 on success, 1 when nothing could be evaluated, 2 on bad input."""
    from vla_ros.eval.report import plot, summary

    def log(level: str, message: str) -> None:
        if not args.json:
            print(f"[policy {level}] {message}", file=sys.stderr)

    try:
        replayed = replay_bag(args, log)
    except (EvalError, BagError) as exc:
        print(f"vla-ros eval: {exc}", file=sys.stderr)
        return 2
    ex, metrics = run_executor(replayed)
    metrics["card"] = str(replayed.card)
    metrics["bag"] = str(args.bag)
    metrics["limits"] = replayed.executor.note
    metrics["bag_notes"] = list(replayed.bag_notes)
    failure = nothing_evaluated(replayed, ex, metrics)
    metrics["evaluated"] = failure is None
    if failure:
        metrics["error"] = failure
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(metrics, indent=2))
    if args.plot and not failure:
        try:
            plot(ex, replayed.reference, metrics, args.plot)
        except ImportError as exc:
            print(f"vla-ros eval: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(summary(metrics, f"vla-ros eval: {args.bag} with {replayed.card.name}"))
        print(f"  {replayed.executor.note}")
        if args.plot and not failure:
            print(f"  plot: {args.plot}")
    if failure:
        print(f"vla-ros eval: nothing could be evaluated: {failure}", file=sys.stderr)
        return 1
    return 0
