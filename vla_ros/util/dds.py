"""The Fast DDS profile for camera-sized messages (``config/fastdds_large_data.xml``).

Fast DDS's default shared-memory segment (512 KiB) is smaller than one 640x480 rgb8 frame
(921,600 B), so frames between processes fall back to fragmented UDP: tens of milliseconds and
lost samples. The profile shipped in ``config/`` gives shared memory a 32 MiB segment. The
segment of the *publishing* process carries the samples, so every process of the robot's graph
(camera drivers included) should run with it; ``./env.sh``, the vla_ros executables and
``vla-ros`` set ``FASTDDS_DEFAULT_PROFILES_FILE`` to it when it is unset (:func:`use_large_data_profile`),
and ``vla-ros doctor`` checks it (:func:`shm_segment_bytes`).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, MutableMapping
from pathlib import Path

PROFILE_NAME = "fastdds_large_data.xml"
PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
#: Fast DDS's shared-memory segment size when no profile sets one
FASTDDS_DEFAULT_SEGMENT = 512 * 1024
#: one 640x480 rgb8 sensor_msgs/Image payload
VGA_RGB8_BYTES = 640 * 480 * 3
FASTDDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")


def large_data_profile(env: Mapping[str, str] | None = None) -> Path | None:
    """The installed (ament share) or source-tree ``fastdds_large_data.xml``; None if absent."""
    env = os.environ if env is None else env
    candidates = [
        Path(prefix) / "share" / "vla_ros" / "config" / PROFILE_NAME
        for prefix in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
        if prefix
    ]
    candidates.append(Path(__file__).resolve().parents[2] / "config" / PROFILE_NAME)
    return next((p for p in candidates if p.is_file()), None)


def uses_fastdds(env: Mapping[str, str]) -> bool:
    """Whether the RMW in ``env`` is Fast DDS (the default when ``RMW_IMPLEMENTATION`` is unset)."""
    return env.get("RMW_IMPLEMENTATION", "").strip() in ("", *FASTDDS_RMWS)


def use_large_data_profile(env: MutableMapping[str, str] | None = None) -> Path | None:
    """Point ``FASTDDS_DEFAULT_PROFILES_FILE`` at the shipped profile unless the user set one.

    Must run before the process's first ``rclpy.init``. Returns the profile now in effect
    (the user's or ours), or None (another RMW, or the profile file is not found).
    """
    env = os.environ if env is None else env
    if not uses_fastdds(env):
        return None
    current = env.get(PROFILE_ENV, "").strip()
    if current:
        return Path(current)
    profile = large_data_profile(env)
    if profile is not None:
        env[PROFILE_ENV] = str(profile)
    return profile


def shm_segment_bytes(xml_text: str) -> int | None:
    """The largest ``segment_size`` of an SHM transport the profile's participants use.

    None when the profile declares no SHM transport (then Fast DDS's built-in transports and
    their 512 KiB segment apply, unless the profile disables them). Raises ValueError for XML
    that does not parse.
    """
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ValueError(f"not valid XML: {exc}") from exc
    sizes = []
    for desc in root.iter():
        if not desc.tag.endswith("transport_descriptor"):
            continue
        fields = {child.tag.split("}")[-1]: (child.text or "").strip() for child in desc}
        if fields.get("type", "").upper() == "SHM":
            try:
                sizes.append(int(fields.get("segment_size") or FASTDDS_DEFAULT_SEGMENT))
            except ValueError as exc:
                raise ValueError(f"segment_size {fields.get('segment_size')!r} is not an integer") from exc
    return max(sizes) if sizes else None


__all__ = [
    "FASTDDS_DEFAULT_SEGMENT",
    "PROFILE_ENV",
    "VGA_RGB8_BYTES",
    "large_data_profile",
    "shm_segment_bytes",
    "use_large_data_profile",
    "uses_fastdds",
]
