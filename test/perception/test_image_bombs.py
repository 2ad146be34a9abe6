"""Decompression bombs and undecodable payloads: the declared size is checked before decoding."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from vla_ros.perception import ImageFormatError, decode_compressed, msg_to_rgb8
from vla_ros.perception.image import check_compressed
from vla_ros.perception.image_header import DEFAULT_MAX_PIXELS, read_image_header

CAM = "camera 'wrist'"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _zero_rows(width: int, height: int) -> bytes:
    z = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    return b"".join(z.compress(row) for _ in range(height)) + z.flush()


class _Compressed:
    def __init__(self, fmt: str, data: bytes) -> None:
        self.format, self.data = fmt, data


def test_a_real_png_bomb_is_rejected_from_its_header() -> None:
    """A complete, valid 8000x8000 PNG of zeros (64 MP, ~64 KB): over the 50 MP default."""
    bomb = _png(8000, 8000, _zero_rows(8000, 8000))
    assert len(bomb) < 100_000
    with pytest.raises(ImageFormatError) as err:
        msg_to_rgb8(_Compressed("png", bomb), source=CAM)
    assert err.value.cause == f"{CAM}:pixels"
    assert str(err.value) == (
        f"{CAM}: compressed PNG image is 8000x8000 (64.0 MP), over the max_image_pixels limit of "
        f"{DEFAULT_MAX_PIXELS} (50.0 MP); not decoded. Publish smaller images or raise max_image_pixels"
    )


def test_the_32000_square_png_is_rejected_before_the_decoder_runs() -> None:
    # the IDAT is not even a zlib stream: a decoder that ran first would fail differently
    bomb = _png(32000, 32000, b"not zlib at all")
    assert read_image_header(bomb).pixels == 1_024_000_000
    with pytest.raises(ImageFormatError, match=r"32000x32000 \(1024.0 MP\), over .* of 1000000 ") as err:
        decode_compressed("rgb8; png compressed bgr8", bomb, source=CAM, max_pixels=1_000_000)
    assert err.value.cause == f"{CAM}:pixels"


def _jpeg_with_size(width: int, height: int) -> bytes:
    _, jpg = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    data = bytearray(jpg.tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def test_jpeg_sof_size_is_checked_after_exif_segments() -> None:
    jpg = _jpeg_with_size(30000, 20000)
    exif = b"\xff\xe1" + struct.pack(">H", 2 + 4000) + b"Exif\x00\x00" + bytes(3994)
    with_exif = jpg[:2] + exif + jpg[2:]
    assert read_image_header(with_exif).width == 30000 and read_image_header(with_exif).height == 20000
    with pytest.raises(ImageFormatError, match=r"compressed JPEG image is 30000x20000 \(600.0 MP\)"):
        decode_compressed("jpeg", with_exif, source=CAM)
    # under the limit the same header passes the check
    assert check_compressed("jpeg", _jpeg_with_size(640, 480), 640 * 480, source=CAM).pixels == 640 * 480


@pytest.mark.parametrize(
    ("ext", "params", "fmt"),
    [
        (".png", [], "PNG"),
        (".jpg", [], "JPEG"),
        (".webp", [], "WebP"),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101], "WebP"),
        (".tiff", [], "TIFF"),
        (".bmp", [], "BMP"),
    ],
)
def test_every_decoded_format_has_its_size_read_from_the_header(ext, params, fmt) -> None:
    _, buf = cv2.imencode(ext, np.zeros((37, 53, 3), np.uint8), params)
    header = read_image_header(buf.tobytes())
    assert (header.format, header.width, header.height) == (fmt, 53, 37)
    with pytest.raises(
        ImageFormatError, match=r"is 53x37 \(0.0 MP\), over the max_image_pixels limit of 1960"
    ):
        decode_compressed("png", buf.tobytes(), source=CAM, max_pixels=53 * 37 - 1)


@pytest.mark.parametrize("ext", [".ppm", ".pam", ".pfm", ".hdr", ".sr", ".gif", ".avif"])
def test_formats_whose_header_is_not_read_are_rejected_undecoded(ext) -> None:
    image = np.zeros((8, 8, 3), np.float32 if ext in (".pfm", ".hdr") else np.uint8)
    ok, buf = cv2.imencode(ext, image)
    assert ok and cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) is not None  # OpenCV would decode it
    with pytest.raises(ImageFormatError, match=r"is not one of JPEG, PNG, WebP, TIFF, BMP") as err:
        decode_compressed("jpeg", buf.tobytes(), source=CAM)
    assert err.value.cause == f"{CAM}:compressed"


def test_compressed_depth_payload_is_size_checked_too() -> None:
    header = struct.pack("<iff", 0, 0.0, 0.0)
    bomb = header + _png(20000, 20000, b"x")
    with pytest.raises(ImageFormatError, match=r"20000x20000 \(400.0 MP\)") as err:
        decode_compressed("16UC1; compressedDepth png", bomb, source=CAM)
    assert err.value.cause == f"{CAM}:pixels"
    with pytest.raises(ImageFormatError, match="RVL depth codec"):
        decode_compressed("16UC1; compressedDepth rvl", header + b"\x00" * 64, source=CAM)


def test_corrupt_and_truncated_payloads_are_reported_in_the_error_not_on_stderr(capfd) -> None:
    rng = np.random.default_rng(0)
    _, jpg = cv2.imencode(".jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    bad = bytearray(jpg.tobytes())
    mid = len(bad) // 2
    bad[mid : mid + 50] = bytes(50)
    with pytest.raises(ImageFormatError, match=r"JPEG image is corrupt or truncated .*Corrupt JPEG") as err:
        decode_compressed("jpeg", bytes(bad), source=CAM)
    assert err.value.cause == f"{CAM}:compressed"
    _, png = cv2.imencode(".png", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(
        ImageFormatError,
        match=r"could not decode the PNG image \(\d+ bytes of CompressedImage format 'png'\)$",
    ):
        decode_compressed("png", png.tobytes()[: len(png) // 2], source=CAM)
    crc = bytearray(png.tobytes())
    crc[60:80] = bytes(20)
    with pytest.raises(ImageFormatError, match=r"PNG .*libpng error"):
        decode_compressed("png", bytes(crc), source=CAM)
    out, errout = capfd.readouterr()
    assert errout == "" and out == ""
