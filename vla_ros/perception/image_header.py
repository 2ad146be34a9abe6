"""Width and height of a compressed image read from its header, before any pixel is decoded.

A few hundred bytes of PNG can declare 32000 x 32000 pixels (4 GB once decoded). The decoded size
is therefore read from the format's own header and checked against a pixel limit *before* the
decoder allocates anything (:func:`check_compressed_size`). Only formats whose header is read
here are decoded at all; every other payload OpenCV could decode (JPEG 2000, PNM, HDR, EXR, GIF,
AVIF, ...) is rejected by its magic bytes.

Header layouts (from the format specifications):

- PNG: 8-byte signature, then the IHDR chunk: length, ``IHDR``, width, height (big-endian uint32)
  (PNG spec, 11.2.2).
- JPEG: ``FF D8``, then marker segments; the first SOFn segment (``C0``-``CF`` except ``C4``
  DHT, ``C8`` JPG, ``CC`` DAC) holds precision (1 byte), height, width (big-endian uint16)
  (ITU-T T.81, B.2.2). A height of 0 (defined later by a DNL marker) is refused.
- WebP: ``RIFF....WEBP`` then ``VP8 `` (14-bit sizes after the ``9D 01 2A`` start code, RFC 6386
  9.1), ``VP8L`` (14-bit ``size - 1`` fields after the ``2F`` signature) or ``VP8X`` (24-bit
  ``canvas - 1`` fields) (RFC 9649).
- TIFF: ``II*\\0`` / ``MM\\0*``, the first IFD's ImageWidth (256) and ImageLength (257) tags
  (TIFF 6.0, section 2 and 8); BigTIFF is refused.
- BMP: ``BM``, then the DIB header: 16-bit sizes in a 12-byte BITMAPCOREHEADER, else signed
  32-bit (a negative height is a top-down bitmap).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from vla_ros.perception.errors import ImageFormatError

#: formats whose header is read here, hence the only ones ever handed to the decoder
HEADER_FORMATS = ("JPEG", "PNG", "WebP", "TIFF", "BMP")
#: default pixel limit (50 megapixels: above any robot camera; 200 MB as decoded BGRA8)
DEFAULT_MAX_PIXELS = 50_000_000

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: SOFn markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: markers without a length field: TEM, RST0-7, SOI, EOI
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


@dataclass(frozen=True)
class ImageHeader:
    """What a compressed image's header declares: its format and its size in pixels."""

    format: str  # one of HEADER_FORMATS
    width: int
    height: int

    @property
    def pixels(self) -> int:
        """``width * height``."""
        return self.width * self.height


def _error(source: str, what: str, cause: str = "compressed") -> ImageFormatError:
    return ImageFormatError(f"{source}: {what}", cause=f"{source}:{cause}")


def _png(b: bytes, source: str) -> tuple[int, int]:
    if len(b) < 24 or b[12:16] != b"IHDR":
        raise _error(source, "PNG without an IHDR chunk first; the payload is truncated or not a PNG")
    return struct.unpack(">II", b[16:24])


