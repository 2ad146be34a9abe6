"""Reading an MCAP file that was cut short: the complete records before the cut.

A recorder killed with SIGKILL, a full disk or an interrupted copy leaves an MCAP file without
its summary, footer and closing magic, often with the last record half written. Indexed readers
(``rosbags``, ``ros2 bag play``) refuse it. :class:`TruncatedMcap` walks the data section from
the start (record layout: opcode ``uint8``, length ``uint64`` little-endian, body; MCAP
specification, https://mcap.dev/spec) and keeps every record that ends before the cut: schemas,
channels, messages and whole chunks (uncompressed, ``zstd`` or ``lz4``, CRC checked). It offers
the storage-reader interface of ``rosbags`` (``connections``, ``messages``) so the replay reads
it as any other bag.
"""

from __future__ import annotations

import heapq
import struct
import sys
import zlib
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vla_ros.contract.errors import VlaRosError

MAGIC = b"\x89MCAP0\r\n"
OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_DATA_END = 1, 2, 3, 4, 5, 6, 15
_REC = struct.Struct("<BQ")
_MSG = struct.Struct("<HIQQ")  # channel id, sequence, log time, publish time
_CHUNK = struct.Struct("<QQQI")  # start, end, uncompressed size, uncompressed crc32


class McapScanError(VlaRosError, ValueError):
    """The file is not an MCAP file, or nothing complete precedes the cut."""


@dataclass(frozen=True)
class _ChunkRef:
    offset: int  # file offset of the compressed records
    size: int  # compressed size in bytes
    compression: str
    uncompressed_size: int
    crc: int
    start_ns: int


