"""ROS-free sensor messages for the policy-step tests: ``rosbags`` types, as a bag reader yields them."""

from __future__ import annotations

import numpy as np
from rosbags.typesys import Stores, get_typestore

TYPES = get_typestore(Stores.ROS2_HUMBLE).types
NS = 1_000_000_000


def header(stamp_ns: int, frame_id: str = "cam"):
    """A std_msgs/Header stamped ``stamp_ns``."""
    sec, nanosec = divmod(int(stamp_ns), NS)
    return TYPES["std_msgs/msg/Header"](
        stamp=TYPES["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )


def image(stamp_ns: int, pixels: np.ndarray, encoding: str = "rgb8", pad: int = 0):
    """A sensor_msgs/Image from ``[H, W, C]`` or ``[H, W]`` pixels (rows padded by ``pad`` bytes)."""
    h, w = pixels.shape[:2]
    rows = np.ascontiguousarray(pixels).reshape(h, -1).view(np.uint8)
    if pad:
        rows = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1)
    return TYPES["sensor_msgs/msg/Image"](
        header=header(stamp_ns),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=rows.shape[1],
        data=rows.reshape(-1).copy(),
    )


def compressed(stamp_ns: int, fmt: str, data: bytes):
    """A sensor_msgs/CompressedImage."""
    return TYPES["sensor_msgs/msg/CompressedImage"](
        header=header(stamp_ns), format=fmt, data=np.frombuffer(data, np.uint8).copy()
    )


def joints(stamp_ns: int, names, positions):
    """A sensor_msgs/JointState (positions only)."""
    empty = np.zeros(0, np.float64)
    return TYPES["sensor_msgs/msg/JointState"](
        header=header(stamp_ns),
        name=list(names),
        position=np.asarray(positions, np.float64),
        velocity=empty,
        effort=empty,
    )


def stamp_ns(msg) -> int:
    """A message's header stamp in integer nanoseconds."""
    return msg.header.stamp.sec * NS + msg.header.stamp.nanosec
