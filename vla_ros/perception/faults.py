"""Log-once bookkeeping for input faults: one line when a cause appears, one when it clears."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Fault:
    """One active cause: its latest message and how many times it occurred."""

    message: str
    count: int = 1


class FaultLog:
    """Tracks active fault causes so that a node logs each cause once instead of per message.

    ``raise_(cause, message)`` returns ``True`` only when ``cause`` was not already active (the
    caller logs then); ``clear(cause)`` returns ``True`` only when it was active. ``totals``
    counts every occurrence per cause, active or not, for diagnostics. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, Fault] = {}
        self.totals: dict[str, int] = {}

    def raise_(self, cause: str, message: str) -> bool:
        """Record one occurrence of ``cause``; True if it just became active."""
        with self._lock:
            self.totals[cause] = self.totals.get(cause, 0) + 1
            fault = self._active.get(cause)
            if fault is None:
                self._active[cause] = Fault(message)
                return True
            fault.message = message
            fault.count += 1
            return False

    def clear(self, cause: str) -> bool:
        """Mark ``cause`` as resolved; True if it was active."""
        with self._lock:
            return self._active.pop(cause, None) is not None

    def clear_except(self, prefix: str, keep: Iterable[str] = ()) -> list[str]:
        """Clear every active cause starting with ``prefix`` except those in ``keep``.

        Returns the cleared causes (callers log "recovered" once for each).
        """
        keep = set(keep)
        with self._lock:
            gone = [c for c in self._active if c.startswith(prefix) and c not in keep]
            for cause in gone:
                del self._active[cause]
        return gone

    def active(self) -> dict[str, Fault]:
        """Snapshot of the active causes."""
        with self._lock:
            return {k: Fault(v.message, v.count) for k, v in self._active.items()}

    def total(self, prefix: str = "") -> int:
        """Occurrences of all causes starting with ``prefix``."""
        with self._lock:
            return sum(n for c, n in self.totals.items() if c.startswith(prefix))
