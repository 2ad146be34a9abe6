"""``cv2.imdecode`` without OpenCV, libjpeg or libpng writing to the process's stderr.

OpenCV's own log lines (``[ WARN:0@...] ... PNG input buffer is incomplete``) are silenced with
``cv2.utils.logging.setLogLevel``. The codecs it bundles print their messages ("Corrupt JPEG data:
...", "Premature end of JPEG file", "libpng error: IDAT: CRC error") straight to file descriptor 2,
once per bad frame, past any logger. :func:`imdecode` therefore points descriptor 2 at a scratch
file for the length of the decode and returns what the decoder wrote, so the caller reports it
once per episode through the node's own logging. Lines other threads write to stderr meanwhile
are copied back to the real stderr unchanged (a few milliseconds late, never lost).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from typing import Any

import numpy as np

#: decoder messages that mean the pixels are damaged or missing (the frame must not be used)
DAMAGE = re.compile(r"Corrupt JPEG data|Premature end of JPEG|libpng error|Bogus|Invalid|Unsupported", re.I)
#: lines the codecs write (anything else captured is another thread's output, passed through)
_DECODER_LINE = re.compile(
    r"^(\[ ?(WARN|ERROR|INFO)[^\]]*\] global|Corrupt JPEG|Premature end of JPEG|libpng |JPEG|TIFF|"
    r"Bogus|Invalid|Unsupported|Not a JPEG|Wrong JPEG|Warning|Error)",
    re.I,
)

_lock = threading.Lock()
_scratch: Any = None
_cv2: Any = None


def _opencv() -> Any:
    global _cv2
    if _cv2 is None:
        import cv2  # heavy import only when compressed images are used

        with contextlib.suppress(AttributeError):  # builds without cv2.utils.logging
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _cv2 = cv2
    return _cv2


def imdecode(buf: np.ndarray, flags: int | None = None) -> tuple[np.ndarray | None, list[str]]:
    """Decode ``buf`` (uint8, the encoded file) with OpenCV; returns ``(pixels or None, messages)``.

    ``flags`` defaults to ``cv2.IMREAD_UNCHANGED``. ``messages`` are the lines OpenCV and its
    codecs wrote during the decode (empty for a clean one). Thread-safe (decodes serialize).
    """
    global _scratch
    cv2 = _opencv()
    flags = cv2.IMREAD_UNCHANGED if flags is None else flags
    with _lock:
        if _scratch is None:
            _scratch = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - kept for the process
        _scratch.seek(0)
        _scratch.truncate()
        saved = os.dup(2)
        try:
            os.dup2(_scratch.fileno(), 2)
            try:
                pixels = cv2.imdecode(buf, flags)
            finally:
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        _scratch.seek(0)
        captured = _scratch.read().decode("utf-8", errors="replace")
    messages: list[str] = []
    others: list[str] = []
    for line in captured.splitlines():
        if not line.strip():
            continue
        (messages if _DECODER_LINE.match(line.strip()) else others).append(line.strip())
    if others:
        os.write(2, ("\n".join(others) + "\n").encode())
    return pixels, messages


def damaged(messages: list[str]) -> bool:
    """True when a decoder message says the pixels are damaged (corrupt or truncated data)."""
    return any(DAMAGE.search(m) for m in messages)
