"""Sensor messages -> policy observations, without ROS: image decoding, staleness, history.

Everything here works on plain message fields (duck-typed), so it is unit-tested without rclpy
and reused by offline evaluation.
"""

from vla_ros.perception.errors import (
    ImageFormatError,
    MissingInputError,
    MissingJointError,
    NonFiniteInputError,
    ObservationError,
    StaleInputError,
)
from vla_ros.perception.image import (
    ENCODINGS,
    RGB_CONVERTIBLE,
    check_image_fields,
    decode_compressed,
    decode_image,
    msg_to_rgb8,
    to_rgb8,
)
from vla_ros.perception.observation import (
    Assembly,
    ObservationAssembler,
    ObservationRejected,
    StalenessLimits,
    TimedBuffer,
    select_history,
)
from vla_ros.util.faults import FaultLog
from vla_ros.util.ns import ns_to_stamp, seconds_to_ns, stamp_to_ns

__all__ = [
    "ENCODINGS",
    "RGB_CONVERTIBLE",
    "Assembly",
    "FaultLog",
    "ImageFormatError",
    "MissingInputError",
    "MissingJointError",
    "NonFiniteInputError",
    "ObservationAssembler",
    "ObservationError",
    "ObservationRejected",
    "StaleInputError",
    "StalenessLimits",
    "TimedBuffer",
    "check_image_fields",
    "decode_compressed",
    "decode_image",
    "msg_to_rgb8",
    "ns_to_stamp",
    "seconds_to_ns",
    "select_history",
    "stamp_to_ns",
    "to_rgb8",
]
