"""Finding and opening a recording's storage files by what they are, not by what they are called.

``metadata.yaml`` is written by the recorder when it stops: a recorder that was killed leaves
none, a folder assembled by hand may hold one that names other files or another storage plugin.
The storage files describe themselves, so they are opened from their first bytes (SQLite:
``SQLite format 3\\0``; MCAP: ``\\x89MCAP0\\r\\n``; a zstd-compressed file: ``28 b5 2f fd``; ROS 1:
``#ROSBAG V2.0``), message counts and times come from the files, and ``metadata.yaml`` only
gives the file order. Every disagreement is a note for the report. An MCAP file cut short is read
up to the cut (:mod:`vla_ros.eval.mcap_scan`).
"""

from __future__ import annotations

import re
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vla_ros.eval.mcap_scan import McapScanError, TruncatedMcap, truncated

MAGIC = {
    b"SQLite format 3\x00": "sqlite3",
    b"\x89MCAP0\r\n": "mcap",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"#ROSBAG V2.0\n": "ros1",
}
FIX_TRUNCATED = (
    "`ros2 bag reindex <folder>` rewrites metadata.yaml, `mcap recover <file> -o fixed.mcap` "
    "rewrites the MCAP index"
)


def sniff(path: Path) -> str:
    """``sqlite3``, ``mcap``, ``zstd``, ``ros1`` from the first bytes of ``path``; ``""`` otherwise."""
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError:
        return ""
    return next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), "")


@dataclass
class Storage:
    """One opened storage file: a ``rosbags`` reader (or :class:`TruncatedMcap`) and its times."""

    path: Path
    kind: str  # sqlite3 | mcap | ros1
    reader: Any
    start_ns: int
    end_ns: int
    count: int


@dataclass
class Opened:
    """Every storage file of a recording, opened; ``notes`` say what was repaired or ignored."""

    storages: list[Storage]
    notes: list[str] = field(default_factory=list)
    stack: ExitStack = field(default_factory=ExitStack)

    @property
    def ros1(self) -> bool:
        """Whether the recording is a ROS 1 bag (ROS 1 serialization)."""
        return any(s.kind == "ros1" for s in self.storages)


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _metadata(folder: Path, notes: list[str]) -> dict[str, Any] | None:
    """``rosbag2_bagfile_information`` of ``folder/metadata.yaml``, or None with a note."""
    import yaml

    path = folder / "metadata.yaml"
    if not path.is_file():
        notes.append(
            f"{path} is missing (the recorder did not stop cleanly?): the storage files were read "
            "directly; `ros2 bag reindex` writes it again"
        )
        return None
    try:
        info = yaml.safe_load(path.read_text())["rosbag2_bagfile_information"]
        if not isinstance(info, dict):
            raise TypeError("not a mapping")
        return info
    except (yaml.YAMLError, OSError, TypeError, KeyError, UnicodeDecodeError) as exc:
        notes.append(
            f"{path} cannot be read ({type(exc).__name__}: {exc}); the storage files were read directly"
        )
        return None


def storage_files(path: Path, notes: list[str]) -> list[tuple[Path, str]]:
    """The storage files of the recording at ``path`` (a folder or one file) with their kind.

    Raises ``ValueError`` with the reason when there is none.
    """
    if path.is_file():
        kind = sniff(path)
        if not kind:
            raise ValueError(
                f"{path} is neither a rosbag2 storage file (sqlite3 .db3, .mcap) nor a ROS 1 bag "
                "by its first bytes"
            )
        return [(path, kind)]
    info = _metadata(path, notes)
    found = {p.name: sniff(p) for p in sorted(path.iterdir(), key=lambda p: _natural(p.name)) if p.is_file()}
    found = {name: kind for name, kind in found.items() if kind}
    listed: list[str] = []
    if info is not None:
        listed = [Path(str(x)).name for x in info.get("relative_file_paths") or []]
        if missing := [n for n in listed if n not in found]:
            notes.append(f"metadata.yaml names files that are not there or not storage files: {missing}")
        claimed = str(info.get("storage_identifier", ""))
        for name in listed:
            kind = found.get(name)
            if kind in ("sqlite3", "mcap") and claimed and kind != claimed:
                notes.append(
                    f"metadata.yaml says storage {claimed!r} but {name} is {kind} by its first bytes; "
                    f"read as {kind}"
                )
        if extra := [n for n in found if n not in listed]:
            notes.append(f"storage files not named in metadata.yaml were read too: {extra}")
    order = [n for n in listed if n in found] + [n for n in found if n not in listed]
    if not order:
        names = sorted(p.name for p in path.iterdir())
        raise ValueError(
            f"the folder holds no storage file (sqlite3 .db3 or .mcap by their first bytes; it holds "
            f"{names}); pass the folder `ros2 bag record -o` made"
        )
    return [(path / n, found[n]) for n in order]


