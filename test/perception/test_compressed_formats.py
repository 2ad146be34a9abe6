"""CompressedImage ``format`` strings as image_transport's plugins write them convert as the raw image does.

Payloads are made as compressed_image_transport's publisher makes them: colour converted to BGR
(``<enc>; png compressed bgr8``/``bgr16``, alpha dropped), grey and depth encoded as they are
(``<enc>; png compressed ``), depth by compressed_depth_image_transport (12-byte header + PNG).
"""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from vla_ros.perception import ImageFormatError, msg_to_rgb8

RNG = np.random.default_rng(7)


class _Raw:
    def __init__(self, encoding: str, pixels: np.ndarray) -> None:
        self.encoding, self.height, self.width = encoding, pixels.shape[0], pixels.shape[1]
        self.is_bigendian = 0
        self.data = np.ascontiguousarray(pixels).tobytes()
        self.step = len(self.data) // self.height


class _Compressed:
    def __init__(self, fmt: str, data: bytes) -> None:
        self.format, self.data = fmt, data


def _png(pixels: np.ndarray) -> bytes:
    return cv2.imencode(".png", pixels)[1].tobytes()


def _cases():
    rgb = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    rgba = RNG.integers(0, 256, (12, 10, 4), dtype=np.uint8)
    rgb16 = RNG.integers(0, 65536, (12, 10, 3), dtype=np.uint16)
    grey = RNG.integers(0, 256, (12, 10), dtype=np.uint8)
    grey16 = RNG.integers(0, 65536, (12, 10), dtype=np.uint16)
    depth = RNG.integers(0, 3000, (12, 10), dtype=np.uint16)
    bgr = rgb[..., ::-1]
    return [
        ("rgb8", rgb, "rgb8; png compressed bgr8", _png(bgr)),
        ("bgr8", bgr, "bgr8; png compressed bgr8", _png(bgr)),
        ("rgba8", rgba, "rgba8; png compressed bgr8", _png(rgba[..., 2::-1])),
        ("bgra8", rgba, "bgra8; png compressed bgr8", _png(rgba[..., :3])),
        ("rgb16", rgb16, "rgb16; png compressed bgr16", _png(rgb16[..., ::-1])),
        ("bgr16", rgb16, "bgr16; png compressed bgr16", _png(rgb16)),
        ("mono8", grey, "mono8; png compressed ", _png(grey)),
        ("mono16", grey16, "mono16; png compressed ", _png(grey16)),
        ("16UC1", depth, "16UC1; png compressed ", _png(depth)),
        ("16UC1", depth, "16UC1; compressedDepth png", struct.pack("<iff", 0, 0, 0) + _png(depth)),
        ("8UC3", bgr, "png", _png(bgr)),  # legacy format: no encoding, OpenCV order
        ("rgb8", rgb, "rgb8; png compressed rgb8", _png(rgb)),  # old publishers encoded RGB as is
        ("rgba8", rgba, "png", cv2.imencode(".png", rgba[..., [2, 1, 0, 3]])[1].tobytes()),
    ]


@pytest.mark.parametrize(
    ("encoding", "pixels", "fmt", "payload"), _cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_lossless_formats_give_the_raw_images_array(encoding, pixels, fmt, payload) -> None:
    raw = msg_to_rgb8(_Raw(encoding, pixels))
    got = msg_to_rgb8(_Compressed(fmt, payload))
    assert got.dtype == np.uint8 and got.shape == (12, 10, 3)
    np.testing.assert_array_equal(got, raw)


@pytest.mark.parametrize("fmt", ["jpeg", "rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8"])
def test_jpeg_formats_give_the_raw_image_within_jpeg_loss(fmt) -> None:
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 40  # flat colour: JPEG keeps it within a few levels
    bgr = rgb[..., ::-1]
    encoding = fmt.split(";")[0] if ";" in fmt else "bgr8"
    raw = msg_to_rgb8(_Raw(encoding, rgb if encoding == "rgb8" else bgr))  # what the driver held
    payload = cv2.imencode(".jpg", bgr)[1].tobytes()  # the publisher encodes BGR
    got = msg_to_rgb8(_Compressed(fmt, payload))
    np.testing.assert_array_equal(raw, rgb)
    assert got.dtype == np.uint8 and got.shape == raw.shape
    assert np.abs(got.astype(int) - raw.astype(int)).max() <= 3


def test_arrays_no_raw_encoding_describes_are_conversion_faults() -> None:
    tiff = cv2.imencode(".tiff", RNG.random((8, 8), dtype=np.float32))[1].tobytes()
    with pytest.raises(ImageFormatError, match=r"decoded to 1 channel\(s\) of float32") as err:
        msg_to_rgb8(_Compressed("rgb8; tiff compressed bgr8", tiff), source="camera 'top'")
    assert err.value.cause == "camera 'top':compressed"
    # the same payload named as 32FC1 depth converts as a raw 32FC1 image would
    depth = cv2.imdecode(np.frombuffer(tiff, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(
        msg_to_rgb8(_Compressed("32FC1; tiff compressed ", tiff)), msg_to_rgb8(_Raw("32FC1", depth))
    )
