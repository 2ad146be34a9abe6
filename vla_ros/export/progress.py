"""A small step-by-step progress display for the export command (stderr, no dependencies)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    """Prints ``[i/n] what ... ok (1.2 s)`` lines; silent when ``enabled`` is false."""

    def __init__(self, total: int = 0, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.log: list[tuple[str, float, str]] = []  # (step, seconds, outcome)

    def note(self, text: str) -> None:
        """A free line under the current step."""
        if self.enabled:
            print(f"      {text}", file=self.stream, flush=True)

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Context manager around one step; prints its outcome and duration."""
        self.done += 1
        total = max(self.total, self.done)
        prefix = f"[{self.done}/{total}] {what}"
        if self.enabled:
            print(f"{prefix} ...", file=self.stream, flush=True)
        t0 = time.perf_counter()
        try:
            yield
        except BaseException as e:
            dt = time.perf_counter() - t0
            self.log.append((what, dt, f"failed: {type(e).__name__}"))
            if self.enabled:
                print(f"{prefix} FAILED ({dt:.1f} s): {e}", file=self.stream, flush=True)
            raise
        dt = time.perf_counter() - t0
        self.log.append((what, dt, "ok"))
        if self.enabled:
            print(f"{prefix} ok ({dt:.1f} s)", file=self.stream, flush=True)
