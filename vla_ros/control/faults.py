"""Once-per-cause reporting of faults, so a node logs one clear line per cause, not one per tick."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class FaultLog:
    """Deduplicates fault reports by cause key.

    The first report of a cause is returned for logging; repeats within ``repeat_interval_ns``
    are only counted; after the interval one summary line (with the repeat count) is returned.
    A cause that went away (see :meth:`settle`) for at least ``recur_after_ns`` and then comes
    back is a new occurrence and is logged at once: a policy that dies an hour after start-up
    is reported even if the same cause was logged at start-up.

    Args:
        repeat_interval_ns: minimum time between two log lines of the same cause (on the
            clock of the ``now_ns`` passed in; a monotonic clock is best).
        recur_after_ns: how long a cause must stay absent before its return is logged anew.
    """

    repeat_interval_ns: int = 60_000_000_000
    recur_after_ns: int = 1_000_000_000
    counts: Counter = field(default_factory=Counter)
    _last_logged: dict[str, int] = field(default_factory=dict)
    _suppressed: Counter = field(default_factory=Counter)
    _absent_since: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def settle(self, active: set[str], now_ns: int) -> None:
        """Note which logged causes are absent now (call once per control tick with its faults)."""
        with self._lock:
            for cause in self._last_logged:
                if cause in active:
                    self._absent_since.pop(cause, None)
                else:
                    self._absent_since.setdefault(cause, now_ns)

    def report(self, cause: str, message: str, now_ns: int) -> str | None:
        """Count one occurrence of ``cause``; return the line to log now, or None to stay quiet.

        Thread-safe: callbacks and the control thread report concurrently.
        """
        with self._lock:
            return self._report(cause, message, now_ns)

    def _report(self, cause: str, message: str, now_ns: int) -> str | None:
        self.counts[cause] += 1
        absent = self._absent_since.pop(cause, None)
        if absent is not None and now_ns - absent >= self.recur_after_ns:
            self._last_logged.pop(cause, None)  # it went away and came back: a new occurrence
            self._suppressed.pop(cause, None)
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
        with self._lock:
            return sum(self.counts.values())

    def snapshot(self) -> dict[str, int]:
        """A copy of the per-cause counts, safe to read while other threads report."""
        with self._lock:
            return dict(self.counts)
