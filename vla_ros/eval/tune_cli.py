"""``vla-ros tune BAG``: sweep executor parameters on a recording and write the best into the YAML.

    vla-ros tune BAG --card CARD --params config/vla.yaml \\
        --grid mode=temporal_ensemble --grid ensemble_coefficient=0,0.01,0.05,0.1 \\
        --write config/vla.tuned.yaml

The policy runs over the bag once (as ``vla-ros eval``); each candidate replays only the
executor on those chunks. Without ``--grid`` a built-in sweep tries every mode with its own knob.
The YAML's own executor settings are always scored too, as the baseline.

Settings that cannot work with the inference delay measured on the replay (the delay in control
steps not shorter than the execution horizon or the chunk horizon, see
:mod:`vla_ros.eval.tune_schedule`) are discarded with the reason and never written; when the
YAML's own settings are such, they are shown for comparison but cannot win.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from vla_ros.eval.bag import BagError
from vla_ros.eval.cli import EvalError, add_common_arguments, nothing_evaluated, replay_bag, run_executor
from vla_ros.eval.tune import (
    DEFAULT_CANDIDATES,
    OBJECTIVES,
    TuneError,
    check_candidate,
    parse_grid,
    score,
    write_tuned,
)
from vla_ros.eval.tune_schedule import screen_from_chunks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``vla-ros tune`` arguments."""
    add_common_arguments(parser)
    parser.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2,...",
        help="executor parameter values to try (repeatable; the product is swept)",
    )
    parser.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="balanced",
        help="balanced: command error and jerk relative to the YAML's settings (default); "
        "tracking: command RMS error; smoothness: command jerk RMS",
    )
    parser.add_argument("--smooth-weight", type=float, default=0.5, help="balanced: weight of jerk vs error")
    parser.add_argument("--top", type=int, default=10, help="rows in the table")
    parser.add_argument(
        "--write", metavar="YAML", help="write --params (or a new file) with the best values here"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")


def _label(candidate: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in candidate.items()) or "(the YAML's settings)"


def run(args: argparse.Namespace) -> int:
    """Run ``vla-ros tune``; 0 on success, 1 when nothing could be evaluated (nothing written),
    2 on bad input."""
    try:
        candidates = parse_grid(args.grid) if args.grid else [check_candidate(c) for c in DEFAULT_CANDIDATES]
        if args.write and args.params and Path(args.write).resolve() == Path(args.params).resolve():
            raise TuneError(f"--write {args.write} would overwrite --params; write to a new file and compare")
        replayed = replay_bag(args)
    except (EvalError, BagError, TuneError) as exc:
        print(f"vla-ros tune: {exc}", file=sys.stderr)
        return 2
    # settings that cannot work with the measured delay are never scored and never written
    screen = screen_from_chunks(replayed.policy.chunks)
    base_problems = screen.problems(replayed.values.executor) if screen else []
    discarded: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    for candidate in candidates:
        problems = screen.problems({**replayed.values.executor, **candidate}) if screen else []
        if problems:
            discarded.append({"params": candidate, "reasons": problems})
        else:
            kept.append(candidate)
    if screen and base_problems and not kept:
        print(
            f"vla-ros tune: none of the {len(candidates) + 1} settings can work with the measured "
            f"{screen.describe()}: {base_problems[0]}; nothing written (make inference faster, export a "
            "longer chunk horizon, or try time_offset_s near the latency)",
            file=sys.stderr,
        )
        return 1
    base_setup = replayed.executor
    base_ex, baseline = run_executor(replayed)
    failure = nothing_evaluated(replayed, base_ex, baseline)
    if failure:
        print(f"vla-ros tune: nothing could be evaluated, nothing written: {failure}", file=sys.stderr)
        return 1
    rows = [{"params": {}, "metrics": baseline, "baseline": True, "problems": base_problems}]
    for candidate in kept:
        values = {**replayed.values.executor, **candidate}
        setup = base_setup.with_values(values)
        _, metrics = run_executor(replayed, setup)
        rows.append({"params": candidate, "metrics": metrics, "baseline": False, "problems": []})
    for row in rows:
        row["score"] = score(row["metrics"], baseline, args.objective, args.smooth_weight)
    rows.sort(key=lambda r: r["score"])
    best = next(r for r in rows if not r["problems"])  # one is feasible (checked above)
    failure = None
    if math.isinf(best["score"]):
        failure = (
            f"every one of the {len(rows)} settings scored inf on objective {args.objective!r} (no "
            "command could be compared with the reference, or the baseline's error or jerk is 0 or n/a "
            "for 'balanced'); nothing written"
        )
    elif args.write:
        current = {k: replayed.values.executor[k] for k in best["params"]}
        header = (
            f"tuned by `vla-ros tune` on {args.bag} (objective {args.objective}); "
            f"changed executor_node: {best['params'] or 'nothing'} (was {current or '-'})"
        )
        try:
            write_tuned(
                str(args.params) if args.params else None, args.write, best["params"], header, args.namespace
            )
        except (TuneError, OSError) as exc:
            print(f"vla-ros tune: {exc}", file=sys.stderr)
            return 2
    if args.json:
        out = [
            {
                "params": r["params"],
                "baseline": r["baseline"],
                "score": r["score"],
                "commands": r["metrics"]["commands"],
                "problems": r["problems"],
            }
            for r in rows
        ]
        written = None if failure else args.write
        report = {
            "objective": args.objective,
            "candidates": out,
            "written": written,
            "delay": screen.to_dict() if screen else None,
            "discarded": discarded,
        }
        print(json.dumps(report, indent=2))
        if failure:
            print(f"vla-ros tune: {failure}", file=sys.stderr)
            return 1
        return 0
    print(
        f"vla-ros tune: {len(rows)} executor settings on {args.bag} with {replayed.card.name} "
        f"({replayed.policy.latency_mode} latency, {len(replayed.policy.chunks)} chunks, "
        f"objective {args.objective})"
    )
    if screen:
        print(f"  {screen.describe()}")
    print(f"{'rank':>4}  {'score':>7}  {'rmse':>8}  {'jerk rms':>9}  {'hold %':>6}  settings")
    for rank, r in enumerate(rows[: max(1, args.top)], 1):
        c = r["metrics"]["commands"]
        mark = "  <- baseline" if r["baseline"] else ""
        mark += "  (cannot work: never written)" if r["problems"] else ""
        print(
            f"{rank:>4}  {r['score']:>7.3f}  {c['rmse']:>8.4f}  {c['jerk_rms']:>9.4g}  "
            f"{100 * c['hold_fraction']:>6.1f}  {_label(r['params'])}{mark}"
        )
    base_rank = next(i for i, r in enumerate(rows, 1) if r["baseline"])
    if base_rank > args.top:
        print(f"  (baseline ranks {base_rank} of {len(rows)})")
    if base_problems:
        print(f"  the YAML's own settings cannot work: {'; '.join(base_problems)}")
    for d in discarded:
        print(f"  discarded {_label(d['params'])}: {'; '.join(d['reasons'])}")
    if failure:
        print(f"vla-ros tune: {failure}", file=sys.stderr)
        return 1
    if args.write:
        print(f"wrote {args.write} with executor_node {best['params'] or '(unchanged)'}")
    return 0
