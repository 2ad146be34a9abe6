"""Judging a header stamp against a node clock: unstamped messages and clocks that disagree.

The policy node's observation assembler and the executor's joint-state tracker both use these, so
the same lie gets the same diagnosis everywhere (nodes, ``vla-ros eval``).

Two kinds of input lie about time:

- **unstamped**: ``header.stamp`` is 0 (the driver never sets it). Judged only once the node
  clock reads more than :data:`CLOCK_SKEW_NS`: a simulation clock starting at 0 may legitimately
  stamp 0 at its first instant.
- **another clock**: the stamp is more than :data:`CLOCK_SKEW_NS` away from the node clock
  (ahead or behind). No publisher is that slow: the publisher and the node read different clocks
  (one on ``use_sim_time``, a stopped or restarted ``/clock``, unsynchronised machines).

All times are integer nanoseconds.
"""

from __future__ import annotations

import datetime as _dt

NS_PER_S = 1_000_000_000
#: a stamp further than this from the node clock comes from another clock, not a slow publisher
#: (our choice: 10 s is beyond any staleness limit or transport delay a policy would accept)
CLOCK_SKEW_NS = 10 * NS_PER_S
#: 2001-09-09T01:46:40Z, 1e9 s after the Unix epoch: an earlier time is not wall-clock time but a
#: simulation/bag clock or time since boot
WALL_CLOCK_MIN_NS = 1_000_000_000 * NS_PER_S


def is_unstamped(stamp_ns: int, now_ns: int) -> bool:
    """Whether a stamp of ``stamp_ns`` at node time ``now_ns`` means "the driver does not stamp"."""
    return int(stamp_ns) == 0 and int(now_ns) > CLOCK_SKEW_NS


def is_other_clock(stamp_ns: int, now_ns: int) -> bool:
    """Whether ``stamp_ns`` is more than :data:`CLOCK_SKEW_NS` away from ``now_ns`` (either way)."""
    return abs(int(now_ns) - int(stamp_ns)) > CLOCK_SKEW_NS


def describe_time(ns: int) -> str:
    """``ns`` as a reader recognises it: a UTC date for wall-clock time, else seconds.

    >>> describe_time(12_500_000_000)
    '12.5 s (a simulation/bag clock or time since boot)'
    """
    if ns >= WALL_CLOCK_MIN_NS:
        when = _dt.datetime.fromtimestamp(ns / NS_PER_S, tz=_dt.timezone.utc)
        return f"wall-clock time ({when:%Y-%m-%d %H:%M:%S} UTC)"
    return f"{ns / NS_PER_S:.1f} s (a simulation/bag clock or time since boot)"


def describe_offset(stamp_ns: int, now_ns: int, clock: str = "") -> str:
    """Where ``stamp_ns`` lies from ``now_ns``: ``"3600.0 s behind"`` / ``"2.5 s ahead"``, or with
    ``clock`` named ``"3600.0 s behind the node clock"`` / ``"2.5 s ahead of the node clock"``."""
    age = int(now_ns) - int(stamp_ns)
    where = "behind" if age >= 0 else "ahead of" if clock else "ahead"
    return f"{abs(age) / NS_PER_S:.1f} s {where}" + (f" {clock}" if clock else "")


def clock_advice(stamp_ns: int, now_ns: int) -> str:
    """Which clocks disagree and what to do, for a stamp far from the node clock.

    The two readings are classified as wall-clock or not (:data:`WALL_CLOCK_MIN_NS`); the advice
    names ``use_sim_time``, ``/clock`` and the publisher's clock accordingly.
    """
    stamp_wall, now_wall = stamp_ns >= WALL_CLOCK_MIN_NS, now_ns >= WALL_CLOCK_MIN_NS
    head = f"the stamps read {describe_time(stamp_ns)}, the node clock {describe_time(now_ns)}"
    if stamp_wall and not now_wall:
        fix = (
            "this node runs on sim time (use_sim_time true, time from /clock) while the publisher "
            "stamps wall-clock time: set use_sim_time the same on every node, or check that the "
            "/clock publisher (simulator, `ros2 bag play --clock`) is the one the publisher uses"
        )
    elif now_wall and not stamp_wall:
        fix = (
            "the publisher stamps sim time or time since boot while this node runs on wall-clock "
            "time: if a simulator or bag publishes /clock, set use_sim_time:=true on this node; "
            "otherwise make the driver stamp with the ROS clock (now())"
        )
    elif stamp_wall:
        fix = (
            "both are wall-clock times that differ: synchronise the machines' clocks "
            "(chrony/PTP) or fix the driver's clock"
        )
    else:
        fix = (
            "both are simulation clocks that differ: a restarted simulator or bag, a /clock that "
            "stopped, or two /clock publishers"
        )
    return f"{head}; {fix}"
