"""One fixed-period deadline schedule on integer nanoseconds, for every loop that ticks.

The executor node's control thread, the policy node's inference-rate worker and eval's
emulation of both (a replay in bag time, the simulated arm's loop) tick on the same schedule:
deadlines every ``period_ns`` from ``first_ns``, absolute (sleeping late never accumulates
drift while the loop keeps up).

The one overrun rule: **skip, count, run at once**. When a tick's work ends after the next
deadline has passed, the missed deadlines are skipped, never run back to back in a burst (a
burst of control ticks would send stale commands at once; a burst of inferences would queue
stale chunks), :attr:`Ticker.missed` counts them, and the next tick runs at once: the grid
restarts from the moment the work ended. A loop that fell behind acts on the newest data as
soon as it can, instead of idling until the old grid's next point.

Pure Python: the caller reads its own clock (``time.monotonic_ns`` on a robot, bag time in a
replay) and sleeps its own way; the schedule only does the integer arithmetic.
:func:`run_periodic` is the loop a real-time thread runs on it (sleep, tick, advance).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator


def _period(period_ns: int) -> int:
    if isinstance(period_ns, bool) or not isinstance(period_ns, int) or period_ns < 1:
        raise ValueError(
            f"ticker period_ns must be an integer number of nanoseconds >= 1, got {period_ns!r}; "
            "convert a rate with round(1e9 / rate_hz)"
        )
    return period_ns


class Ticker:
    """Deadlines every ``period_ns`` from ``first_ns``; an overrun skips the missed deadlines,
    counts them and runs the next tick at once (the grid restarts there).

    Args:
        period_ns: the tick period, integer ns >= 1 (``round(1e9 / rate_hz)``).
        first_ns: the first deadline, ns on the caller's clock.

    Use: wait :meth:`delay_ns` (``<= 0``: due now), do the tick's work, then call
    :meth:`advance` with the time the work ended.

    Raises:
        ValueError: a period that is not an integer >= 1 (names the value and the fix).
    """

    def __init__(self, period_ns: int, first_ns: int) -> None:
        self._period_ns = _period(period_ns)
        self.deadline_ns = int(first_ns)
        #: deadlines skipped because a tick's work ended after them (the overrun count)
        self.missed = 0

    @property
    def period_ns(self) -> int:
        """The tick period, ns. Setting it (a live rate change) applies from the next
        :meth:`advance`; the deadline already scheduled is kept."""
        return self._period_ns

    @period_ns.setter
    def period_ns(self, value: int) -> None:
        self._period_ns = _period(value)

    def delay_ns(self, now_ns: int) -> int:
        """Nanoseconds from ``now_ns`` to the next deadline (``<= 0``: the tick is due)."""
        return self.deadline_ns - int(now_ns)

    def advance(self, now_ns: int) -> int:
        """Schedule the next deadline after a tick whose work ended at ``now_ns``.

        On time (``now_ns`` not past the next deadline) the deadline moves one period. Late,
        the deadlines up to ``now_ns`` are skipped (``(now_ns - next) // period_ns + 1`` of
        them, counted in :attr:`missed`) and the next deadline is ``now_ns``: the next tick runs
        at once and the grid restarts from it. A tick ending exactly on the next deadline is on
        time (it runs at once, on the grid).

        Returns:
            The number of deadlines skipped by this call (0 when on time).
        """
        self.deadline_ns += self._period_ns
        now_ns = int(now_ns)
        late = now_ns - self.deadline_ns
        if late <= 0:
            return 0
        skipped = late // self._period_ns + 1
        self.deadline_ns = now_ns
        self.missed += skipped
        return skipped

    def restart(self, first_ns: int) -> None:
        """Put the next deadline at ``first_ns`` (a new grid; :attr:`missed` is kept): for a
        loop that was not ticking (waiting on data, or the rate was 0) and starts again."""
        self.deadline_ns = int(first_ns)

    def ticks(self, end_ns: int) -> Iterator[int]:
        """The deadlines before ``end_ns`` when every tick's work takes no time (a simulated or
        replayed loop in its own time): ``first_ns, first_ns + period_ns, ...``. Each one is
        advanced past as it is yielded, so a live period change applies from the next tick."""
        while self.deadline_ns < end_ns:
            t = self.deadline_ns
            yield t
            self.advance(t)


def run_periodic(
    ticker: Ticker,
    tick: Callable[[], object],
    stop: threading.Event,
    *,
    on_error: Callable[[Exception], object],
    clock: Callable[[], int] = time.monotonic_ns,
    sleep: Callable[[float], object] = time.sleep,
) -> None:
    """Run ``tick()`` on ``ticker``'s deadlines until ``stop`` is set (a loop thread's body).

    Each round sleeps until the deadline (``sleep`` seconds; :func:`time.sleep` by default, it
    wakes more precisely than ``Event.wait``), runs ``tick()``, then advances the ticker with the
    time the work ended: an overrun skips, counts (:attr:`Ticker.missed`) and runs at once. An
    exception from ``tick()`` goes to ``on_error`` and the loop goes on (a loop thread must never
    die silently). ``clock`` reads ns on the ticker's clock (the steady clock by default).
    """
    while not stop.is_set():
        delay = ticker.delay_ns(clock())
        if delay > 0:
            sleep(delay * 1e-9)
            if stop.is_set():
                break
        try:
            tick()
        except Exception as exc:
            on_error(exc)
        ticker.advance(clock())
