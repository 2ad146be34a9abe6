"""Reading rosbag2 recordings (sqlite3 or mcap) without ROS, through ``rosbags``.

:class:`BagSource` opens a bag, checks that the topics a replay needs are there with the right
types, and yields ``(log_time_ns, topic, message)`` in recording order. Messages are
``rosbags`` objects, which every vla_ros consumer (image conversion, the observation assembler,
the controller) takes as it takes rclpy messages. Bags recorded without message definitions
(``ros2 bag`` before Iron) are read with the standard definitions of ``--distro``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: message types each role accepts
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
STRING_TYPE = "std_msgs/msg/String"


class BagError(ValueError):
    """A bag cannot be read or lacks what the replay needs; the message names it and the fix."""


@dataclass(frozen=True)
class TopicInfo:
    """One recorded topic."""

    name: str
    msgtype: str
    count: int


def resolve_topic(topic: str, namespace: str = "/") -> str:
    """A node-relative topic (``joint_states``) as the bag names it (``/ns/joint_states``)."""
    if topic.startswith("/"):
        return topic
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{topic}"


class BagSource:
    """An open rosbag2 (or ROS 1) recording; use as a context manager.

    ``distro`` names the message definitions for bags that do not carry their own
    (``humble``, ``jazzy``, ``kilted``, ...; sensor_msgs and std_msgs are the same in all).
    """

    def __init__(self, path: str | Path, distro: str = "humble") -> None:
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        self.path = Path(path)
        if not self.path.exists():
            raise BagError(
                f"bag {str(self.path)!r} does not exist; pass the folder `ros2 bag record -o` made "
                "(it holds metadata.yaml and a .db3 or .mcap file)"
            )
        store = getattr(Stores, f"ROS2_{distro.upper()}", None)
        if store is None:
            known = sorted(s.name[5:].lower() for s in Stores if s.name.startswith("ROS2_"))
            raise BagError(f"unknown ROS 2 distro {distro!r} for message definitions; use one of {known}")
        try:
            self._reader = AnyReader([self.path], default_typestore=get_typestore(store))
            self._reader.open()
        except Exception as exc:  # rosbags raises its own ReaderError family and OSError
            raise BagError(
                f"cannot read bag {str(self.path)!r}: {exc}; check that it is a complete rosbag2 "
                "folder (metadata.yaml + storage file) or a ROS 1 .bag, not a single .db3/.mcap file "
                "without its metadata"
            ) from exc

    def __enter__(self) -> BagSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying reader."""
        self._reader.close()

    @property
    def start_ns(self) -> int:
        """Log time of the first message."""
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        """Log time just after the last message."""
        return int(self._reader.end_time)

    def topics(self) -> dict[str, TopicInfo]:
        """Every recorded topic: name -> :class:`TopicInfo`."""
        out: dict[str, TopicInfo] = {}
        for conn in self._reader.connections:
            prev = out.get(conn.topic)
            count = conn.msgcount + (prev.count if prev else 0)
            out[conn.topic] = TopicInfo(conn.topic, conn.msgtype, count)
        return out

    def require(self, topic: str, types: Sequence[str], role: str, *, param: str) -> TopicInfo:
        """The recorded ``topic`` for ``role``, or :class:`BagError` saying which topics exist.

        ``param`` is the parameter or option that chose the topic, for the fix.
        """
        topics = self.topics()
        info = topics.get(topic)
        if info is None:
            listing = ", ".join(f"{t.name} ({t.msgtype})" for t in topics.values()) or "none"
            raise BagError(
                f"bag {str(self.path)!r} has no topic {topic!r} for the {role}; recorded topics: "
                f"{listing}; set {param} to one of them"
            )
        if info.msgtype not in types:
            raise BagError(
                f"bag topic {topic!r} ({role}) is {info.msgtype}; it must be {' or '.join(types)}; "
                f"set {param} to a topic of that type"
            )
        if info.count == 0:
            raise BagError(f"bag topic {topic!r} ({role}) has no messages; record it or choose another topic")
        return info

    def optional(self, topic: str, types: Sequence[str]) -> TopicInfo | None:
        """The recorded ``topic`` when it exists with one of ``types``, else None."""
        info = self.topics().get(topic)
        return info if info is not None and info.msgtype in types and info.count else None

    def messages(
        self, topics: Sequence[str], start_ns: int | None = None, stop_ns: int | None = None
    ) -> Iterator[tuple[int, str, Any]]:
        """``(log_time_ns, topic, message)`` for ``topics``, in log-time order."""
        wanted = set(topics)
        conns = [c for c in self._reader.connections if c.topic in wanted]
        if not conns:
            return
        for conn, log_ns, raw in self._reader.messages(connections=conns, start=start_ns, stop=stop_ns):
            try:
                msg = self._reader.deserialize(raw, conn.msgtype)
            except Exception as exc:
                raise BagError(
                    f"bag {str(self.path)!r}: a {conn.msgtype} message on {conn.topic!r} at "
                    f"{log_ns} ns cannot be decoded ({exc}); the bag is corrupt or its message "
                    "definitions differ from --distro's"
                ) from exc
            yield int(log_ns), conn.topic, msg
