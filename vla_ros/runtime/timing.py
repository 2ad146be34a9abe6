"""Per-graph stage timing: wall clock on CPU, CUDA events on a GPU stream (no extra syncs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class StageTimer:
    """Times graph calls into ``record(stage, seconds)``.

    On CPU each call is timed with ``time.perf_counter``. On CUDA (``torch`` given) a pair of
    timing events is recorded on the current stream around the call and resolved by
    :meth:`flush` after the caller's own synchronize, so timing adds no host-device syncs
    inside a prefix + step loop.
    """

    def __init__(self, record: Callable[[str, float], None], torch: Any | None = None) -> None:
        self._record = record
        self._torch = torch
        self._pending: list[tuple[str, Any, Any]] = []

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if self._torch is None:
            t = time.perf_counter()
            yield
            self._record(stage, time.perf_counter() - t)
            return
        start = self._torch.cuda.Event(enable_timing=True)
        end = self._torch.cuda.Event(enable_timing=True)
        start.record()
        yield
        end.record()
        self._pending.append((stage, start, end))

    def flush(self) -> None:
        """Record the CUDA event pairs of finished work (call after synchronizing)."""
        for stage, start, end in self._pending:
            end.synchronize()
            self._record(stage, start.elapsed_time(end) / 1e3)
        self._pending.clear()
