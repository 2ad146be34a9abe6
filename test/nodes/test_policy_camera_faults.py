"""policy_node camera faults on real topics: one line per episode, cleared by good frames, bombs refused."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros

from node_rigs import PolicyRig  # noqa: E402
from support.policy_card import image_msg, make_card  # noqa: E402

H, W = 48, 64


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_card(tmp_path_factory.mktemp("card") / "camera_faults", nan_gate=False)


def _bad_step(stamp_ns: int):
    msg = image_msg(stamp_ns, np.zeros((H, W, 3), np.uint8))
    msg.step = W  # shorter than one row of rgb8 pixels
    msg.data = msg.data[: W * H]
    return msg


def test_flapping_camera_logs_one_line_per_episode_and_recovers_once(ros, card: Path) -> None:
    rig = PolicyRig(ros, card, fault_settle_s=0.5)
    good = np.full((H, W, 3), 90, np.uint8)
    for _ in range(20):  # every other wrist frame bad, 50 Hz: one episode
        now = rig.now_ns()
        rig.cams["wrist"].publish(image_msg(now, good))
        rig.cams["wrist"].publish(_bad_step(now))
        rig.publish(now, {"top": image_msg(now, good)})
        time.sleep(0.02)
    # sensor_data QoS is best effort: a loaded machine may drop some of the 20 bad frames
    assert ros.wait_until(lambda: rig.node.faults.snapshot().get("image:wrist:step", 0) >= 2, 5.0)
    assert "image:wrist:step" in rig.node.faults.active()
    assert rig.status_where(lambda st: any(kv.key == "fault:image:wrist:step" for kv in st.values))
    # then only good frames (a camera keeps streaming), for longer than fault_settle_s: at least
    # 1.5 s, and on a loaded machine until the node says it recovered (at most 10 s)
    start = time.monotonic()
    while time.monotonic() - start < 1.5 or (
        time.monotonic() - start < 10.0 and not rig.logs("recovered: image:wrist:step")
    ):
        now = rig.now_ns()
        rig.publish(now, {"wrist": image_msg(now, good), "top": image_msg(now, good)})
        time.sleep(0.02)
    assert rig.logs("recovered: image:wrist:step")
    rejected = rig.logs("rejected image", "camera 'wrist'")
    assert len(rejected) == 1, rejected
    assert "step=64 is shorter than one row of 64 rgb8 pixels (192 bytes)" in rejected[0]
    assert len(rig.logs("recovered: image:wrist:step")) == 1
    assert "image:wrist:step" not in rig.node.faults.active()
    status = rig.status_where(lambda st: not any(kv.key.startswith("fault:image:") for kv in st.values))
    from diagnostic_msgs.msg import DiagnosticStatus

    assert status.level == DiagnosticStatus.OK and status.message.startswith("ok:"), status.message


def _bomb_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(bytes(1 + 3 * width) * 64)  # the first rows; the header is what counts
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_compressed_bomb_is_refused_with_one_line_naming_camera_size_and_limit(ros, card: Path) -> None:
    from sensor_msgs.msg import CompressedImage

    rig = PolicyRig(ros, card, cameras=["wrist=camera/wrist/image_raw/compressed"])
    bomb = _bomb_png(32000, 32000)
    for _ in range(5):
        msg = CompressedImage(format="rgb8; png compressed bgr8", data=bomb)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(rig.now_ns(), 1_000_000_000)
        rig.cams["wrist"].publish(msg)
    assert ros.wait_until(lambda: rig.node.faults.snapshot().get("image:wrist:pixels", 0) == 5, 5.0)
    assert ros.wait_until(lambda: rig.logs("32000x32000"), 5.0)
    (line,) = rig.logs("32000x32000")
    assert line == (
        "rejected image: camera 'wrist': compressed PNG image is 32000x32000 (1024.0 MP), over the "
        "max_image_pixels limit of 50000000 (50.0 MP); not decoded. Publish smaller images or raise "
        "max_image_pixels"
    )
    assert rig.node.assembler.counters()["camera:wrist"]["received"] == 0  # never buffered


def test_a_node_that_failed_to_start_does_not_swallow_the_next_ones_log(ros, card: Path) -> None:
    """A PolicyNode whose __init__ raised is torn down at once: a half-built node kept its /rosout
    registration after its context shut down, and rcl sent every later line of a node of that
    name through the dead publisher (seen on Jazzy)."""
    import rclpy
    from rclpy.context import Context

    from vla_ros.nodes.policy_node import PolicyNode

    other = Context()
    rclpy.init(context=other, args=["test"])
    try:
        with pytest.raises(Exception, match="card"):  # no card: refused after its setup began
            PolicyNode(context=other)
    finally:
        rclpy.try_shutdown(context=other)
    rig = PolicyRig(ros, card)
    rig.node.get_logger().warning("a line from the second policy_node")
    assert ros.wait_until(lambda: rig.logs("a line from the second policy_node"), 5.0)
