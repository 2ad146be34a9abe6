"""Once-per-cause fault reporting: one log line when a cause appears, not one per message or tick.

A *cause* is a stable string key (``"no_live_chunk"``, ``"input:camera:wrist:stale"``, ...). Each
report of a cause is one *occurrence*; a cause is *active* from its first occurrence until it is
cleared (:meth:`FaultLog.clear`, :meth:`FaultLog.clear_except`, or :meth:`FaultLog.settle` with
the causes present this tick). Rules, identical for every node:

* the first occurrence of a cause is logged;
* further occurrences while it is active are counted; with ``repeat_interval_ns`` set, one summary
  line ("... (repeated N more times)") is logged at most once per interval, otherwise never;
* a cause that clears and comes back is logged again, unless it was gone for less than
  ``recur_after_ns`` (a flap: it continues the same episode);
* with ``settle_ns`` set, a cause (of those starting with one of ``settle_prefixes``) only clears
  once its last occurrence is ``settle_ns`` old: a clear asked for earlier is ignored, so a source
  alternating good and bad messages stays in one episode (one line when it starts, one
  "recovered" line when it has been good for ``settle_ns``), never two lines per message;
* every occurrence is counted per cause for diagnostics (:meth:`snapshot`, :meth:`total`).

All methods are thread-safe: subscription callbacks and a control thread report concurrently.
Times are integer nanoseconds of one monotonic clock (``time.monotonic_ns`` when not given).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """A fault: its readable ``message``, stable ``cause`` key and occurrences in this episode.

    Producers (the controller, a policy step) create ``Fault(message, cause=...)``; a
    :class:`FaultLog` hands out snapshots of its active causes with ``count`` filled in.
    """

    message: str
    cause: str = ""
    count: int = 1


class FaultLog:
    """Deduplicates fault reports by cause; see the module docstring for the rules.

    Args:
        repeat_interval_ns: minimum time between two log lines of one still-active cause; None
            (the default) logs an active cause only once.
        recur_after_ns: how long a cleared cause must stay away before its return is logged anew
            (0: any return is logged).
        settle_ns: how long after its last occurrence a cause may clear (0: at once); the
            episode of a flapping cause ends only after ``settle_ns`` without it.
        settle_prefixes: the causes ``settle_ns`` applies to (default: all).
    """

    def __init__(
        self,
        repeat_interval_ns: int | None = None,
        recur_after_ns: int = 0,
        settle_ns: int = 0,
        settle_prefixes: tuple[str, ...] = ("",),
    ) -> None:
        if repeat_interval_ns is not None and repeat_interval_ns < 0:
            raise ValueError(f"repeat_interval_ns must be >= 0 or None, got {repeat_interval_ns}")
        if recur_after_ns < 0:
            raise ValueError(f"recur_after_ns must be >= 0, got {recur_after_ns}")
        self.repeat_interval_ns = repeat_interval_ns
        if settle_ns < 0:
            raise ValueError(f"settle_ns must be >= 0, got {settle_ns}")
        self.recur_after_ns = int(recur_after_ns)
        self.settle_ns = int(settle_ns)
        self.settle_prefixes = tuple(settle_prefixes)
        self._last_seen: dict[str, int] = {}  # cause -> time of its latest occurrence
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._active: dict[str, Fault] = {}
        self._cleared_at: dict[str, int] = {}  # cause -> when it cleared (while it stays away)
        self._last_logged: dict[str, int] = {}
        self._suppressed: Counter[str] = Counter()

    # ------------------------------------------------------------------ occurrences
    def report(self, cause: str, message: str, now_ns: int | None = None) -> str | None:
        """Count one occurrence of ``cause``; return the line to log now, or None to stay quiet."""
        now = time.monotonic_ns() if now_ns is None else int(now_ns)
        with self._lock:
            self._counts[cause] += 1
            self._last_seen[cause] = now
            cleared = self._cleared_at.pop(cause, None)
            fault = self._active.get(cause)
            if fault is None and (cleared is None or now - cleared >= self.recur_after_ns):
                # a new episode (first ever, or back after being away long enough)
                self._active[cause] = Fault(message, cause)
                self._last_logged[cause] = now
                self._suppressed.pop(cause, None)
                return message
            count = 1 if fault is None else fault.count + 1
            self._active[cause] = Fault(message, cause, count)
            last = self._last_logged.get(cause, now)
            if self.repeat_interval_ns is None or now - last < self.repeat_interval_ns:
                self._suppressed[cause] += 1
                return None
            self._last_logged[cause] = now
            extra = self._suppressed.pop(cause, 0)
            return f"{message} (repeated {extra} more times)" if extra else message

    def raise_(self, cause: str, message: str, now_ns: int | None = None) -> bool:
        """Record one occurrence of ``cause``; True when the caller should log ``message``."""
        return self.report(cause, message, now_ns) is not None

    # ------------------------------------------------------------------ clearing
    def clear(self, cause: str, now_ns: int | None = None) -> bool:
        """Mark ``cause`` as resolved; True if it cleared now (the caller logs "recovered").

        False when it was not active, or is still settling (see ``settle_ns``).
        """
        now = time.monotonic_ns() if now_ns is None else int(now_ns)
        with self._lock:
            return self._clear(cause, now)

    def clear_except(self, prefix: str, keep: Iterable[str] = (), now_ns: int | None = None) -> list[str]:
        """Clear every active cause starting with ``prefix`` except those in ``keep``.

        Returns the causes that cleared now (callers log "recovered" once for each); causes still
        settling stay active and are not returned.
        """
        keep = set(keep)
        now = time.monotonic_ns() if now_ns is None else int(now_ns)
        with self._lock:
            candidates = [c for c in self._active if c.startswith(prefix) and c not in keep]
            return [cause for cause in candidates if self._clear(cause, now)]

    def settle(self, present: Iterable[str], now_ns: int | None = None) -> list[str]:
        """Clear every active cause not in ``present`` (call once per control tick with its faults).

        Returns the causes that cleared now.
        """
        return self.clear_except("", keep=present, now_ns=now_ns)

    def _clear(self, cause: str, now: int) -> bool:
        if cause not in self._active:
            return False
        settling = self.settle_ns and cause.startswith(self.settle_prefixes)
        if settling and now - self._last_seen.get(cause, now) < self.settle_ns:
            return False  # still settling: the episode goes on
        del self._active[cause]
        self._cleared_at[cause] = now
        return True

    # ------------------------------------------------------------------ reading
    def active(self) -> dict[str, Fault]:
        """Snapshot of the active causes (message = the latest, count = occurrences this episode)."""
        with self._lock:
            return dict(self._active)

    def total(self, prefix: str = "") -> int:
        """Occurrences of all causes starting with ``prefix``, active or not."""
        with self._lock:
            return sum(n for c, n in self._counts.items() if c.startswith(prefix))

    def snapshot(self) -> dict[str, int]:
        """A copy of the per-cause occurrence counts, safe to read while other threads report."""
        with self._lock:
            return dict(self._counts)

    @property
    def counts(self) -> dict[str, int]:
        """Per-cause occurrence counts (a copy; same as :meth:`snapshot`)."""
        return self.snapshot()

    @property
    def totals(self) -> dict[str, int]:
        """Per-cause occurrence counts (a copy; same as :meth:`snapshot`)."""
        return self.snapshot()
