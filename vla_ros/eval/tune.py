"""Executor parameter sweeps on a replay, scoring, and writing the winner back into the YAML.

The policy pass runs once; every candidate re-runs only the executor pass
(:func:`vla_ros.eval.replay.replay_executor`) on the same chunks, so candidates are compared on
identical inputs. Candidates are executor parameter sets validated by the executor's own
parameter table. Safety limits are never tuned: they come from the robot, not from a fit.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from vla_ros.contract.errors import VlaRosError
from vla_ros.executor import params as ep
from vla_ros.util.param_files import (
    ParamsFile,
    fully_qualified_name,
    key_matches,
    key_problem,
    merged_params,
    parse_sections,
    read_params,
    read_text,
)
from vla_ros.util.params import node_section

#: executor parameters a sweep may change (the rest are wiring, safety or diagnostics)
TUNABLE = (
    "control_rate_hz",
    "mode",
    "ensemble_coefficient",
    "blend_steps",
    "time_offset_s",
    "max_chunk_age_s",
    "max_chunks",
    "speed_scale",
)
OBJECTIVES = ("balanced", "tracking", "smoothness")
MAX_CANDIDATES = 1000

#: the sweep when none is given: each mode with its own knob
DEFAULT_CANDIDATES: tuple[dict[str, Any], ...] = (
    *({"mode": "temporal_ensemble", "ensemble_coefficient": m} for m in (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)),
    {"mode": "latest"},
    *({"mode": "blend", "blend_steps": k} for k in (3, 5, 10, 20)),
)


class TuneError(VlaRosError, ValueError):
    """A sweep cannot be set up; the message names the parameter or value and the fix."""


def check_candidate(candidate: Mapping[str, Any]) -> dict[str, Any]:
    """``candidate`` validated against the executor's specs (coerced values), or :class:`TuneError`."""
    out = {}
    for key, value in candidate.items():
        if key not in TUNABLE:
            why = (
                "safety limits come from the robot (URDF or parameters) and are not fitted to a recording"
                if ep.is_limit_param(key)
                else "it does not change the commands"
                if key in ep.SPEC_BY_NAME
                else "it is not an executor parameter"
            )
            raise TuneError(f"cannot tune {key!r}: {why}; tunable: {list(TUNABLE)}")
        try:
            out[key] = ep.SPEC_BY_NAME[key].coerce(value)
        except ValueError as exc:
            raise TuneError(f"candidate value: {exc}") from None
    return out


