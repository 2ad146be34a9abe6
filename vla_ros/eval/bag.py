"""Reading rosbag2 recordings (sqlite3 or mcap) without ROS, through ``rosbags``.

:class:`BagSource` opens a bag, checks that the topics a replay needs are there with the right
types, and yields ``(log_time_ns, topic, message)`` in recording order. Messages are
``rosbags`` objects, which every vla_ros consumer (image conversion, the observation assembler,
the controller) takes as it takes rclpy messages.

Bags as recorders really leave them:

- Storage files are opened by their first bytes, whatever ``metadata.yaml`` says or whether it
  exists; an MCAP file cut short gives its messages up to the cut
  (:mod:`vla_ros.eval.bag_storage`). What was repaired is in :attr:`BagSource.notes`.
- Topic names are fully qualified: a topic recorded without its leading slash (``joint_states``,
  as some writers store it) is ``/joint_states``, and either spelling selects it.
- Message definitions are read per topic, and only for the topics the replay reads: a channel of
  an unknown type, or whose definition does not parse, never stops a replay that does not need
  it. Bags without definitions (``ros2 bag`` before Iron) use the standard definitions of
  ``--distro``, and so does a needed standard type whose recorded definition does not parse.
- A message that cannot be decoded is skipped and counted (:attr:`BagSource.undecodable`).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vla_ros.contract.errors import VlaRosError
from vla_ros.eval.bag_storage import open_storages

#: message types each role accepts
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
STRING_TYPE = "std_msgs/msg/String"
_ZSTD = b"\x28\xb5\x2f\xfd"  # a message compressed one by one (compression_mode: message)


class BagError(VlaRosError, ValueError):
    """A bag cannot be read or lacks what the replay needs; the message names it and the fix."""


@dataclass(frozen=True)
class TopicInfo:
    """One recorded topic (``name`` fully qualified; ``msgtype`` joined by `` | `` if several)."""

    name: str
    msgtype: str
    count: int


def canonical_topic(topic: str) -> str:
    """``topic`` fully qualified: ``joint_states`` and ``/joint_states`` are both ``/joint_states``."""
    return topic if topic.startswith("/") else "/" + topic


def resolve_topic(topic: str, namespace: str = "/") -> str:
    """A node-relative topic (``joint_states``) as the bag names it (``/ns/joint_states``)."""
    if topic.startswith("/"):
        return topic
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{topic}"


@dataclass(frozen=True)
class ObservationTopics:
    """The bag topics (fully qualified) an observation is read from."""

    cameras: dict[str, str]  # camera name -> image topic
    joint_states: str
    instruction: str | None  # None: the bag has no readable ``<namespace>/vla/instruction``


def observation_topics(
    bag: BagSource, cameras: Mapping[str, str], namespace: str, *, reader: str
) -> ObservationTopics:
    """The camera topics and ``<namespace>/joint_states`` of ``bag``, required; the instruction if any.

    ``cameras``: camera name -> topic as policy_node ``cameras`` gives it (relative topics resolve
    in ``namespace``, as the node's would). ``reader`` names what reads the joint states, for the
    error (``"the replay"``). Raises :class:`BagError` naming a missing, mistyped or empty topic
    and the parameter that chose it.
    """
    resolved = {cam: resolve_topic(topic, namespace) for cam, topic in cameras.items()}
    for cam, topic in resolved.items():
        bag.require(topic, IMAGE_TYPES, f"camera {cam!r}", param="policy_node cameras (name=topic)")
    joints = resolve_topic("joint_states", namespace)
    bag.require(
        joints,
        (JOINT_STATE_TYPE,),
        f"joint states ({reader} reads <namespace>/joint_states)",
        param="--namespace so that <namespace>/joint_states",
    )
    instruction = resolve_topic("vla/instruction", namespace)
    return ObservationTopics(
        cameras=resolved,
        joint_states=joints,
        instruction=instruction if bag.optional(instruction, (STRING_TYPE,)) else None,
    )


class BagSource:
    """An open rosbag2 (or ROS 1) recording; use as a context manager.

    ``path`` is the folder ``ros2 bag record -o`` made, one of its storage files, or a ROS 1
    ``.bag``. ``distro`` names the message definitions for bags that do not carry their own
    (``humble``, ``jazzy``, ``kilted``, ...; sensor_msgs and std_msgs are the same in all).
    Raises :class:`BagError` when the path does not exist, holds no readable storage file or no
    message, or the distro is unknown. ``types(msgtype, recorded definition)``, when given, is
    asked first for a ``rosbags`` typestore holding ``msgtype`` (None: the usual rules apply;
    ``vla-ros bag2lerobot`` decodes service events with it). ``notes``: what was repaired or
    ignored on opening; ``undecodable``: topic -> messages skipped because they could not be
    decoded.
    """

    def __init__(
        self,
        path: str | Path,
        distro: str = "humble",
        types: Callable[[str, Any], Any | None] | None = None,
    ) -> None:
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
        self._default = get_typestore(store)
        self.distro = distro
        self._types = types
        try:
            self._opened = open_storages(self.path)
        except (ValueError, OSError) as exc:
            raise BagError(f"cannot read bag {str(self.path)!r}: {exc}") from exc
        self.notes: list[str] = self._opened.notes
        if not sum(s.count for s in self._opened.storages):
            self.close()
            raise BagError(f"bag {str(self.path)!r} holds no messages; record the topics the replay needs")
        self._conns = [
            (canonical_topic(c.topic), c, s) for s in self._opened.storages for c in s.reader.connections
        ]
        self._decoders: dict[tuple[str, object, str], Callable[[bytes], Any]] = {}
        self.undecodable: Counter = Counter()
        self.decode_errors: dict[str, str] = {}  # topic -> the first decoding error

    def __enter__(self) -> BagSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the storage files."""
        self._opened.stack.close()

    @property
    def start_ns(self) -> int:
        """Log time of the first message."""
        return min(s.start_ns for s in self._opened.storages if s.count)

    @property
    def end_ns(self) -> int:
        """Log time just after the last message."""
        return max(s.end_ns for s in self._opened.storages if s.count)

    def topics(self) -> dict[str, TopicInfo]:
        """Every recorded topic: fully qualified name -> :class:`TopicInfo`."""
        types: dict[str, list[str]] = {}
        counts: Counter = Counter()
        for name, conn, _ in self._conns:
            types.setdefault(name, [])
            if conn.msgtype not in types[name]:
                types[name].append(conn.msgtype)
            counts[name] += conn.msgcount
        return {n: TopicInfo(n, " | ".join(t), counts[n]) for n, t in types.items()}

    def require(self, topic: str, types: Sequence[str], role: str, *, param: str) -> TopicInfo:
        """The recorded ``topic`` for ``role``, or :class:`BagError` saying which topics exist.

        ``topic`` matches with or without its leading slash. ``param`` is the parameter or
        option that chose the topic, for the fix. The topic's messages must be decodable.
        """
        topics = self.topics()
        info = topics.get(canonical_topic(topic))
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
        for name, conn, _ in self._conns:
            if name == info.name:
                self._decoder(conn)
        return info

    def optional(self, topic: str, types: Sequence[str]) -> TopicInfo | None:
        """The recorded ``topic`` when it exists with one of ``types`` and can be decoded, else None."""
        info = self.topics().get(canonical_topic(topic))
        if info is None or info.msgtype not in types or not info.count:
            return None
        try:
            return self.require(topic, types, "optional topic", param="-")
        except BagError:
            return None

    def messages(
        self, topics: Sequence[str], start_ns: int | None = None, stop_ns: int | None = None
    ) -> Iterator[tuple[int, str, Any]]:
        """``(log_time_ns, topic, message)`` for ``topics``, in log-time order.

        Topics match with or without the leading slash and are yielded fully qualified. A
        message that cannot be decoded is skipped and counted in :attr:`undecodable`.
        """
        wanted = {canonical_topic(t) for t in topics}
        by_storage: dict[int, tuple[Any, list[Any]]] = {}
        names: dict[tuple[int, int], str] = {}
        for name, conn, storage in self._conns:
            if name in wanted:
                by_storage.setdefault(id(storage), (storage, []))[1].append(conn)
                names[(id(storage), conn.id)] = name
        streams = [
            ((id(s), conn, t, raw) for conn, t, raw in s.reader.messages(conns, start_ns, stop_ns))
            for s, conns in by_storage.values()
        ]
        for sid, conn, log_ns, raw in heapq.merge(*streams, key=lambda m: m[2]):
            topic = names[(sid, conn.id)]
            try:
                data = bytes(raw)
                if data[:4] == _ZSTD:
                    data = _unzstd(data)
                msg = self._decoder(conn)(data)
            except Exception as exc:  # rosbags' SerdeError, struct/index errors, zstd errors, BagError
                self.undecodable[topic] += 1
                self.decode_errors.setdefault(
                    topic, f"a {conn.msgtype} message at {log_ns} ns cannot be decoded ({exc})"
                )
                continue
            yield int(log_ns), topic, msg

    def _decoder(self, conn: Any) -> Callable[[bytes], Any]:
        """Bytes -> message for ``conn``: the bag's own definition, else ``--distro``'s.

        Raises :class:`BagError` naming the topic when neither gives its type.
        """
        key = (conn.msgtype, conn.msgdef, getattr(conn.ext, "serialization_format", "ros1"))
        if key in self._decoders:
            return self._decoders[key]
        fmt = key[2]
        if fmt not in ("cdr", "ros1"):
            raise BagError(f"bag topic {conn.topic!r} is serialized as {fmt!r}; only CDR can be replayed")
        store, why = (self._types(conn.msgtype, conn.msgdef) if self._types else None), ""
        if store is None and conn.msgdef.data:
            try:
                store = _store_from_definition(conn.msgtype, conn.msgdef)
            except Exception as exc:  # rosbags' TypesysError and parser errors on a broken definition
                why = f"its recorded definition does not parse ({type(exc).__name__}: {exc})"
        if store is None and conn.msgtype in self._default.fielddefs and fmt == "cdr":
            store = self._default
            if why:
                self.notes.append(
                    f"{conn.topic} ({conn.msgtype}): {why}; read with the {self.distro} definition"
                )
        if store is None:
            raise BagError(
                f"bag topic {conn.topic!r} ({conn.msgtype}) cannot be decoded: "
                f"{why or 'the bag has no definition of its type and it is not a standard type'}; "
                "record it with message definitions (ros2 bag from Iron on) or choose another topic"
            )
        typ = conn.msgtype
        if fmt == "ros1":
            decode: Callable[[bytes], Any] = lambda raw: store.deserialize_ros1(raw, typ)  # noqa: E731
        else:
            decode = lambda raw: store.deserialize_cdr(raw, typ)  # noqa: E731
        self._decoders[key] = decode
        return decode


def _store_from_definition(msgtype: str, msgdef: Any) -> Any:
    """A typestore holding ``msgtype`` from a recorded definition (``.msg`` or IDL text)."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

    if msgdef.format == MessageDefinitionFormat.MSG:
        types = get_types_from_msg(msgdef.data, msgtype)
    else:
        sep = "=" * 80 + "\n"
        types = {}
        parts = msgdef.data.split(sep)[1:] if msgdef.data.startswith(f"{sep}IDL: ") else [f"\n{msgdef.data}"]
        for part in parts:
            types.update(get_types_from_idl(part.split("\n", 1)[1]))
    store = get_typestore(Stores.EMPTY)
    store.register(types)
    if msgtype not in store.fielddefs:
        raise ValueError(f"the definition does not define {msgtype}")
    store.get_msgdef(msgtype)  # builds the decoder: fails on a field of an undefined type
    return store


def _unzstd(data: bytes) -> bytes:
    import sys

    if sys.version_info >= (3, 14):  # pragma: no cover
        from compression import zstd
    else:
        from backports import zstd
    return zstd.decompress(data)