def _decompressed(path: Path, stack: ExitStack) -> Path:
    """A zstd-compressed storage file (``compression_mode: file``) decompressed to a temp file."""
    import shutil

    if sys.version_info >= (3, 14):  # pragma: no cover
        from compression import zstd
    else:
        from backports import zstd

    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vla_ros_bag_")))
    out = tmp / path.name.removesuffix(".zstd")
    with path.open("rb") as src, zstd.open(src, "rb") as inner, out.open("wb") as dst:
        shutil.copyfileobj(inner, dst)
    return out


def _open_one(path: Path, kind: str, opened: Opened) -> Storage | None:
    """Open one storage file; None (and a note) when a truncated MCAP keeps no message."""
    from rosbags.rosbag1 import Reader as Ros1Reader
    from rosbags.rosbag2.storage_mcap import McapReader
    from rosbags.rosbag2.storage_sqlite3 import Sqlite3Reader

    if kind == "zstd":
        path = _decompressed(path, opened.stack)
        kind = sniff(path)
        if kind not in ("sqlite3", "mcap"):
            raise ValueError(f"{path.name} decompressed is not a sqlite3 or mcap storage file")
    if kind == "mcap" and truncated(path):
        scan = TruncatedMcap(path)
        scan.open()
        opened.stack.callback(scan.close)
        where = f"{path.name} is cut short at byte {scan.cut_at} of {scan.size} ({scan.reason})"
        if not scan.message_count:
            raise McapScanError(f"{where} and holds no complete message; try {FIX_TRUNCATED}")
        opened.notes.append(
            f"{where}: replaying the {scan.message_count} messages before the cut; {FIX_TRUNCATED}"
        )
        return Storage(path, kind, scan, scan.start_ns, scan.end_ns, scan.message_count)
    if kind == "ros1":
        reader = Ros1Reader(path)
        reader.open()
        opened.stack.callback(reader.close)
        return Storage(path, kind, reader, reader.start_time, reader.end_time, reader.message_count)
    reader = (McapReader if kind == "mcap" else Sqlite3Reader)(path)
    reader.open()
    opened.stack.callback(reader.close)
    meta = reader.metadata
    return Storage(path, kind, reader, meta.start_time, meta.end_time, meta.message_count)


def open_storages(path: Path) -> Opened:
    """Every storage file of the recording at ``path``, opened. Raises ``ValueError`` (reason)."""
    opened = Opened([])
    try:
        for file, kind in storage_files(path, opened.notes):
            try:
                storage = _open_one(file, kind, opened)
            except McapScanError:
                raise
            except Exception as exc:  # rosbags' ReaderError family, apsw and OSError
                fix = (
                    f"if the recorder was stopped abruptly, try {FIX_TRUNCATED}"
                    if kind == "mcap"
                    else "if the recorder was stopped abruptly, `ros2 bag reindex <folder>` may help"
                )
                raise ValueError(f"{file.name} ({kind}) cannot be read: {exc}; {fix}") from exc
            if storage is not None:
                opened.storages.append(storage)
        if opened.ros1 and len(opened.storages) > 1:
            raise ValueError("pass one ROS 1 .bag file at a time")
    except BaseException:
        opened.stack.close()
        raise
    return opened