def parse_grid(items: Sequence[str]) -> list[dict[str, Any]]:
    """``['mode=latest,blend', 'blend_steps=3,10']`` -> the cartesian product as candidate dicts.

    Values are YAML scalars separated by commas. Raises :class:`TuneError` for a malformed item,
    an untunable key, a bad value, or more than :data:`MAX_CANDIDATES` candidates.
    """
    axes: list[tuple[str, list[Any]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise TuneError(
                f"--grid {item!r} is not key=v1,v2,... (e.g. --grid ensemble_coefficient=0,0.01,0.1)"
            )
        if any(k == key for k, _ in axes):
            raise TuneError(f"--grid {key!r} is given twice; list all its values in one --grid")
        try:
            axes.append((key, [yaml.safe_load(v.strip()) for v in values.split(",")]))
        except yaml.YAMLError as exc:
            raise TuneError(f"--grid {item!r}: a value is not valid YAML ({exc})") from None
    total = math.prod(len(v) for _, v in axes) if axes else 0
    if total > MAX_CANDIDATES:
        raise TuneError(f"the grid has {total} candidates (more than {MAX_CANDIDATES}); use fewer values")
    keys = [k for k, _ in axes]
    return [
        check_candidate(dict(zip(keys, combo, strict=True)))
        for combo in itertools.product(*(v for _, v in axes))
    ]


def score(
    metrics: Mapping[str, Any], baseline: Mapping[str, Any], objective: str, smooth_weight: float
) -> float:
    """Lower is better. ``tracking``: command RMS error; ``smoothness``: command jerk RMS;
    ``balanced``: both relative to the baseline (the YAML's own settings), ``rmse/rmse0 + w * jerk/jerk0``,
    so the baseline scores ``1 + w``. NaN figures (nothing compared) score +inf."""
    if objective not in OBJECTIVES:
        raise TuneError(f"objective {objective!r} is not one of {list(OBJECTIVES)}")
    rmse, jerk = metrics["commands"]["rmse"], metrics["commands"]["jerk_rms"]
    if objective == "tracking":
        value = rmse
    elif objective == "smoothness":
        value = jerk
    else:
        r0, j0 = baseline["commands"]["rmse"], baseline["commands"]["jerk_rms"]
        value = rmse / r0 + smooth_weight * jerk / j0 if r0 > 0 and j0 > 0 else math.nan
    return float(value) if math.isfinite(value) else math.inf


def _yaml_value(value: Any) -> str:
    """A parameter value as one line of YAML (flow style for lists)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def update_params_text(text: str, node: str, values: Mapping[str, Any], namespace: str = "/") -> str:
    """``text`` (a parameter YAML) with ``values`` where node ``<namespace>/<node>`` reads them.

    A key already in a block-style section that rcl applies to the node is replaced in place (its
    trailing comment stays); a missing key is added under the first such section's
    ``ros__parameters:``. Sections of other nodes and namespaces are never touched. Whatever
    still does not reach the node (no applicable section; a flow-style or namespace-nested one
    that sets the key later in rcl's order) goes into a new section appended at the end, keyed
    ``/**/<node>`` in the root namespace and ``<namespace>/<node>`` otherwise, under a key the
    file does not use yet, so that rcl applies it last.
    """
    fqn = fully_qualified_name(node, namespace)
    lines = text.splitlines()
    blocks: list[tuple[int, int]] = []  # (ros__parameters line, end) per section that applies
    i = 0
    while i < len(lines):
        m = re.match(r"^(\S[^#]*?):\s*(#.*)?$", lines[i])
        key = m.group(1).strip().strip("'\"") if m else ""
        if m and not key_problem(key) and key_matches(key, fqn):
            end = i + 1  # the section runs to the next top-level line
            while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
                end += 1
            params = [j for j in range(i + 1, end) if re.match(r"^\s+ros__parameters:\s*(#.*)?$", lines[j])]
            if params:  # block style; a flow-style section is left alone (a new section follows)
                blocks.append((params[0], end))
            i = end
        else:
            i += 1
    missing = dict(values)
    for start, end in blocks:
        for k in range(start + 1, min(end, len(lines))):
            m = re.match(r"^(\s+)([A-Za-z_][\w]*):(\s*)([^#]*?)(\s*#.*)?$", lines[k])
            if m and m.group(2) in values:
                indent, key, _, _, comment = m.groups()
                lines[k] = f"{indent}{key}: {_yaml_value(values[key])}{comment or ''}"
                missing.pop(key, None)
    if missing and blocks:
        start, end = blocks[0]
        indent = "    "
        for k in range(start + 1, min(end, len(lines))):
            m = re.match(r"^(\s+)\S", lines[k])
            if m and not lines[k].lstrip().startswith("#"):
                indent = m.group(1)
                break
        lines[start + 1 : start + 1] = [f"{indent}{k}: {_yaml_value(v)}" for k, v in missing.items()]
    out = "\n".join(lines) + "\n" if lines else ""
    late = _not_reaching(out, fqn, values)
    if not late:
        return out
    body = "".join(f"    {k}: {_yaml_value(v)}\n" for k, v in late.items())
    sep = "" if not out or out.endswith("\n") else "\n"
    preferred = f"/**/{node}" if fqn == f"/{node}" else fqn
    for key in dict.fromkeys((preferred, fqn, fqn[1:], f"/**{fqn}")):
        # rcl merges a repeated key into its first place: keep the first key that still wins
        candidate = f"{out}{sep}\n{key}:\n  ros__parameters:\n{body}"
        if not _not_reaching(candidate, fqn, values):
            return candidate
    raise TuneError(f"cannot place {sorted(late)} where {fqn} reads them; edit the YAML by hand")


def _not_reaching(text: str, fqn: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``values`` that node ``fqn`` would not get from ``text``."""
    got = merged_params([ParamsFile("", parse_sections(text, "the rewritten YAML"))], fqn)
    return {k: v for k, v in values.items() if k not in got or got[k] != v}


def write_tuned(
    source: str | None, out: str, values: Mapping[str, Any], header: str, namespace: str = "/"
) -> None:
    """Write ``source`` (a parameter YAML, or nothing) with ``values`` where ``<namespace>/executor_node``
    reads them (:func:`update_params_text`).

    The result is re-read and checked: the node gets the new values, every section that does not
    apply to it is unchanged. Raises :class:`TuneError` (or ``ParamsFileError`` for an
    unreadable ``source``).
    """
    from pathlib import Path

    text = read_text(source) if source else ""
    new = update_params_text(text, "executor_node", values, namespace)
    new = "".join(f"# {line}\n" for line in header.splitlines()) + new
    final = Path(out)
    out = str(final.with_name(final.name + ".tmp"))  # checked first, renamed only when right
    Path(out).write_text(new)
    fqn = fully_qualified_name("executor_node", namespace)
    got = node_section(out, "executor_node", namespace)
    wrong = {k: got.get(k) for k, v in values.items() if got.get(k) != v}
    if wrong:
        raise TuneError(
            f"writing {out!r}: the tuned values did not land as expected ({wrong}); please report this"
        )
    if source:
        before, after = read_params(source), read_params(out)
        after_by_key = {s.key: s.params for s in after.sections}
        for section in before.sections:
            if not section.matches(fqn) and section.params != after_by_key.get(section.key):
                raise TuneError(
                    f"writing {out!r}: section {section.key!r} changed unexpectedly; please report this"
                )
    os.replace(out, final)
