"""Process-wide memory settings for nodes that move camera frames: keep large buffers in the heap.

glibc serves allocations above its mmap threshold (128 KiB at start, adapted up to 32 MiB) with
fresh ``mmap`` pages and hands memory at the top of a heap back to the kernel above its trim
threshold; threads other than the main one allocate from arenas that shrink the same way. Every
640x480 rgb8 frame (921,600 B) that rclpy takes from DDS then lands in pages the kernel must
fault in again: on the 2-core VM this project is benchmarked on that costs ~1 ms per frame
(225 faults at ~4.4 us), ~2.6 ms from publish to callback instead of ~1 ms.

:func:`keep_heap` sets the thresholds once (``mallopt``) so freed frame buffers are reused;
:func:`lock_memory` additionally locks the address space (``mlockall``), the usual real-time
recipe, where the process is allowed to. Both are process-wide and idempotent; on a C library
without ``mallopt`` (musl, macOS) they do nothing and say so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from dataclasses import dataclass

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MCL_CURRENT = 1
MCL_FUTURE = 2

#: blocks below this come from the heap (glibc caps the threshold at 32 MiB on 64-bit)
DEFAULT_MMAP_THRESHOLD = 32 * 1024 * 1024
#: free memory kept at a heap's top before any is returned to the kernel
DEFAULT_TRIM_THRESHOLD = 256 * 1024 * 1024
#: extra memory requested whenever a heap grows, so a burst of frames grows it once
DEFAULT_TOP_PAD = 16 * 1024 * 1024


@dataclass(frozen=True)
class MemoryConfig:
    """What :func:`keep_heap` / :func:`lock_memory` did: ``applied`` and a one-line ``detail``."""

    applied: bool
    detail: str


_lock = threading.Lock()
_done: MemoryConfig | None = None


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def keep_heap(
    mmap_threshold: int = DEFAULT_MMAP_THRESHOLD,
    trim_threshold: int = DEFAULT_TRIM_THRESHOLD,
    top_pad: int = DEFAULT_TOP_PAD,
) -> MemoryConfig:
    """Serve blocks below ``mmap_threshold`` from the heap and keep freed memory in the process.

    Call it before the node subscribes. The first call applies the settings; later calls return
    the first result (the settings are process-wide).
    """
    global _done
    for name, value in (
        ("mmap_threshold", mmap_threshold),
        ("trim_threshold", trim_threshold),
        ("top_pad", top_pad),
    ):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"keep_heap: {name} must be a positive number of bytes, got {value!r}")
    with _lock:
        if _done is not None:
            return _done
        libc = _libc()
        if libc is None:
            _done = MemoryConfig(False, "no glibc mallopt in this C library; malloc left as is")
            return _done
        results = [
            libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold),
            libc.mallopt(M_TRIM_THRESHOLD, trim_threshold),
            libc.mallopt(M_TOP_PAD, top_pad),
        ]
        ok = all(r == 1 for r in results)
        _done = MemoryConfig(
            ok,
            f"malloc: heap for blocks < {mmap_threshold >> 20} MiB, trim above "
            f"{trim_threshold >> 20} MiB, top pad {top_pad >> 20} MiB"
            + ("" if ok else f" (mallopt refused some: {results})"),
        )
        return _done


def lock_memory() -> MemoryConfig:
    """``mlockall(MCL_CURRENT | MCL_FUTURE)``: no page faults (or swap) for this process.

    Needs CAP_IPC_LOCK or a large enough ``ulimit -l`` (``memlock`` in limits.conf); when refused,
    the result says so and how to allow it.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mlockall"):
        return MemoryConfig(False, "mlockall is not available in this C library")
    if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
        err = ctypes.get_errno()
        return MemoryConfig(
            False,
            f"mlockall refused ({os.strerror(err)}): allow it with `ulimit -l unlimited` or a "
            "memlock line in /etc/security/limits.conf, or run with CAP_IPC_LOCK",
        )
    return MemoryConfig(True, "mlockall: all current and future pages locked")


__all__ = ["MemoryConfig", "keep_heap", "lock_memory"]
