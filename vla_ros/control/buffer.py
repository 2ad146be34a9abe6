"""A time-keyed buffer of live action chunks."""

from __future__ import annotations

import dataclasses
import itertools

from vla_ros.control.chunk import Chunk


class ChunkBuffer:
    """Holds chunks ordered oldest first by ``(stamp_ns, arrival)``.

    Args:
        max_chunks: capacity; adding beyond it drops the oldest chunks (flood protection).
        max_age_ns: a chunk is live at ``t`` only while ``t - start_ns <= max_age_ns``
            (0 = for its whole horizon).
    """

    def __init__(self, max_chunks: int = 32, max_age_ns: int = 0) -> None:
        if max_chunks < 1:
            raise ValueError(f"max_chunks must be >= 1, got {max_chunks}")
        if max_age_ns < 0:
            raise ValueError(f"max_age_ns must be >= 0 (0 = whole horizon), got {max_age_ns}")
        self.max_chunks = int(max_chunks)
        self.max_age_ns = int(max_age_ns)
        self._chunks: list[Chunk] = []
        self._counter = itertools.count(1)

    def __len__(self) -> int:
        return len(self._chunks)

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        """All buffered chunks, oldest first."""
        return tuple(self._chunks)

    def add(self, chunk: Chunk) -> tuple[Chunk, list[Chunk]]:
        """Insert ``chunk``; return (the stored chunk with its ``uid``, chunks dropped).

        A chunk with the same ``policy_id`` and stamp as a buffered one replaces it.
        """
        stored = dataclasses.replace(chunk, uid=next(self._counter))
        self._chunks = [
            c for c in self._chunks if not (c.policy_id == stored.policy_id and c.stamp_ns == stored.stamp_ns)
        ]
        self._chunks.append(stored)
        self._chunks.sort(key=lambda c: (c.stamp_ns, c.uid))
        dropped: list[Chunk] = []
        while len(self._chunks) > self.max_chunks:
            dropped.append(self._chunks.pop(0))
        return stored, dropped

    def prune(self, t_ns: int) -> int:
        """Drop chunks that can never be live again at or after ``t_ns``; returns how many."""
        before = len(self._chunks)
        if self._chunks and (
            self._chunks[0].end_ns <= t_ns
            or self.max_age_ns > 0
            or any(c.end_ns <= t_ns for c in self._chunks)
        ):
            self._chunks = [c for c in self._chunks if c.end_ns > t_ns and not self._too_old(c, t_ns)]
        return before - len(self._chunks)

    def _too_old(self, chunk: Chunk, t_ns: int) -> bool:
        return self.max_age_ns > 0 and t_ns - chunk.start_ns > self.max_age_ns

    def live(self, t_ns: int) -> list[Chunk]:
        """Chunks with a target at ``t_ns``, oldest first."""
        age = self.max_age_ns
        if age > 0:
            return [c for c in self._chunks if c.start_ns <= t_ns < c.end_ns and t_ns - c.start_ns <= age]
        return [c for c in self._chunks if c.start_ns <= t_ns < c.end_ns]

    def newest(self) -> Chunk | None:
        """The most recently stamped chunk, or None."""
        return self._chunks[-1] if self._chunks else None

    def clear(self) -> None:
        """Forget every chunk."""
        self._chunks.clear()
