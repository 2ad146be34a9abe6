"""Once-per-cause reporting of faults, so a node logs one clear line per cause, not one per tick."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class FaultLog:
    """Deduplicates fault reports by cause key.

    The first report of a cause is returned for logging; repeats within ``repeat_interval_ns``
    are only counted; after the interval one summary line (with the repeat count) is returned.

    Args:
        repeat_interval_ns: minimum time between two log lines of the same cause (on the
            clock of the ``now_ns`` passed in; a monotonic clock is best).
    """

    repeat_interval_ns: int = 60_000_000_000
    counts: Counter = field(default_factory=Counter)
    _last_logged: dict[str, int] = field(default_factory=dict)
    _suppressed: Counter = field(default_factory=Counter)

    def report(self, cause: str, message: str, now_ns: int) -> str | None:
        """Count one occurrence of ``cause``; return the line to log now, or None to stay quiet."""
        self.counts[cause] += 1
        last = self._last_logged.get(cause)
        if last is not None and now_ns - last < self.repeat_interval_ns:
            self._suppressed[cause] += 1
            return None
        self._last_logged[cause] = now_ns
        extra = self._suppressed.pop(cause, 0)
        if extra:
            return f"{message} (repeated {extra} more times)"
        return message

    def total(self) -> int:
        """All occurrences of all causes."""
        return sum(self.counts.values())
