"""Image decoding from raw message fields: every encoding, padding, byte order, bad input."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

from vla_ros.perception import ImageFormatError, check_image_fields, decode_image, to_rgb8
from vla_ros.perception.image import (
    ENCODINGS,
    RGB_CONVERTIBLE,
    decode_compressed,
    image_msg_to_rgb8,
    msg_to_rgb8,
)

H, W = 5, 7


def _pixels(encoding: str, rng: np.random.Generator) -> np.ndarray:
    info = ENCODINGS[encoding]
    shape = (H, W) if info.channels == 1 else (H, W, info.channels)
    if info.dtype.kind == "f":
        return rng.normal(size=shape).astype(info.dtype)
    lim = np.iinfo(info.dtype)
    return rng.integers(lim.min, lim.max, size=shape, endpoint=True, dtype=info.dtype)


def _serialize(pixels: np.ndarray, pad: int, bigendian: bool) -> tuple[int, array.array]:
    """Pack pixels as a ROS Image would: rows of ``step`` bytes with ``pad`` junk bytes each."""
    order = ">" if bigendian else "<"
    rows = pixels.astype(pixels.dtype.newbyteorder(order)).reshape(pixels.shape[0], -1)
    raw = rows.view(np.uint8).reshape(pixels.shape[0], -1)
    junk = np.full((pixels.shape[0], pad), 0xAB, dtype=np.uint8)
    padded = np.concatenate([raw, junk], axis=1)
    return padded.shape[1], array.array("B", padded.tobytes())


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("bigendian", [False, True])
def test_decode_roundtrip_every_encoding(encoding: str, pad: int, bigendian: bool) -> None:
    rng = np.random.default_rng(0)
    pixels = _pixels(encoding, rng)
    step, data = _serialize(pixels, pad, bigendian)
    out = decode_image(encoding, H, W, step, bigendian, data)
    assert out.shape == pixels.shape
    np.testing.assert_array_equal(out, pixels)
    # zero copy: the result is a view over the message buffer
    assert np.shares_memory(out, np.frombuffer(data, dtype=np.uint8))


def test_decode_accepts_bytes_and_is_read_only_then() -> None:
    pixels = np.arange(H * W * 3, dtype=np.uint8).reshape(H, W, 3)
    out = decode_image("rgb8", H, W, W * 3, 0, pixels.tobytes())
    np.testing.assert_array_equal(out, pixels)
    assert not out.flags.writeable


def _rgb8_case(encoding: str) -> tuple[np.ndarray, np.ndarray]:
    """(decoded pixels, expected RGB) using OpenCV's colour conversions as the oracle."""
    rng = np.random.default_rng(1)
    pixels = _pixels(encoding, rng)
    if encoding in ("rgb8",):
        return pixels, pixels
    if encoding in ("bgr8", "8UC3"):
        return pixels, cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if encoding == "rgba8":
        return pixels, cv2.cvtColor(pixels, cv2.COLOR_RGBA2RGB)
    if encoding in ("bgra8", "8UC4"):
        return pixels, cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB)
    if encoding in ("mono8", "8UC1"):
        return pixels, cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    if encoding == "rgb16":
        return pixels, (pixels // 256).astype(np.uint8)
    if encoding == "bgr16":
        return pixels, (cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB) // 256).astype(np.uint8)
    if encoding == "rgba16":
        return pixels, (pixels[..., :3] // 256).astype(np.uint8)
    if encoding == "bgra16":
        return pixels, (cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB) // 256).astype(np.uint8)
    if encoding == "mono16":
        return pixels, cv2.cvtColor((pixels // 256).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    if encoding == "16UC1":  # millimetres, 0..2 m -> 0..255
        depth = rng.integers(0, 4000, size=(H, W)).astype(np.uint16)
        depth[0, 0] = 0
        want = np.clip(depth.astype(np.float64) / 2000.0 * 255.0, 0, 255).astype(np.uint8)
        return depth, np.repeat(want[:, :, None], 3, axis=2)
    if encoding == "32FC1":  # metres
        depth = rng.uniform(-0.5, 3.0, size=(H, W)).astype(np.float32)
        depth[0, 0], depth[0, 1], depth[0, 2] = np.nan, np.inf, -np.inf
        want = np.clip(np.nan_to_num(depth / 2.0 * 255.0, nan=0, posinf=0, neginf=0), 0, 255)
        return depth, np.repeat(want.astype(np.uint8)[:, :, None], 3, axis=2)
    raise AssertionError(encoding)


@pytest.mark.parametrize("encoding", RGB_CONVERTIBLE)
@pytest.mark.parametrize("bigendian", [False, True])
def test_to_rgb8_matches_opencv(encoding: str, bigendian: bool) -> None:
    pixels, want = _rgb8_case(encoding)
    step, data = _serialize(pixels, 2, bigendian)
    decoded = decode_image(encoding, H, W, step, bigendian, data)
    rgb = to_rgb8(decoded, encoding, depth_max_m=2.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (H, W, 3)
    np.testing.assert_allclose(rgb.astype(int), want.astype(int), atol=1)
    if ENCODINGS[encoding].dtype.itemsize == 1:  # pure channel selection: still a view
        assert np.shares_memory(rgb, np.frombuffer(data, dtype=np.uint8))


@pytest.mark.parametrize("encoding", ["16SC1", "32FC3", "64FC1", "8UC2"])
def test_to_rgb8_rejects_non_image_encodings(encoding: str) -> None:
    pixels = _pixels(encoding, np.random.default_rng(2))
    step, data = _serialize(pixels, 0, False)
    decoded = decode_image(encoding, H, W, step, False, data)
    with pytest.raises(ImageFormatError, match=encoding) as err:
        to_rgb8(decoded, encoding, source="camera wrist")
    assert err.value.cause == "camera wrist:encoding"


def test_unknown_encoding_names_value_and_options() -> None:
    with pytest.raises(ImageFormatError, match=r"unknown encoding 'yuv422'.*rgb8") as err:
        check_image_fields("yuv422", H, W, W * 2, H * W * 2, source="camera top")
    assert err.value.cause == "camera top:encoding"


def test_short_step_is_rejected() -> None:
    with pytest.raises(ImageFormatError, match=r"step=20 is shorter.*21 bytes") as err:
        decode_image("rgb8", H, W, 20, 0, bytes(20 * H))
    assert err.value.cause == "image:step"


@pytest.mark.parametrize("delta", [-1, 1, -W * 3])
def test_wrong_data_length_is_rejected(delta: int) -> None:
    n = W * 3 * H + delta
    with pytest.raises(ImageFormatError, match=rf"len\(data\)={n} but step\*height") as err:
        decode_image("rgb8", H, W, W * 3, 0, bytes(n))
    assert err.value.cause == "image:data_len"


def test_empty_image_is_rejected() -> None:
    with pytest.raises(ImageFormatError, match="empty image 0x5"):
        decode_image("rgb8", H, 0, 0, 0, b"")


def test_depth_max_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth_max_m"):
        to_rgb8(np.zeros((H, W), np.float32), "32FC1", depth_max_m=0.0)


def test_real_sensor_msgs_image_roundtrip() -> None:
    msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs (ROS) not importable")
    bgr = np.random.default_rng(3).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    msg = msgs.Image(height=H, width=W, encoding="bgr8", is_bigendian=0, step=W * 3 + 4)
    _step, data = _serialize(bgr, 4, False)
    msg.data = data
    np.testing.assert_array_equal(image_msg_to_rgb8(msg), bgr[:, :, ::-1])
    np.testing.assert_array_equal(msg_to_rgb8(msg), bgr[:, :, ::-1])


class _Compressed:
    """The two fields of sensor_msgs/CompressedImage that decoding reads."""

    def __init__(self, fmt: str, data: bytes) -> None:
        self.format = fmt
        self.data = array.array("B", data)


def test_compressed_png_colour_and_grey_roundtrip() -> None:
    rng = np.random.default_rng(4)
    bgr = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", bgr)
    assert ok
    pixels, enc = decode_compressed("rgb8; png compressed bgr8", png.tobytes())
    assert enc == "bgr8"
    np.testing.assert_array_equal(pixels, bgr)
    np.testing.assert_array_equal(msg_to_rgb8(_Compressed("png", png.tobytes())), bgr[..., ::-1])

    grey16 = rng.integers(0, 65536, size=(H, W), dtype=np.uint16)
    ok, png16 = cv2.imencode(".png", grey16)
    pixels, enc = decode_compressed("16UC1; png compressed", png16.tobytes())
    assert enc == "16UC1"
    np.testing.assert_array_equal(pixels, grey16)
    pixels, enc = decode_compressed("png", png16.tobytes())
    assert enc == "mono16"


def test_compressed_jpeg_is_close() -> None:
    smooth = np.tile(np.linspace(0, 255, W, dtype=np.uint8)[None, :, None], (H, 1, 3))
    _ok, jpg = cv2.imencode(".jpg", smooth, [cv2.IMWRITE_JPEG_QUALITY, 100])
    rgb = msg_to_rgb8(_Compressed("jpeg", jpg.tobytes()))
    assert rgb.shape == (H, W, 3)
    assert np.abs(rgb.astype(int) - smooth.astype(int)).max() <= 8


def test_compressed_depth_16uc1_and_32fc1() -> None:
    depth = np.arange(H * W, dtype=np.uint16).reshape(H, W) * 100
    _ok, png = cv2.imencode(".png", depth)
    header = np.array([0], "<i4").tobytes() + np.array([0.0, 0.0], "<f4").tobytes()
    pixels, enc = decode_compressed("16UC1; compressedDepth png", header + png.tobytes())
    assert enc == "16UC1"
    np.testing.assert_array_equal(pixels, depth)

    # 32FC1: inverse-depth quantisation, depth = A / (q - B), q == 0 invalid
    quant_a, quant_b = 1000.0, 10.0
    metres = np.linspace(0.5, 3.0, H * W, dtype=np.float32).reshape(H, W)
    q = np.round(quant_a / metres + quant_b).astype(np.uint16)
    q[0, 0] = 0
    _ok, png = cv2.imencode(".png", q)
    header = np.array([0], "<i4").tobytes() + np.array([quant_a, quant_b], "<f4").tobytes()
    pixels, enc = decode_compressed("32FC1; compressedDepth", header + png.tobytes())
    assert enc == "32FC1"
    assert np.isnan(pixels[0, 0])
    np.testing.assert_allclose(pixels.ravel()[1:], metres.ravel()[1:], rtol=2e-3)


def test_compressed_garbage_is_rejected() -> None:
    with pytest.raises(ImageFormatError, match=r"5 bytes starting 00 01 02 03 04 is not one.*'jpeg'") as err:
        decode_compressed("jpeg", b"\x00\x01\x02\x03\x04", source="camera wrist")
    assert err.value.cause == "camera wrist:compressed"
    with pytest.raises(ImageFormatError, match="compressedDepth"):
        decode_compressed("16UC1; compressedDepth png", b"\x00" * 20)
