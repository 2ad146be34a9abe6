"""Where cv_bridge is installed, our decoding agrees with it on every encoding both support."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.perception.image import ENCODINGS, decode_image, to_rgb8

try:  # cv_bridge is not pip-installable; it exists only in a ROS distro install
    from cv_bridge import CvBridge
    from sensor_msgs.msg import Image
except ImportError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(
        f"cv_bridge is not installed here ({exc}); this parity test runs on a ROS install "
        "with ros-<distro>-cv-bridge",
        allow_module_level=True,
    )

H, W = 6, 9


def _message(encoding: str, bigendian: bool, rng: np.random.Generator) -> Image:
    info = ENCODINGS[encoding]
    shape = (H, W, info.channels)
    if info.dtype.kind == "f":
        pixels = rng.normal(size=shape).astype(info.dtype)
    else:
        lim = np.iinfo(info.dtype)
        pixels = rng.integers(lim.min, lim.max, size=shape, endpoint=True, dtype=info.dtype)
    raw = pixels.astype(info.dtype.newbyteorder(">" if bigendian else "<")).tobytes()
    step = W * info.pixel_bytes
    return Image(height=H, width=W, encoding=encoding, is_bigendian=int(bigendian), step=step, data=raw)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("bigendian", [False, True])
def test_passthrough_matches_cv_bridge(encoding: str, bigendian: bool) -> None:
    msg = _message(encoding, bigendian, np.random.default_rng(0))
    try:
        theirs = CvBridge().imgmsg_to_cv2(msg, desired_encoding="passthrough")
    except Exception as exc:  # cv_bridge does not support this encoding: nothing to compare
        pytest.skip(f"cv_bridge cannot decode {encoding}: {exc}")
    ours = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
    np.testing.assert_array_equal(ours, np.asarray(theirs).reshape(ours.shape))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_rgb8_matches_cv_bridge(encoding: str) -> None:
    msg = _message(encoding, False, np.random.default_rng(1))
    theirs = CvBridge().imgmsg_to_cv2(msg, desired_encoding="rgb8")
    ours = to_rgb8(
        decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data),
        encoding,
    )
    np.testing.assert_array_equal(ours, theirs)
