"""Image pre-processing cost: the runtime's resize vs cv2's plain filters, 640x480 -> 224x224.

    ./env.sh python benchmarks/bench_preprocess.py [--json] [--iterations N]

Prints p50/p99 per method and each one's ratio to cv2.INTER_AREA measured in the same run, plus
the full ``prepare_images`` step for two cameras (resize + CHW float32 in [0, 1]).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure the checkout, not an older install

from vla_ros.contract.io_spec import IOSpec
from vla_ros.runtime.processing import prepare_images, resize_image


def _time(fn, iterations: int) -> np.ndarray:
    for _ in range(20):
        fn()
    out = np.empty(iterations)
    for i in range(iterations):
        t = time.perf_counter_ns()
        fn()
        out[i] = time.perf_counter_ns() - t
    return out / 1e6


def main() -> int:
    """Run the measurements; print a table (or JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    io = IOSpec(
        camera_names=("a", "b"), image_size=(224, 224), state_dim=7, action_dim=7, horizon=10, dt=0.02
    )
    cases = {
        "cv2 INTER_AREA": lambda: cv2.resize(frame, (224, 224), interpolation=cv2.INTER_AREA),
        "cv2 INTER_LINEAR": lambda: cv2.resize(frame, (224, 224), interpolation=cv2.INTER_LINEAR),
        "runtime resize_image": lambda: resize_image(frame, (224, 224)),
        "prepare_images (2 cams)": lambda: prepare_images({"a": frame, "b": frame}, io),
    }
    rows = {}
    for name, fn in cases.items():
        t = _time(fn, args.iterations)
        rows[name] = {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99))}
    base = rows["cv2 INTER_AREA"]["p50_ms"]
    for r in rows.values():
        r["speedup_vs_area_p50"] = base / r["p50_ms"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'method':<26} {'p50 ms':>8} {'p99 ms':>8} {'x vs AREA':>10}")
    for name, r in rows.items():
        print(f"{name:<26} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['speedup_vs_area_p50']:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
