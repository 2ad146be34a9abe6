"""When the policy worker runs an inference: the worker thread's loop, without ROS.

Three triggers (``policy_node`` parameters ``inference_trigger`` and ``rate_hz``):

* ``horizon``: poll every :data:`HORIZON_POLL_S` (and at once on new data) whether the executor's
  remaining horizon is short (:meth:`PolicyStep.horizon_due`);
* ``rate_hz`` > 0: on the deadlines of a :class:`~vla_ros.util.ticker.Ticker` (its overrun rule:
  skip, count, run at once); a live rate change applies from the next deadline;
* ``rate_hz`` 0: at once on new data, and every :data:`IDLE_RECHECK_S` without data (staleness
  is re-checked, so a silent input still reports its fault).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from vla_ros.util.ticker import Ticker

#: inference_trigger horizon: how often the worker checks the executor's remaining horizon, s
HORIZON_POLL_S = 0.005
#: rate_hz 0: the longest wait for new data before the step runs anyway, s
IDLE_RECHECK_S = 0.1


def run_worker(
    step: Callable[[], object],
    stop: threading.Event,
    wake: threading.Event,
    *,
    period_s: Callable[[], float],
    horizon_due: Callable[[], bool] | None = None,
    on_error: Callable[[Exception], object],
    clock: Callable[[], int] = time.monotonic_ns,
) -> None:
    """Run ``step()`` whenever it is due until ``stop`` is set (the worker thread's body).

    Args:
        step: one inference attempt (publishes or reports why not).
        stop: ends the loop (also interrupts a wait for the next deadline).
        wake: set by callbacks on new data.
        period_s: the current ``1 / rate_hz`` (0: run on new data), read every round.
        horizon_due: the ``horizon`` trigger (None: the rate trigger).
        on_error: receives an exception from ``step()``; the loop goes on (it never dies).
        clock: steady ns for the rate trigger's deadlines.
    """
    ticker: Ticker | None = None
    while not stop.is_set():
        if horizon_due is not None:
            wake.wait(HORIZON_POLL_S)
            wake.clear()
            if stop.is_set():
                break
            if not horizon_due():
                continue
        elif (period := period_s()) > 0:
            period_ns = round(period * 1e9)
            if ticker is None:
                ticker = Ticker(period_ns, first_ns=clock() + period_ns)
            ticker.period_ns = period_ns  # a live rate_hz change
            delay = ticker.delay_ns(clock())
            if delay > 0 and stop.wait(delay * 1e-9):
                break
        else:
            wake.wait(IDLE_RECHECK_S)
            wake.clear()
            ticker = None
        if stop.is_set():
            break
        try:
            step()
        except Exception as exc:
            on_error(exc)
        if ticker is not None:  # an overrun skips the missed ticks and runs at once, never bursts
            ticker.advance(clock())
