"""Zero-copy CDR reading of Image/CompressedImage, against rclpy's own serializer."""

from __future__ import annotations

import struct
from array import array

import numpy as np
import pytest

from vla_ros.perception import msg_to_rgb8
from vla_ros.perception.cdr import (
    CdrError,
    CdrRepresentationError,
    parse_compressed_image,
    parse_image,
    read_image_message,
)

pytestmark = pytest.mark.ros


def _image(encoding: str, height: int, width: int, pad: int, frame_id: str, seed: int = 0):
    from sensor_msgs.msg import Image

    from vla_ros.perception.image import ENCODINGS

    info = ENCODINGS[encoding]
    step = width * info.pixel_bytes + pad
    rng = np.random.default_rng(seed)
    msg = Image(height=height, width=width, encoding=encoding, step=step, is_bigendian=seed % 2)
    msg.header.stamp.sec, msg.header.stamp.nanosec = -3 if seed == 3 else 1_700_000_000 + seed, 123_456_789
    msg.header.frame_id = frame_id
    msg.data = array("B", rng.integers(0, 256, step * height, dtype=np.uint8).tobytes())
    return msg


@pytest.mark.parametrize(
    ("encoding", "height", "width", "pad", "frame_id", "seed"),
    [
        ("rgb8", 48, 64, 0, "cam_high_optical", 0),
        ("bgra8", 5, 7, 3, "", 1),  # odd sizes: every field alignment exercised
        ("mono16", 4, 3, 1, "a", 2),
        ("32FC1", 6, 5, 0, "ab", 3),  # negative seconds
        ("8UC3", 1, 1, 2, "abc", 4),
    ],
)
def test_parse_image_matches_rclpy(encoding, height, width, pad, frame_id, seed) -> None:
    from rclpy.serialization import serialize_message

    msg = _image(encoding, height, width, pad, frame_id, seed)
    buf = serialize_message(msg)
    raw = parse_image(buf)
    assert (raw.header.stamp.sec, raw.header.stamp.nanosec) == (
        msg.header.stamp.sec,
        msg.header.stamp.nanosec,
    )
    assert raw.header.frame_id == msg.header.frame_id
    assert (raw.height, raw.width, raw.encoding, raw.step) == (msg.height, msg.width, msg.encoding, msg.step)
    assert raw.is_bigendian == msg.is_bigendian
    assert bytes(raw.data) == msg.data.tobytes()
    # zero copy: the pixels are a view into the delivered bytes
    assert raw.data.obj is buf
    if encoding in ("rgb8", "bgra8", "8UC3"):
        np.testing.assert_array_equal(msg_to_rgb8(raw), msg_to_rgb8(msg))


def test_parse_compressed_image_matches_rclpy() -> None:
    import cv2
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CompressedImage

    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", pixels)
    assert ok
    msg = CompressedImage(format="rgb8; png compressed bgr8")
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 34
    msg.header.frame_id = "wrist"
    msg.data = array("B", png.tobytes())
    buf = serialize_message(msg)
    raw = parse_compressed_image(buf)
    assert raw.format == msg.format and raw.header.frame_id == "wrist" and raw.header.stamp.nanosec == 34
    assert bytes(raw.data) == png.tobytes()
    np.testing.assert_array_equal(msg_to_rgb8(raw), pixels[:, :, ::-1])
    from sensor_msgs.msg import CompressedImage as C

    assert isinstance(read_image_message(buf, C), type(raw))


def test_big_endian_cdr() -> None:
    """A big-endian writer (representation 0x0000): fields read in its byte order."""
    body = struct.pack(">iI", 7, 8) + struct.pack(">I", 2) + b"c\0"
    body += b"\0\0"  # align to 4
    body += struct.pack(">II", 1, 2) + struct.pack(">I", 5) + b"rgb8\0"
    body += b"\0"  # is_bigendian
    body += b"\0\0"  # align to 4 (body offset 34 -> 36)
    body += struct.pack(">I", 6) + struct.pack(">I", 6) + bytes(range(6))
    raw = parse_image(b"\x00\x00\x00\x00" + body)
    assert (raw.header.stamp.sec, raw.header.stamp.nanosec, raw.header.frame_id) == (7, 8, "c")
    assert (raw.height, raw.width, raw.encoding, raw.step) == (1, 2, "rgb8", 6)
    assert bytes(raw.data) == bytes(range(6))


def test_truncated_bytes_raise_a_named_error() -> None:
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    buf = serialize_message(_image("rgb8", 4, 4, 0, "cam"))
    for cut in (2, 10, 30, len(buf) - 1):
        with pytest.raises(CdrError, match=r"camera 'wrist'.*(truncated|shorter)") as info:
            parse_image(buf[:cut], source="camera 'wrist'")
        assert info.value.cause == "camera 'wrist':cdr"
        with pytest.raises(CdrError):
            read_image_message(buf[:cut], Image, source="camera 'wrist'")


def test_unknown_representation_falls_back_to_rclpy() -> None:
    """Parameter-list CDR is not read here; read_image_message hands it to rclpy instead."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    buf = bytearray(serialize_message(_image("rgb8", 2, 2, 0, "x")))
    buf[1] = 0x03  # PL_CDR_LE
    with pytest.raises(CdrRepresentationError, match="representation id 0x0003"):
        parse_image(bytes(buf))
    # rclpy's deserializer does not look at the representation: it reads the same body
    msg = read_image_message(bytes(buf), Image)
    assert isinstance(msg, Image) and msg.header.frame_id == "x" and msg.width == 2


def test_garbage_bytes_raise_cdr_error_never_rclpys_own() -> None:
    """What a node's callback may receive from a broken publisher: always a CdrError."""
    from sensor_msgs.msg import CompressedImage, Image

    rng = np.random.default_rng(0)
    for n in (0, 3, 4, 17, 1000):
        junk = b"\xff\xee" + rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        for kind in (Image, CompressedImage):
            with pytest.raises(CdrError, match="camera 'x'") as info:
                read_image_message(junk, kind, source="camera 'x'")
            assert info.value.cause == "camera 'x':cdr"
