"""Matching the executor's ``joint_names`` against a URDF's joints, and saying why they differ."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

MOVABLE = ("revolute", "continuous", "prismatic")
#: at most this many URDF joint names are listed in a message
LIST_MAX = 24


def describe_unmatched(joint_names: Sequence[str], urdf: Mapping[str, Any]) -> str | None:
    """Name the ``joint_names`` the URDF lacks, and the URDF's movable joints; None if all match.

    ``urdf`` is a :class:`~vla_ros.control.urdf.UrdfLimits` (or any mapping keyed by the movable
    joints). The message ends with a hint: a prefix one side carries (a tf_prefix or xacro
    ``prefix`` argument such as ``left_``), else the closest spellings (difflib).
    """
    types: Mapping[str, str] = getattr(urdf, "joint_types", None) or dict.fromkeys(urdf, "revolute")
    absent = [n for n in joint_names if n not in types]
    if not absent:
        return None
    movable = [n for n, t in types.items() if t in MOVABLE]
    robot = getattr(urdf, "robot", "")
    more = [f"... ({len(movable) - LIST_MAX} more)"] if len(movable) > LIST_MAX else []
    shown = movable[:LIST_MAX] + more
    return (
        f"joint_names {absent} are not in the URDF <robot name={robot!r}>, whose movable joints are "
        f"{shown}; {_hint(absent, movable)}"
    )


def _shared_prefixes(names: Sequence[str], others: Sequence[str], *, theirs: bool) -> list[str]:
    """Prefixes ``p`` shared by every name: ``p + name`` in ``others`` (``theirs``), else
    ``name == p + other`` for some other."""
    if theirs:
        sets = [{o[: -len(n)] for o in others if o.endswith(n) and o != n} for n in names]
    else:
        sets = [{n[: -len(o)] for o in others if n.endswith(o) and o != n} for n in names]
    return sorted(set.intersection(*sets)) if sets and all(sets) else []


def _hint(absent: list[str], movable: list[str]) -> str:
    prefixes = _shared_prefixes(absent, movable, theirs=True)
    if len(prefixes) == 1:
        p = prefixes[0]
        return (
            f"the URDF's names carry the prefix {p!r} (a tf_prefix or xacro prefix argument?): set "
            f"joint_names to {[p + n for n in absent]}"
        )
    if prefixes:
        return (
            f"the URDF has these joints under the prefixes {prefixes} (one executor per arm?): set "
            f"joint_names to one arm's, e.g. {[prefixes[0] + n for n in absent]}"
        )
    common = _shared_prefixes(absent, movable, theirs=False)
    if len(common) == 1:
        p = common[0]
        return (
            f"joint_names carry the prefix {p!r} that the URDF's names lack: expand the xacro with "
            f"that prefix, or set joint_names to {[n[len(p) :] for n in absent]}"
        )
    lower = {m.lower(): m for m in movable}
    guesses = []
    for n in absent:
        close = difflib.get_close_matches(n, movable, n=1, cutoff=0.6)
        match = lower.get(n.lower()) or (close[0] if close else None)
        if match is not None:
            guesses.append(f"{n!r} -> {match!r}")
    if guesses:
        return f"did you mean {', '.join(guesses)}? Fix joint_names (or the URDF)"
    return "check joint_names against the URDF (a tf_prefix?), or give the limits as parameters"
