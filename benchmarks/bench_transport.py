"""Camera frames between processes: Fast DDS defaults vs the shipped large-data profile, and the floor.

    ./env.sh python benchmarks/bench_transport.py            # table
    ./env.sh python benchmarks/bench_transport.py --json

A child process (the camera driver) publishes two 640x480 rgb8 sensor_msgs/Image topics
(921,600 B each, reliable, depth 5) at ``--rate`` Hz, stamped just before publishing; this
process receives them on a SingleThreadedExecutor and records receive time - stamp per frame.
It runs once with ``FASTDDS_DEFAULT_PROFILES_FILE`` unset in the publisher (Fast DDS's 512 KiB
shared-memory segment: frames fall back to fragmented UDP) and once with
``config/fastdds_large_data.xml``, then with the profile and a serialized (``raw=True``)
subscription as policy_node uses, then the same with 2x8-pixel frames: the floor of one hop
between two rclpy processes on this machine, whatever the payload. Lost = frames published but
never received; the first ``--warmup`` frames per camera (discovery settling) are not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PUBLISHER = """
import sys, time
from array import array
import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image
from vla_ros.util.memory import keep_heap
keep_heap()  # reuse frame buffers, as the policy process does
rclpy.init()
node = Node("bench_camera")
pubs = [node.create_publisher(Image, f"bench_transport/cam{i}", 5) for i in range(2)]
deadline = time.monotonic() + 30
while any(p.get_subscription_count() == 0 for p in pubs) and time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(0.5)
img = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=3 * WIDTH)
img.data = array("B", np.random.default_rng(0).integers(0, 256, 3 * WIDTH * HEIGHT, dtype=np.uint8).tobytes())
for i in range(FRAMES):
    img.header.frame_id = str(i)
    img.header.stamp.sec, img.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
    for p in pubs:
        p.publish(img)
    time.sleep(PERIOD)
time.sleep(2.0)
"""


def measure(
    with_profile: bool,
    frames: int,
    rate: float,
    warmup: int = 30,
    *,
    size: tuple[int, int] = (480, 640),
    serialized: bool = False,
) -> dict:
    """One publisher child; this process receives. Returns latency percentiles (ms) and losses.

    ``size`` is (height, width) of the rgb8 frames; ``serialized`` subscribes with ``raw=True``
    (the callback gets the CDR bytes and reads the stamp in place, as policy_node does).
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from vla_ros.util.dds import PROFILE_ENV, large_data_profile
    from vla_ros.util.memory import keep_heap

    keep_heap()
    env = dict(os.environ)
    env.pop(PROFILE_ENV, None)
    if with_profile:
        env[PROFILE_ENV] = str(large_data_profile())
    latencies: list[float] = []
    lock = threading.Lock()

    from vla_ros.perception.cdr import parse_image

    def on_frame(msg: Image | bytes) -> None:
        now = time.time_ns()
        if serialized:
            msg = parse_image(msg)
        with lock:
            if int(msg.header.frame_id) >= warmup:
                stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                latencies.append((now - stamp) / 1e6)

    context = Context()
    rclpy.init(context=context)
    node = Node("bench_transport_rx", context=context)
    for i in range(2):
        node.create_subscription(Image, f"bench_transport/cam{i}", on_frame, 5, raw=serialized)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    spin = threading.Thread(target=ex.spin, daemon=True)
    spin.start()
    code = textwrap.dedent(PUBLISHER).replace("FRAMES", str(frames)).replace("PERIOD", str(1.0 / rate))
    code = code.replace("HEIGHT", str(size[0])).replace("WIDTH", str(size[1]))
    child = subprocess.run([sys.executable, "-c", code], env=env, timeout=frames / rate + 120)
    time.sleep(0.5)
    ex.shutdown(timeout_sec=2.0)
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    if child.returncode != 0:
        raise RuntimeError(f"publisher exited with {child.returncode}")
    a = np.asarray(latencies)
    return {
        "profile": "fastdds_large_data.xml" if with_profile else "Fast DDS defaults",
        "frame": f"{size[1]}x{size[0]} rgb8",
        "subscription": "serialized (raw=True)" if serialized else "message objects",
        "sent": 2 * (frames - warmup),
        "received": int(a.size),
        "lost": 2 * (frames - warmup) - int(a.size),
        "p50_ms": float(np.percentile(a, 50)) if a.size else float("nan"),
        "p99_ms": float(np.percentile(a, 99)) if a.size else float("nan"),
        "max_ms": float(a.max()) if a.size else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: both configurations, then a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=180, help="frames per camera")
    parser.add_argument("--rate", type=float, default=15.0, help="frames per second per camera")
    parser.add_argument("--warmup", type=int, default=30, help="first frames per camera not counted")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = [
        measure(False, args.frames, args.rate, args.warmup),
        measure(True, args.frames, args.rate, args.warmup),
        measure(True, args.frames, args.rate, args.warmup, serialized=True),
        # the floor: the same path with a 2x8-pixel frame (48 B of pixels)
        measure(True, args.frames, args.rate, args.warmup, size=(2, 8), serialized=True),
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"2 cameras, {args.rate:g} Hz, publisher in another process; stamp -> subscriber callback")
    head = f"{'publisher profile':<24}{'frame':<14}{'subscription':<23}"
    print(f"{head}{'received':>10}{'lost':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for r in rows:
        print(
            f"{r['profile']:<24}{r['frame']:<14}{r['subscription']:<23}{r['received']:>7}/{r['sent']:<3}"
            f"{r['lost']:>5}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
