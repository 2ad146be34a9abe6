"""vla_ros.util.memory: glibc malloc settings that keep camera-frame buffers in the heap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vla_ros.util.memory import keep_heap, lock_memory

ROOT = Path(__file__).resolve().parents[2]

# allocate, touch and free two frame-sized buffers 100 times in the main thread; print minor faults
_FAULTS = """
import resource, sys
sys.path.insert(0, {root!r})
if {keep}:
    from vla_ros.util.memory import keep_heap
    assert keep_heap().applied
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    b = bytearray(921600)
    b[::4096] = bytes(len(b[::4096]))
    c = bytes(b)
    del b, c
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def _faults(keep: bool) -> int:
    code = _FAULTS.format(root=str(ROOT), keep=keep)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_keep_heap_stops_page_faulting_every_frame_buffer() -> None:
    with_keep = _faults(True)
    # 200 frame buffers x 225 pages each would be 45,000 faults; kept in the heap they fault once
    assert with_keep < 2000, f"{with_keep} minor faults for 200 reused 921,600 B buffers"
    without = _faults(False)
    if without > 20000:  # this glibc maps every frame afresh without the settings
        assert with_keep * 10 < without, (with_keep, without)


def test_keep_heap_is_idempotent_and_rejects_bad_sizes() -> None:
    first = keep_heap()
    assert keep_heap() is first
    if sys.platform.startswith("linux"):
        assert first.applied, first.detail
    for bad in (0, -5, 1.5):
        with pytest.raises(ValueError, match="positive number of bytes"):
            keep_heap(mmap_threshold=bad)  # type: ignore[arg-type]


def test_lock_memory_reports_what_happened() -> None:
    # run in a child: locking all pages is process-wide
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); from vla_ros.util.memory import lock_memory; "
        "r = lock_memory(); print(r.applied); print(r.detail)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    applied, detail = out.stdout.strip().splitlines()[:2]
    assert applied in ("True", "False")
    assert ("locked" in detail) if applied == "True" else ("ulimit -l" in detail or "not available" in detail)
    assert callable(lock_memory)
