"""ROS image messages -> NumPy, from the raw message fields, without ROS and without cv_bridge.

``decode_image`` returns a *view* over the message's ``data`` buffer (no copy) honouring
``step`` (row padding), ``encoding`` and ``is_bigendian``. ``to_rgb8`` then gives the
``uint8 [H, W, 3]`` RGB array the runtime expects, again as a view whenever the conversion is a
pure channel selection/reordering (rgb8, bgr8, rgba8, bgra8, mono8); only conversions that
compute new values (16-bit, depth) allocate. Resizing to the card's image size is *not* done here:
by contract the runtime's preprocessing resizes, so images travel at native size.

Encoding conventions (as in sensor_msgs/image_encodings.hpp and cv_bridge):

- ``rgb8 bgr8 rgba8 bgra8 mono8``, their 16-bit versions ``rgb16 bgr16 rgba16 bgra16 mono16``;
- OpenCV-style ``{8U,8S,16U,16S,32S,32F,64F}C{1,2,3,4}``; ``8UC3``/``8UC4`` are treated as BGR/BGRA
  (the OpenCV channel order) when converted to RGB;
- ``16UC1`` is depth in millimetres and ``32FC1`` depth in metres when converted to RGB: depth is
  mapped linearly from ``[0, depth_max_m]`` to ``[0, 255]``, invalid depth (0, NaN, inf) -> 0,
  and replicated to three channels. 16-bit intensity images are scaled by ``>> 8``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_ros.perception.decode import damaged, imdecode
from vla_ros.perception.errors import ImageFormatError
from vla_ros.perception.image_header import DEFAULT_MAX_PIXELS, ImageHeader, check_compressed_size


@dataclass(frozen=True)
class EncodingInfo:
    """Element type and channel count of one ``sensor_msgs/Image`` encoding."""

    name: str
    dtype: np.dtype
    channels: int

    @property
    def pixel_bytes(self) -> int:
        """Bytes per pixel (all channels)."""
        return self.dtype.itemsize * self.channels


def _build_table() -> dict[str, EncodingInfo]:
    table: dict[str, EncodingInfo] = {}

    def add(name: str, dtype: str, channels: int) -> None:
        table[name] = EncodingInfo(name, np.dtype(dtype), channels)

    for name, ch in (("rgb", 3), ("bgr", 3), ("rgba", 4), ("bgra", 4), ("mono", 1)):
        add(f"{name}8", "u1", ch)
        add(f"{name}16", "u2", ch)
    for bits, kind, dtype in (
        (8, "U", "u1"),
        (8, "S", "i1"),
        (16, "U", "u2"),
        (16, "S", "i2"),
        (32, "S", "i4"),
        (32, "F", "f4"),
        (64, "F", "f8"),
    ):
        for ch in (1, 2, 3, 4):
            add(f"{bits}{kind}C{ch}", dtype, ch)
    return table


ENCODINGS: dict[str, EncodingInfo] = _build_table()

#: Encodings :func:`to_rgb8` can turn into an RGB image for a policy.
RGB_CONVERTIBLE: tuple[str, ...] = (
    "rgb8",
    "bgr8",
    "rgba8",
    "bgra8",
    "mono8",
    "8UC1",
    "8UC3",
    "8UC4",
    "rgb16",
    "bgr16",
    "rgba16",
    "bgra16",
    "mono16",
    "16UC1",
    "32FC1",
)


def encoding_info(encoding: str, *, source: str = "image") -> EncodingInfo:
    """Look up ``encoding``; unknown names raise :class:`ImageFormatError` listing known ones."""
    info = ENCODINGS.get(encoding)
    if info is None:
        raise ImageFormatError(
            f"{source}: unknown encoding {encoding!r}; supported: {', '.join(RGB_CONVERTIBLE)} "
            "(and OpenCV-style NUC/NSC/NFC types); configure the camera driver to publish one",
            cause=f"{source}:encoding",
        )
    return info


def check_image_fields(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data_len: int,
    *,
    source: str = "image",
) -> EncodingInfo:
    """Validate an Image's header fields in O(1) (cheap enough for a subscription callback).

    Raises :class:`ImageFormatError` for an unknown encoding, an empty image, a ``step`` shorter
    than one row of pixels, or ``len(data) != step * height``.
    """
    info = encoding_info(encoding, source=source)
    if height <= 0 or width <= 0:
        raise ImageFormatError(
            f"{source}: empty image {width}x{height} (width x height); the camera driver must "
            "publish a non-empty image",
            cause=f"{source}:size",
        )
    row = width * info.pixel_bytes
    if step < row:
        raise ImageFormatError(
            f"{source}: step={step} is shorter than one row of {width} {encoding} pixels "
            f"({row} bytes); step must be >= width * {info.pixel_bytes}",
            cause=f"{source}:step",
        )
    if data_len != step * height:
        raise ImageFormatError(
            f"{source}: len(data)={data_len} but step*height = {step}*{height} = "
            f"{step * height}; the message is truncated or its step/height are wrong",
            cause=f"{source}:data_len",
        )
    return info


def decode_image(
    encoding: str,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool | int,
    data: Any,
    *,
    source: str = "image",
) -> np.ndarray:
    """Zero-copy view of an Image's pixels: ``[H, W]`` for one channel, else ``[H, W, C]``.

    ``data`` is anything exposing the buffer protocol (``array.array``, ``bytes``,
    ``memoryview``, NumPy). The result shares memory with it (read-only if ``data`` is) and has
    the message's byte order, so values are correct whatever ``is_bigendian`` says.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    info = check_image_fields(encoding, height, width, step, buf.size, source=source)
    dtype = info.dtype
    if dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">" if is_bigendian else "<")
    item = dtype.itemsize
    if info.channels == 1:
        shape: tuple[int, ...] = (height, width)
        strides: tuple[int, ...] = (step, item)
    else:
        shape = (height, width, info.channels)
        strides = (step, info.channels * item, item)
    return np.ndarray(shape=shape, dtype=dtype, buffer=buf, strides=strides)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.broadcast_to(gray[:, :, None], (*gray.shape, 3))


