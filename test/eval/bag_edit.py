"""Bag surgery for tests: copy a real rosbag2 recording with its messages edited, with ``rosbags``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: edit(log_ns, topic, msgtype, msg) -> the (log_ns, topic, msgtype, msg) to write instead
Edit = Callable[[int, str, str, Any], Iterable[tuple[int, str, str, Any]]]


def rewrite_bag(src: Path, dst: Path, edit: Edit, *, storage: str = "sqlite3") -> Path:
    """Write ``dst`` with every message of ``src`` passed through ``edit`` (connections made as needed)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from vla_ros.eval.bag import BagSource

    ts = get_typestore(Stores.ROS2_HUMBLE)
    plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
    with BagSource(src) as bag, Writer(dst, version=9, storage_plugin=plugin) as writer:
        types = {name: info.msgtype for name, info in bag.topics().items()}
        conns: dict[tuple[str, str], Any] = {}
        for log_ns, topic, msg in bag.messages(list(types)):
            for t, name, msgtype, out in edit(log_ns, topic, types[topic], msg):
                key = (name, msgtype)
                if key not in conns:
                    conns[key] = writer.add_connection(name, msgtype, typestore=ts)
                writer.write(conns[key], t, ts.serialize_cdr(out, msgtype))
    return dst


def joint_state(msg: Any, names: list[str], positions: list[float], stamp_ns: int | None = None) -> Any:
    """A JointState like ``msg`` with other names/positions (and optionally another stamp)."""
    import numpy as np
    from rosbags.typesys import Stores, get_typestore

    T = get_typestore(Stores.ROS2_HUMBLE).types
    header = msg.header if stamp_ns is None else stamped(msg.header, stamp_ns)
    empty = np.zeros(0, np.float64)
    return T["sensor_msgs/msg/JointState"](
        header=header, name=names, position=np.asarray(positions, np.float64), velocity=empty, effort=empty
    )


def stamped(header: Any, stamp_ns: int) -> Any:
    """``header`` with its stamp set to ``stamp_ns``."""
    from rosbags.typesys import Stores, get_typestore

    T = get_typestore(Stores.ROS2_HUMBLE).types
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=header.frame_id
    )
