"""vla_ros.policy.worker.run_worker: which trigger runs the step, errors never end the loop."""

from __future__ import annotations

import threading

from vla_ros.policy.worker import run_worker


def _counting_step(stop: threading.Event, n: int, raise_on: int = 0):
    calls: list[int] = []

    def step() -> None:
        calls.append(len(calls) + 1)
        if len(calls) >= n:
            stop.set()
        if len(calls) == raise_on:
            raise RuntimeError("inference failed")

    return step, calls


def test_the_horizon_trigger_runs_the_step_only_when_the_horizon_is_due():
    stop, wake = threading.Event(), threading.Event()
    answers = iter([False, False, True])
    asked: list[bool] = []

    def due() -> bool:
        asked.append(next(answers))
        return asked[-1]

    step, calls = _counting_step(stop, 1)
    run_worker(step, stop, wake, period_s=lambda: 0.1, horizon_due=due, on_error=print)
    assert asked == [False, False, True] and calls == [1]


def test_the_rate_trigger_keeps_running_after_a_raising_step():
    stop, wake = threading.Event(), threading.Event()
    now = [0]

    def clock() -> int:  # 1 s passes per reading: every deadline is already due (no waiting)
        now[0] += 1_000_000_000
        return now[0]

    errors: list[Exception] = []
    step, calls = _counting_step(stop, 3, raise_on=1)
    run_worker(step, stop, wake, period_s=lambda: 0.01, on_error=errors.append, clock=clock)
    assert calls == [1, 2, 3]
    assert [str(e) for e in errors] == ["inference failed"]


def test_rate_zero_runs_on_new_data_and_stop_ends_the_loop():
    stop, wake = threading.Event(), threading.Event()
    wake.set()  # new data already arrived
    step, calls = _counting_step(stop, 1)
    run_worker(step, stop, wake, period_s=lambda: 0.0, on_error=print)
    assert calls == [1] and not wake.is_set()  # the wake was consumed
    stop.set()
    never, none = _counting_step(stop, 1)
    run_worker(never, stop, wake, period_s=lambda: 0.0, on_error=print)
    assert none == []