def _depth_to_u8(depth_m: np.ndarray, depth_max_m: float) -> np.ndarray:
    scaled = np.nan_to_num(depth_m * np.float32(255.0 / depth_max_m), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(scaled, 0.0, 255.0).astype(np.uint8)


def to_rgb8(
    pixels: np.ndarray,
    encoding: str,
    *,
    depth_max_m: float = 2.0,
    source: str = "image",
) -> np.ndarray:
    """Convert a :func:`decode_image` result to ``uint8 [H, W, 3]`` RGB.

    Pure channel selections are returned as views (no copy): rgb8 as is, bgr8/8UC3 reversed,
    rgba8 sliced, bgra8/8UC4 sliced and reversed, mono8/8UC1 broadcast. Encodings that need
    arithmetic (16-bit, depth) return a new array. Others raise :class:`ImageFormatError`.
    """
    if depth_max_m <= 0:
        raise ValueError(f"depth_max_m must be > 0 metres, got {depth_max_m}")
    if encoding in ("rgb8",):
        return pixels
    if encoding in ("bgr8", "8UC3"):
        return pixels[:, :, ::-1]
    if encoding == "rgba8":
        return pixels[:, :, :3]
    if encoding in ("bgra8", "8UC4"):
        return pixels[:, :, 2::-1]
    if encoding in ("mono8", "8UC1"):
        return _gray_to_rgb(pixels)
    if encoding in ("rgb16", "bgr16", "rgba16", "bgra16"):
        rgb = to_rgb8(pixels, encoding.replace("16", "8"), source=source)
        return (rgb >> 8).astype(np.uint8)
    if encoding == "mono16":
        return _gray_to_rgb((pixels >> 8).astype(np.uint8))
    if encoding == "16UC1":  # depth, millimetres
        return _gray_to_rgb(_depth_to_u8(pixels.astype(np.float32) * 1e-3, depth_max_m))
    if encoding == "32FC1":  # depth, metres
        return _gray_to_rgb(_depth_to_u8(pixels.astype(np.float32), depth_max_m))
    raise ImageFormatError(
        f"{source}: encoding {encoding!r} cannot be converted to an RGB policy input; "
        f"use one of {', '.join(RGB_CONVERTIBLE)}",
        cause=f"{source}:encoding",
    )


def image_msg_to_rgb8(msg: Any, *, depth_max_m: float = 2.0, source: str = "image") -> np.ndarray:
    """``sensor_msgs/Image``-like object (duck-typed fields) -> ``uint8 [H, W, 3]`` RGB."""
    pixels = decode_image(
        msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data, source=source
    )
    return to_rgb8(pixels, msg.encoding, depth_max_m=depth_max_m, source=source)


def compressed_payload(fmt: str, data: Any, *, source: str = "image") -> memoryview:
    """The encoded image inside a ``CompressedImage``'s ``data``: all of it, or after the 12-byte
    ``ConfigHeader`` of compressed_depth_image_transport ("compressedDepth" formats).

    Raises :class:`ImageFormatError` for a compressedDepth codec other than PNG (``rvl``).
    """
    view = memoryview(data).cast("B")
    if "compresseddepth" not in fmt.lower():
        return view
    if "rvl" in fmt.lower():
        raise ImageFormatError(
            f"{source}: CompressedImage format {fmt!r} (RVL depth codec) is not supported; set the "
            "compressedDepth plugin's format to png",
            cause=f"{source}:compressed",
        )
    return view[_DEPTH_HEADER:]


def check_compressed(fmt: str, data: Any, max_pixels: int, *, source: str = "image") -> ImageHeader:
    """O(header) check of a ``CompressedImage`` before anything is decoded (callback-cheap).

    Reads the declared size from the payload's header (:mod:`vla_ros.perception.image_header`)
    and raises :class:`ImageFormatError` for an unreadable header, a format whose header is not
    read (cause ``...:compressed``) or more than ``max_pixels`` pixels (cause ``...:pixels``).
    """
    try:
        return check_compressed_size(compressed_payload(fmt, data, source=source), max_pixels, source=source)
    except ImageFormatError as exc:
        if exc.cause.endswith(":pixels"):  # names camera, size and limit: complete as it is
            raise
        raise ImageFormatError(f"{exc} (CompressedImage format {fmt!r})", cause=exc.cause) from None


def _decoder_error(source: str, fmt: str, size: int, messages: list[str], what: str) -> ImageFormatError:
    said = f"; the decoder said: {' | '.join(messages)}" if messages else ""
    return ImageFormatError(
        f"{source}: {what} ({size} bytes of CompressedImage format {fmt!r}){said}",
        cause=f"{source}:compressed",
    )


def _decoded_encoding(pixels: np.ndarray, fmt: str, original: str, source: str) -> str:
    """The raw encoding a decoded array is in (OpenCV gives colour as BGR(A))."""
    bits = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(pixels.dtype)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    info = ENCODINGS.get(original)
    if channels == 1 and info is not None and info.channels == 1 and info.dtype == pixels.dtype:
        return original  # e.g. 16UC1 depth or 32FC1 sent as PNG/TIFF: converted as the raw image
    if bits is None or channels not in (1, 3, 4):
        raise ImageFormatError(
            f"{source}: CompressedImage {fmt!r} decoded to {channels} channel(s) of {pixels.dtype}; "
            "publish 8- or 16-bit grey, colour or colour+alpha images",
            cause=f"{source}:compressed",
        )
    if channels == 1:
        return f"mono{bits}"
    # image_transport writes "<enc>; <codec> compressed bgr8"; only old publishers encoded RGB
    order = "rgb" if "compressed rgb" in fmt.lower() else "bgr"
    return f"{order}{'a' if channels == 4 else ''}{bits}"


def decode_compressed(
    fmt: str,
    data: Any,
    *,
    source: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray, str]:
    """Decode a ``sensor_msgs/CompressedImage`` payload; returns ``(pixels, encoding)``.

    ``fmt`` is the message's ``format`` field as written by image_transport plugins:
    ``"jpeg"``, ``"png"``, ``"rgb8; jpeg compressed bgr8"``, ``"16UC1; compressedDepth png"``,
    ``"32FC1; compressedDepth"``. The result is what the raw message would have held in the
    returned encoding: colour as ``bgr8``/``bgra8``/``bgr16``/``bgra16`` (``rgb...`` when the
    format says "compressed rgb"), grey as the original one-channel encoding named in ``fmt``
    (``16UC1`` depth, ...) or ``mono8``/``mono16``.

    The declared size is checked against ``max_pixels`` before decoding (:func:`check_compressed`).
    Raises :class:`ImageFormatError` for a bomb (cause ``...:pixels``), a format whose header is not
    read, a payload the decoder rejects or reports as corrupt or truncated (its own words are in the
    message; nothing is written to stderr), or an array no raw encoding describes.
    """
    header = check_compressed(fmt, data, max_pixels, source=source)
    view = compressed_payload(fmt, data, source=source)
    original = fmt.split(";", 1)[0].strip() if ";" in fmt else ""
    if "compresseddepth" in fmt.lower():
        if header.format != "PNG":
            raise _decoder_error(
                source, fmt, len(view), [], f"compressedDepth payload is {header.format}, not PNG"
            )
        return _decode_compressed_depth(np.frombuffer(data, dtype=np.uint8), original or "16UC1", fmt, source)
    pixels, messages = imdecode(np.frombuffer(view, dtype=np.uint8))
    if pixels is None:
        raise _decoder_error(source, fmt, len(view), messages, f"could not decode the {header.format} image")
    if damaged(messages):
        raise _decoder_error(
            source, fmt, len(view), messages, f"the {header.format} image is corrupt or truncated"
        )
    return pixels, _decoded_encoding(pixels, fmt, original, source)


#: compressed_depth_image_transport's ConfigHeader: int32 format, float32 depthQuantA, depthQuantB
_DEPTH_HEADER = 12


def _decode_compressed_depth(buf: np.ndarray, original: str, fmt: str, source: str) -> tuple[np.ndarray, str]:
    # compressed_depth_image_transport: 12-byte ConfigHeader followed by a 16-bit PNG.
    pixels, messages = imdecode(buf[_DEPTH_HEADER:]) if buf.size > _DEPTH_HEADER else (None, [])
    if pixels is None or pixels.dtype != np.uint16 or pixels.ndim != 2 or damaged(messages):
        raise _decoder_error(
            source,
            fmt,
            int(buf.size),
            messages,
            "could not decode as compressedDepth (12-byte header + 16-bit PNG)",
        )
    if original == "16UC1":
        return pixels, "16UC1"
    if original == "32FC1":
        quant_a, quant_b = np.frombuffer(buf[4:12].tobytes(), dtype="<f4")
        inv = pixels.astype(np.float32)
        with np.errstate(divide="ignore"):
            depth = np.where(inv > 0, quant_a / (inv - quant_b), np.nan).astype(np.float32)
        return depth, "32FC1"
    raise ImageFormatError(
        f"{source}: compressedDepth of encoding {original!r} is not supported; use 16UC1 or 32FC1",
        cause=f"{source}:compressed",
    )


def msg_to_rgb8(
    msg: Any,
    *,
    depth_max_m: float = 2.0,
    source: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage`` (duck-typed) -> RGB uint8 ``[H, W, 3]``.

    Compressed payloads are size-checked against ``max_pixels`` before decoding. Raises
    :class:`ImageFormatError` for anything that does not give a ``uint8 [H, W, 3]`` array, so no
    other array ever reaches a policy.
    """
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        pixels, encoding = decode_compressed(msg.format, msg.data, source=source, max_pixels=max_pixels)
        rgb = to_rgb8(pixels, encoding, depth_max_m=depth_max_m, source=source)
        what = f"CompressedImage {msg.format!r} decoded as {encoding}"
    else:
        rgb = image_msg_to_rgb8(msg, depth_max_m=depth_max_m, source=source)
        what = f"encoding {msg.encoding!r}"
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageFormatError(
            f"{source}: {what} gave a {rgb.dtype} array of shape {rgb.shape}, not uint8 [H, W, 3]; "
            f"publish one of {', '.join(RGB_CONVERTIBLE)}",
            cause=f"{source}:encoding",
        )
    return rgb
