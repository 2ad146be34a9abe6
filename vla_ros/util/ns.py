"""Integer-nanosecond time: the one timebase of vla_ros (see DESIGN.md, "the one timebase").

Message stamps (``builtin_interfaces/Time``) and durations (``builtin_interfaces/Duration``) both
carry ``sec`` and ``nanosec``; parameters are given in seconds. Everything internal is ``int`` ns.
"""

from __future__ import annotations

import math
from typing import Any

NS_PER_S = 1_000_000_000


def stamp_to_ns(sec: int, nanosec: int) -> int:
    """``builtin_interfaces/Time`` (or ``Duration``) fields -> integer nanoseconds."""
    return int(sec) * NS_PER_S + int(nanosec)


def msg_to_ns(stamp: Any) -> int:
    """A ``Time`` or ``Duration`` message (anything with ``sec`` and ``nanosec``) -> nanoseconds."""
    return stamp_to_ns(stamp.sec, stamp.nanosec)


def ns_to_stamp(ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> ``(sec, nanosec)`` with ``0 <= nanosec < 1e9`` (message fields)."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return sec, nanosec


def seconds_to_ns(seconds: float) -> int:
    """Seconds (a parameter value) -> integer nanoseconds, rounded to the nearest.

    Raises ValueError for NaN or infinite seconds (there is no such duration in nanoseconds).
    """
    value = float(seconds)
    if not math.isfinite(value):
        raise ValueError(f"seconds_to_ns: {seconds!r} is not a finite number of seconds; give a finite value")
    return round(value * NS_PER_S)