def _string(buf: bytes | memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    return bytes(buf[pos + 4 : pos + 4 + n]).decode(), pos + 4 + n


def _decompress(data: bytes, compression: str, size: int) -> bytes:
    """Chunk records decompressed; ``ValueError`` for an unknown codec or a wrong size."""
    if compression == "":
        raw = data
    elif compression == "zstd":
        if sys.version_info >= (3, 14):  # pragma: no cover
            from compression import zstd
        else:
            from backports import zstd
        raw = zstd.decompress(data)
    elif compression == "lz4":
        import lz4.frame

        raw = lz4.frame.decompress(data)
    else:
        raise ValueError(f"chunk compression {compression!r} is not zstd, lz4 or none")
    if len(raw) != size:
        raise ValueError(f"chunk holds {len(raw)} bytes after decompression, its header says {size}")
    return raw


def truncated(path: Path) -> bool:
    """Whether ``path`` starts as an MCAP file but does not end with the closing magic."""
    with path.open("rb") as f:
        if f.read(8) != MAGIC:
            return False
        f.seek(0, 2)
        if f.tell() < 16:
            return True
        f.seek(-8, 2)
        return f.read(8) != MAGIC


class TruncatedMcap:
    """The complete records of an MCAP file up to its cut, as a ``rosbags`` storage reader.

    After :meth:`open`: ``connections`` (``rosbags.interfaces.Connection``, message counts of the
    kept records), ``start_ns``/``end_ns`` (log times of the first message and just after the
    last), ``cut_at`` (bytes kept), ``size`` (file size), ``reason`` (why the walk stopped).
    Raises :class:`McapScanError` when the file is not MCAP.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.connections: list[Any] = []
        self.start_ns = 2**63 - 1
        self.end_ns = 0
        self.message_count = 0
        self.cut_at = 0
        self.size = 0
        self.reason = ""
        self._schemas: dict[int, tuple[str, str, str]] = {}
        self._channels: dict[int, tuple[int, str, str]] = {}
        self._counts: Counter = Counter()
        self._chunks: list[_ChunkRef] = []
        self._loose: list[tuple[int, int, int, int]] = []  # (log time, channel, offset, length)
        self._file: Any = None

    def open(self) -> None:
        """Walk the file once: schemas, channels, chunk positions, message counts."""
        self._file = self.path.open("rb")
        f = self._file
        if f.read(8) != MAGIC:
            raise McapScanError(f"{self.path} does not start with the MCAP magic")
        self.size = f.seek(0, 2)
        pos = 8
        self.reason = "the file ends inside a record"
        while pos + _REC.size <= self.size:
            f.seek(pos)
            op, length = _REC.unpack(f.read(_REC.size))
            end = pos + _REC.size + length
            if op in (OP_DATA_END, OP_FOOTER):
                self.reason = "the data section is complete; only the index after it is damaged"
                break
            if op == 0 or op > OP_DATA_END or end > self.size:
                break
            if op in (OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK):
                body = f.read(length)
                try:
                    self._record(op, body, pos + _REC.size)
                except (ValueError, struct.error, zlib.error, RuntimeError) as exc:
                    self.reason = f"the record at byte {pos} is damaged ({exc})"
                    break
            pos = end
        self.cut_at = pos
        self.connections = [self._connection(cid) for cid in self._channels]

    def _record(self, op: int, body: bytes, offset: int) -> None:
        if op == OP_CHUNK:
            start, _end, size, crc = _CHUNK.unpack_from(body, 0)
            compression, p = _string(body, _CHUNK.size)
            (n,) = struct.unpack_from("<Q", body, p)
            data = body[p + 8 : p + 8 + n]
            if len(data) != n:
                raise ValueError("chunk records run past the chunk")
            raw = _decompress(data, compression, size)
            if crc and zlib.crc32(raw) != crc:
                raise ValueError("chunk CRC mismatch")
            ref = _ChunkRef(offset + p + 8, n, compression, size, crc, start)
            for rop, rbody, _ in self._records(raw):
                if rop == OP_MESSAGE:
                    self._count(rbody)
                elif rop in (OP_SCHEMA, OP_CHANNEL):
                    self._record(rop, rbody, -1)
            self._chunks.append(ref)
        elif op == OP_SCHEMA:
            (sid,) = struct.unpack_from("<H", body, 0)
            name, p = _string(body, 2)
            encoding, p = _string(body, p)
            (n,) = struct.unpack_from("<I", body, p)
            self._schemas[sid] = (name, encoding, bytes(body[p + 4 : p + 4 + n]).decode())
        elif op == OP_CHANNEL:
            cid, sid = struct.unpack_from("<HH", body, 0)
            topic, p = _string(body, 4)
            encoding, _ = _string(body, p)
            self._channels.setdefault(cid, (sid, topic, encoding))
        elif op == OP_MESSAGE:
            cid, log_ns = self._count(body)
            if offset >= 0:
                self._loose.append((log_ns, cid, offset + _MSG.size, len(body) - _MSG.size))

    def _count(self, body: bytes | memoryview) -> tuple[int, int]:
        cid, _seq, log_ns, _pub = _MSG.unpack_from(body, 0)
        self._counts[cid] += 1
        self.message_count += 1
        self.start_ns = min(self.start_ns, log_ns)
        self.end_ns = max(self.end_ns, log_ns + 1)
        return cid, log_ns

    @staticmethod
    def _records(raw: bytes) -> Iterator[tuple[int, memoryview, int]]:
        view = memoryview(raw)
        pos = 0
        while pos + _REC.size <= len(raw):
            op, length = _REC.unpack_from(raw, pos)
            body = view[pos + _REC.size : pos + _REC.size + length]
            if len(body) != length:
                raise ValueError("a record runs past its chunk")
            yield op, body, pos
            pos += _REC.size + length

    def _connection(self, cid: int) -> Any:
        from rosbags.interfaces import (
            Connection,
            ConnectionExtRosbag2,
            MessageDefinition,
            MessageDefinitionFormat,
        )

        sid, topic, encoding = self._channels[cid]
        name, schema_encoding, data = self._schemas.get(sid, ("", "", ""))
        fmt = {"ros2msg": MessageDefinitionFormat.MSG, "ros2idl": MessageDefinitionFormat.IDL}.get(
            schema_encoding, MessageDefinitionFormat.NONE
        )
        return Connection(
            cid,
            topic,
            name,
            MessageDefinition(fmt, data if fmt != MessageDefinitionFormat.NONE else ""),
            "",
            self._counts[cid],
            ConnectionExtRosbag2(encoding, []),
            self,
        )

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def messages(
        self, connections: Collection[Any], start: int | None = None, stop: int | None = None
    ) -> Iterator[tuple[Any, int, bytes]]:
        """``(connection, log_time_ns, cdr_bytes)`` of ``connections`` in log-time order."""
        wanted = {c.id: c for c in connections}
        lo, hi = start if start is not None else 0, stop if stop is not None else 2**63
        sources = [self._chunk_messages(ref, wanted, lo, hi) for ref in self._chunks]
        loose = sorted(m for m in self._loose if m[1] in wanted and lo <= m[0] < hi)
        sources.append((t, cid, off, n) for t, cid, off, n in loose)
        for t, cid, where, n in heapq.merge(*sources, key=lambda m: m[0]):
            if cid < 0:
                continue  # a chunk's opening marker
            if isinstance(where, bytes):
                yield wanted[cid], t, where
            else:
                self._file.seek(where)
                yield wanted[cid], t, self._file.read(n)

    def _chunk_messages(
        self, ref: _ChunkRef, wanted: dict[int, Any], lo: int, hi: int
    ) -> Iterator[tuple[int, int, Any, int]]:
        """One chunk's messages sorted by log time, decompressed only when the merge reaches it."""
        yield ref.start_ns, -1, None, 0
        self._file.seek(ref.offset)
        raw = _decompress(self._file.read(ref.size), ref.compression, ref.uncompressed_size)
        out = []
        for op, body, _ in self._records(raw):
            if op == OP_MESSAGE:
                cid, _seq, t, _pub = _MSG.unpack_from(body, 0)
                if cid in wanted and lo <= t < hi:
                    out.append((t, cid, bytes(body[_MSG.size :]), 0))
        out.sort(key=lambda m: m[0])
        yield from out