def _jpeg(b: bytes, source: str) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(b):
        if b[pos] != 0xFF:
            raise _error(source, f"JPEG marker expected at byte {pos}, found 0x{b[pos]:02x}")
        marker = b[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # EOI or SOS before any frame header
            break
        (length,) = struct.unpack_from(">H", b, pos + 2)
        if marker in _JPEG_SOF:
            if pos + 9 > len(b):
                break
            height, width = struct.unpack_from(">HH", b, pos + 5)
            if height == 0:
                raise _error(source, "JPEG frame height 0 (set later by a DNL marker) is not supported")
            return width, height
        if length < 2:
            raise _error(source, f"JPEG segment 0x{marker:02x} at byte {pos} has length {length}")
        pos += 2 + length
    raise _error(source, "JPEG without a frame header (SOFn) before its scan data; truncated or corrupt")


def _webp(b: bytes, source: str) -> tuple[int, int]:
    chunk = b[12:16]
    if chunk == b"VP8 " and len(b) >= 30 and b[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", b, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(b) >= 25 and b[20] == 0x2F:
        (bits,) = struct.unpack_from("<I", b, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(b) >= 30:
        width = int.from_bytes(b[24:27], "little") + 1
        height = int.from_bytes(b[27:30], "little") + 1
        return width, height
    raise _error(source, f"WebP with an unreadable first chunk {chunk!r}")


def _tiff(b: bytes, source: str) -> tuple[int, int]:
    order = "<" if b[:2] == b"II" else ">"
    if len(b) < 8 or struct.unpack_from(order + "H", b, 2)[0] != 42:
        raise _error(source, "TIFF that is not classic TIFF (BigTIFF is not supported)")
    (ifd,) = struct.unpack_from(order + "I", b, 4)
    if ifd + 2 > len(b):
        raise _error(source, f"TIFF first IFD at byte {ifd} is past the end ({len(b)} bytes)")
    (count,) = struct.unpack_from(order + "H", b, ifd)
    size: dict[int, int] = {}
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(b):
            break
        tag, kind, n = struct.unpack_from(order + "HHI", b, entry)
        if tag in (256, 257) and n == 1 and kind in (3, 4):  # SHORT or LONG
            fmt = order + ("H" if kind == 3 else "I")
            size[tag] = struct.unpack_from(fmt, b, entry + 8)[0]
    if 256 not in size or 257 not in size:
        raise _error(source, "TIFF whose first IFD lacks ImageWidth/ImageLength")
    return size[256], size[257]


def _bmp(b: bytes, source: str) -> tuple[int, int]:
    if len(b) < 26:
        raise _error(source, "BMP shorter than its headers")
    (dib,) = struct.unpack_from("<I", b, 14)
    if dib == 12:
        return struct.unpack_from("<HH", b, 18)
    width, height = struct.unpack_from("<ii", b, 18)
    return abs(width), abs(height)


def read_image_header(data: Any, *, source: str = "image") -> ImageHeader:
    """The format and declared size of a compressed image, from its first bytes only.

    ``data``: bytes-like (``bytes``, ``memoryview``, ``array.array``, uint8 NumPy). Raises
    :class:`ImageFormatError` (cause ``<source>:compressed``) for a format not in
    :data:`HEADER_FORMATS` or a header that cannot be read.
    """
    head = bytes(memoryview(data).cast("B")[:65536])  # a JPEG's SOFn follows EXIF/ICC segments
    if head.startswith(_PNG_SIGNATURE):
        fmt, (width, height) = "PNG", _png(head, source)
    elif head.startswith(b"\xff\xd8"):
        fmt, (width, height) = "JPEG", _jpeg(head, source)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        fmt, (width, height) = "WebP", _webp(head, source)
    elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        fmt, (width, height) = "TIFF", _tiff(head, source)
    elif head.startswith(b"BM"):
        fmt, (width, height) = "BMP", _bmp(head, source)
    else:
        raise _error(
            source,
            f"compressed payload of {len(memoryview(data).cast('B'))} bytes starting {head[:8].hex(' ')} "
            f"is not one of {', '.join(HEADER_FORMATS)}; publish JPEG or PNG (image_transport's "
            "compressed plugin)",
        )
    if width <= 0 or height <= 0:
        raise _error(source, f"{fmt} header declares an empty image {width}x{height}")
    return ImageHeader(fmt, int(width), int(height))


def check_pixel_limit(
    width: int, height: int, max_pixels: int, *, source: str = "image", what: str = ""
) -> None:
    """Raise :class:`ImageFormatError` (cause ``<source>:pixels``) when ``width*height > max_pixels``."""
    if width * height > max_pixels:
        raise _error(
            source,
            f"{what or 'image'} is {width}x{height} ({width * height / 1e6:.1f} MP), over the "
            f"max_image_pixels limit of {max_pixels} ({max_pixels / 1e6:.1f} MP); not decoded. "
            "Publish smaller images or raise max_image_pixels",
            cause="pixels",
        )


def check_compressed_size(data: Any, max_pixels: int, *, source: str = "image") -> ImageHeader:
    """:func:`read_image_header` then :func:`check_pixel_limit`; the header when it passes."""
    header = read_image_header(data, source=source)
    check_pixel_limit(
        header.width, header.height, max_pixels, source=source, what=f"compressed {header.format} image"
    )
    return header
