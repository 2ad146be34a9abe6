"""Runtime tests share export's helpers (TinyPolicy, exported tiny cards)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
