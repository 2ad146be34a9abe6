"""Checks on name lists (e.g. the joint names of a ``sensor_msgs/JointState``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def repeated_names(names: Sequence[str]) -> list[str]:
    """The names that occur more than once in ``names``, sorted; ``[]`` when each occurs once."""
    return sorted(n for n, count in Counter(names).items() if count > 1)
