"""Latency percentiles are computed in one place: vla_ros.util.stats (read from the code itself)."""

from __future__ import annotations

import re
from pathlib import Path

import vla_ros

PACKAGE = Path(vla_ros.__file__).resolve().parent
HOME = PACKAGE / "util" / "stats.py"
#: dataset statistics (LeRobot's q01..q99 feature quantiles) are not latency figures
NOT_LATENCY = {PACKAGE / "dataset" / "stats.py"}
PERCENTILE_CALL = re.compile(r"\bnp\.(?:nan)?(?:percentile|quantile)\(")
SUMMARY_DEF = re.compile(r"^\s*def\s+\w*(?:latency_summary|percentiles?)\w*\(", re.M)


def test_percentiles_are_computed_only_in_util_stats() -> None:
    others = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == HOME or path in NOT_LATENCY:
            continue
        text = path.read_text(encoding="utf-8")
        hits = [m.group(0) for m in (*PERCENTILE_CALL.finditer(text), *SUMMARY_DEF.finditer(text))]
        if hits:
            others[str(path.relative_to(PACKAGE))] = hits
    # control/delay.py's nearest-rank percentile_ns is the inference-delay estimate's own
    # definition (a sample, never interpolated: integer ns, RTC's d), not a latency report
    others.pop("control/delay.py", None)
    assert others == {}, (
        f"percentiles/latency summaries outside vla_ros/util/stats.py: {others}; use "
        "vla_ros.util.stats.percentiles_ms / latency_summary_ms"
    )
    assert PERCENTILE_CALL.search(HOME.read_text(encoding="utf-8"))
