"""The shipped Fast DDS profile: parsing, environment handling, and frames across processes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vla_ros.util.dds import (
    PROFILE_ENV,
    VGA_RGB8_BYTES,
    large_data_profile,
    shm_segment_bytes,
    use_large_data_profile,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "fastdds_large_data.xml"


def test_shipped_profile_holds_the_history_of_camera_topics() -> None:
    segment = shm_segment_bytes(SHIPPED.read_text())
    assert segment is not None and segment >= 5 * VGA_RGB8_BYTES * 2  # 2 cameras, depth 5
    assert large_data_profile({"AMENT_PREFIX_PATH": ""}) == SHIPPED


def test_segment_parsing_edge_cases() -> None:
    no_shm = "<dds><profiles><transport_descriptors><transport_descriptor><type>UDPv4</type>"
    no_shm += "</transport_descriptor></transport_descriptors></profiles></dds>"
    assert shm_segment_bytes(no_shm) is None
    default_shm = no_shm.replace("UDPv4", "SHM")
    assert shm_segment_bytes(default_shm) == 512 * 1024
    with pytest.raises(ValueError, match="not valid XML"):
        shm_segment_bytes("<dds><profiles>")
    with pytest.raises(ValueError, match="not an integer"):
        shm_segment_bytes(
            default_shm.replace("<type>SHM</type>", "<type>SHM</type><segment_size>big</segment_size>")
        )


def test_profile_env_is_set_only_when_unset_and_fast_dds() -> None:
    env: dict[str, str] = {"AMENT_PREFIX_PATH": ""}
    assert use_large_data_profile(env) == SHIPPED and env[PROFILE_ENV] == str(SHIPPED)
    mine = {PROFILE_ENV: "/etc/my_profile.xml"}
    assert use_large_data_profile(mine) == Path("/etc/my_profile.xml")
    assert mine[PROFILE_ENV] == "/etc/my_profile.xml"
    cyclone = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    assert use_large_data_profile(cyclone) is None and PROFILE_ENV not in cyclone


_PUBLISHER = """
import os, sys, time
from array import array
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
rclpy.init()
node = Node("frame_publisher")
qos = QoSProfile(depth=30, reliability=ReliabilityPolicy.RELIABLE)
pub = node.create_publisher(Image, "vla_ros_test/frames", qos)
deadline = time.monotonic() + 20
while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
    time.sleep(0.02)
time.sleep(0.3)
for i in range(N):
    img = Image(height=480, width=640, encoding="rgb8", step=1920)
    img.header.frame_id = str(i)
    img.data = array("B", np.random.default_rng(i).integers(0, 256, 921600, dtype=np.uint8).tobytes())
    pub.publish(img)
    time.sleep(0.05)
time.sleep(3.0)
node.destroy_node()
rclpy.shutdown()
"""


@pytest.mark.ros
def test_vga_frames_cross_processes_intact_with_the_profile(ros) -> None:
    """A child process publishes 640x480 rgb8 frames under the profile; all arrive, bit-exact."""
    import numpy as np
    from sensor_msgs.msg import Image

    n = 12
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    collector = ros.subscribe(
        "vla_ros_test/frames", Image, qos=QoSProfile(depth=30, reliability=ReliabilityPolicy.RELIABLE)
    )
    env = dict(os.environ, **{PROFILE_ENV: str(SHIPPED)})
    code = textwrap.dedent(_PUBLISHER).replace("range(N)", f"range({n})")
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        collector.wait_for(n, timeout=40.0)
    finally:
        child.wait(timeout=30)
    assert child.returncode == 0
    got = {m.header.frame_id: m for m in collector.messages}
    assert sorted(got, key=int) == [str(i) for i in range(n)]
    for i in range(n):
        want = np.random.default_rng(i).integers(0, 256, 921600, dtype=np.uint8).tobytes()
        assert hashlib.sha256(bytes(got[str(i)].data)).digest() == hashlib.sha256(want).digest()
