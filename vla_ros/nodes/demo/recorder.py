"""``vla-ros demo --record``: the run's topics into a rosbag2 MCAP recording (the ``rosbags`` library).

The monitor node subscribes to every topic the demo's nodes publish with ``raw=True``, so each
message arrives as the CDR bytes the publisher sent, and writes them unchanged with the receive
time as the log time, as ``ros2 bag record`` does. Each topic's schema is its ``.msg``
definition (``ros2msg`` encoding): standard types from the ``rosbags`` typestore of the running
ROS distribution, ``vla_ros/msg/*`` from the package's own ``msg/`` files. The folder
(``metadata.yaml`` + ``<name>_0.mcap``) opens in ``ros2 bag play``, Foxglove and PlotJuggler.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from vla_ros.sim.cards import PACKAGE_ROOT


class RecordError(RuntimeError):
    """The recording could not be written; the message names the topic or the path."""


def type_name(msg_class: type) -> str:
    """``sensor_msgs/msg/JointState`` for rclpy's ``sensor_msgs.msg.JointState`` class."""
    package = msg_class.__module__.split(".")[0]
    return f"{package}/msg/{msg_class.__name__}"


def _msg_dirs() -> list[Path]:
    dirs = [PACKAGE_ROOT.parent / "msg"]
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory("vla_ros")) / "msg")
    except Exception:  # ament_index missing or the package not installed: the source tree only
        pass
    return [d for d in dirs if d.is_dir()]


def typestore(distro: str | None = None) -> Any:
    """A ``rosbags`` typestore: ``distro``'s standard types (default ``$ROS_DISTRO``, else the
    newest) plus every ``vla_ros/msg/*.msg`` found (source tree first)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    name = f"ROS2_{(distro or os.environ.get('ROS_DISTRO', '')).upper()}"
    store = get_typestore(Stores[name] if name in Stores.__members__ else Stores.LATEST)
    types: dict[str, Any] = {}
    for folder in _msg_dirs():
        for path in sorted(folder.glob("*.msg")):
            msgtype = f"vla_ros/msg/{path.stem}"
            if msgtype not in types:
                types.update(get_types_from_msg(path.read_text(), msgtype))
    store.register(types)
    return store


class McapRecorder:
    """A rosbag2 folder with MCAP storage, written from raw CDR messages; thread-safe.

    ``topics`` maps topic name -> type name (``sensor_msgs/msg/Image``). Raises
    :class:`RecordError` when ``path`` exists (rosbag2 never overwrites) or a type is unknown.
    """

    def __init__(self, path: Path, topics: dict[str, str], store: Any | None = None) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if self.path.exists():
            raise RecordError(f"recording {str(self.path)!r} already exists; choose another --out folder")
        store = store if store is not None else typestore()
        unknown = sorted(t for t in set(topics.values()) if t not in store.fielddefs)
        if unknown:
            raise RecordError(f"cannot record types {unknown}: no message definition found for them")
        self._lock = threading.Lock()
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._conns = {
            topic: self._writer.add_connection(topic, msgtype, typestore=store)
            for topic, msgtype in sorted(topics.items())
        }
        self.counts: Counter[str] = Counter(dict.fromkeys(topics, 0))  # every topic, written or not
        self._closed = False

    @property
    def mcap_file(self) -> Path:
        """The ``.mcap`` file inside the folder (what Foxglove and PlotJuggler open)."""
        return self.path / f"{self.path.name}.mcap"

    def write(self, topic: str, t_ns: int, data: bytes) -> None:
        """Append one CDR-serialized message received at ``t_ns`` (ignored once closed)."""
        with self._lock:
            if self._closed:
                return
            self._writer.write(self._conns[topic], int(t_ns), data)
            self.counts[topic] += 1

    def close(self) -> None:
        """Finish the file and write ``metadata.yaml`` (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._writer.close()
