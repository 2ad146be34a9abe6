"""Zero-copy reading of serialized ``sensor_msgs/Image`` and ``CompressedImage`` (CDR bytes).

A subscription created with ``raw=True`` hands its callback the message as the bytes the
middleware delivered. rclpy's normal path turns those bytes into a Python message, copying the
pixel payload into an ``array.array`` on the way; for two 640x480 rgb8 cameras that copy and the
object building are the policy node's largest own cost. :func:`parse_image` instead reads the
few header fields with :mod:`struct` and returns the pixels as a ``memoryview`` into the
delivered bytes: no copy at all.

Layout (OMG CDR, as Fast DDS and Cyclone DDS write ROS 2 messages): a 4-byte encapsulation
header (representation id, big-endian ``uint16``, then two option bytes), then the fields in
declaration order, each aligned to its own size relative to the end of the encapsulation
header; strings and sequences are a ``uint32`` length followed by the elements (strings count
their NUL). Image and CompressedImage have no field wider than 4 bytes and no optional or
appendable members, so XCDR1 (``CDR_BE``/``CDR_LE``) and XCDR2 (``PLAIN_CDR2``) lay them out
identically; any other representation raises :class:`CdrError` and callers deserialize with
rclpy instead (:func:`read_image_message`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from vla_ros.perception.errors import ImageFormatError

#: representation ids whose layout this module reads, -> byte order
_REPRESENTATIONS = {0x0000: ">", 0x0001: "<", 0x0006: ">", 0x0007: "<"}


class CdrError(ImageFormatError):
    """Serialized bytes that are not a readable CDR Image/CompressedImage (truncated, unknown)."""


class CdrRepresentationError(CdrError):
    """The encapsulation names a representation this module does not read (rclpy may)."""


@dataclass(frozen=True)
class Stamp:
    """``builtin_interfaces/Time`` fields."""

    sec: int
    nanosec: int


@dataclass(frozen=True)
class Header:
    """``std_msgs/Header`` fields."""

    stamp: Stamp
    frame_id: str


@dataclass(frozen=True)
class RawImage:
    """A ``sensor_msgs/Image`` read from CDR; ``data`` is a view into the serialized bytes."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


@dataclass(frozen=True)
class RawCompressedImage:
    """A ``sensor_msgs/CompressedImage`` read from CDR; ``data`` views the serialized bytes."""

    header: Header
    format: str
    data: memoryview


class _Reader:
    """Sequential CDR reader over a buffer; offsets are aligned relative to the body start."""

    __slots__ = ("buf", "order", "pos", "source")

    def __init__(self, buf: Any, source: str) -> None:
        self.buf = memoryview(buf).cast("B") if not isinstance(buf, memoryview) else buf.cast("B")
        self.source = source
        if len(self.buf) < 4:
            raise self._error(f"{len(self.buf)} bytes is shorter than the 4-byte CDR encapsulation header")
        rep = (self.buf[0] << 8) | self.buf[1]
        order = _REPRESENTATIONS.get(rep)
        if order is None:
            raise CdrRepresentationError(
                f"{source}: CDR representation id 0x{rep:04x} is not plain CDR/CDR2",
                cause=f"{source}:cdr",
            )
        self.order = order
        self.pos = 4

    def _error(self, what: str) -> CdrError:
        return CdrError(
            f"{self.source}: cannot read the serialized message: {what}; the publisher sent "
            "bytes that are not a sensor_msgs message of this type",
            cause=f"{self.source}:cdr",
        )

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            have = len(self.buf) - self.pos
            raise self._error(f"truncated at byte {self.pos} (needs {n} more, has {have})")

    def u32(self) -> int:
        self.pos += -(self.pos - 4) % 4
        self._need(4)
        (value,) = struct.unpack_from(self.order + "I", self.buf, self.pos)
        self.pos += 4
        return value

    def i32(self) -> int:
        value = self.u32()
        return value - (1 << 32) if value >= 1 << 31 else value

    def u8(self) -> int:
        self._need(1)
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def octets(self) -> memoryview:
        n = self.u32()
        self._need(n)
        view = self.buf[self.pos : self.pos + n]
        self.pos += n
        return view

    def string(self) -> str:
        raw = self.octets()
        if len(raw) == 0:
            return ""  # some writers send length 0 for an empty string
        if raw[-1] != 0:
            raise self._error("a string is not NUL-terminated")
        return bytes(raw[:-1]).decode("utf-8", errors="replace")

    def header(self) -> Header:
        sec = self.i32()
        nanosec = self.u32()
        return Header(Stamp(sec, nanosec), self.string())


def parse_image(buf: Any, *, source: str = "image") -> RawImage:
    """Read a serialized ``sensor_msgs/Image``; ``data`` is a zero-copy view into ``buf``.

    The result aliases ``buf``: a mutable buffer (``bytearray``) changed later changes the pixels.

    Only the framing is checked here (:class:`CdrError` when it is unreadable); pixel-level
    consistency (``step``, ``len(data)``, encoding) is checked by the usual image functions.
    """
    r = _Reader(buf, source)
    header = r.header()
    height = r.u32()
    width = r.u32()
    encoding = r.string()
    is_bigendian = r.u8()
    step = r.u32()
    data = r.octets()
    return RawImage(header, height, width, encoding, is_bigendian, step, data)


def parse_compressed_image(buf: Any, *, source: str = "image") -> RawCompressedImage:
    """Read a serialized ``sensor_msgs/CompressedImage``; ``data`` is a view into ``buf``."""
    r = _Reader(buf, source)
    header = r.header()
    fmt = r.string()
    data = r.octets()
    return RawCompressedImage(header, fmt, data)


def read_image_message(buf: Any, msg_type: Any, *, source: str = "image") -> Any:
    """Serialized Image/CompressedImage -> a message-like object, zero-copy where possible.

    Plain CDR is read by :func:`parse_image` / :func:`parse_compressed_image`; another
    representation falls back to rclpy's ``deserialize_message`` (a copy, still correct).
    ``msg_type`` is ``sensor_msgs.msg.Image`` or ``sensor_msgs.msg.CompressedImage``. Bytes
    neither can read raise :class:`CdrError` (never rclpy's own exception types).
    """
    compressed = msg_type.__name__ == "CompressedImage"
    try:
        return parse_compressed_image(buf, source=source) if compressed else parse_image(buf, source=source)
    except CdrRepresentationError as exc:
        unknown = exc
    from rclpy.serialization import deserialize_message

    try:
        return deserialize_message(buf, msg_type)
    except Exception as exc:  # rclpy raises plain RuntimeError/TypeError for bad bytes
        raise CdrError(
            f"{unknown}, and rclpy cannot deserialize it either ({type(exc).__name__}: {exc}); the "
            f"publisher sent bytes that are not a {msg_type.__name__}",
            cause=f"{source}:cdr",
        ) from exc
