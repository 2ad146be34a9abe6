"""The files of a LeRobot dataset, codebase version v3.0, as LeRobot 0.6.1 writes them (pyarrow).

Layout (``lerobot/datasets/utils.py``, ``io_utils.py``, ``dataset_metadata.py`` of 0.6.1)::

    meta/info.json                        features, fps, robot_type, totals, splits, path templates
    meta/stats.json                       {feature: {min max mean std count q01 q10 q50 q90 q99}}
    meta/tasks.parquet                    task_index, task (pandas index 'task')
    meta/episodes/chunk-000/file-000.parquet   one row per episode: tasks, length, data file,
                                          dataset_from/to_index, stats/<feature>/<stat>
    data/chunk-CCC/file-FFF.parquet       one row per frame, one row group per episode

Frames hold ``observation.state`` and ``action`` (fixed-size float32 lists), one
``observation.images.<camera>`` per camera as a Hugging Face ``Image`` value (a struct of PNG
``bytes`` and a ``path`` name: LeRobot's ``dtype: image``, lossless), and ``timestamp``
(float32 s from the episode's first frame), ``frame_index``, ``episode_index``, ``index``,
``task_index``. A data file is closed once it would pass ``data_files_size_in_mb``; file indices
roll into the next chunk folder after ``chunks_size`` files, as LeRobot's
``update_chunk_file_indices`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.dataset.stats import Stats, to_json

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INDEX_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def image_key(camera: str) -> str:
    """The dataset feature of a camera: ``observation.images.<camera>``."""
    return f"observation.images.{camera}"


def make_features(
    state_names: list[str], action_names: list[str], image_shapes: dict[str, tuple[int, int]]
) -> dict[str, dict[str, Any]]:
    """``info.json`` features: state, action, one image per camera (``(height, width)``), indices."""
    features: dict[str, dict[str, Any]] = {
        "observation.state": {"dtype": "float32", "shape": [len(state_names)], "names": list(state_names)},
        "action": {"dtype": "float32", "shape": [len(action_names)], "names": list(action_names)},
    }
    for cam, (h, w) in image_shapes.items():
        features[image_key(cam)] = {
            "dtype": "image",
            "shape": [h, w, 3],
            "names": ["height", "width", "channels"],
        }
    features.update(json.loads(json.dumps(INDEX_FEATURES)))
    return features


@dataclass
class EpisodeFrames:
    """One episode's frames: ``state [N, Ds]``, ``action [N, Da]``, PNG bytes per camera, task."""

    state: np.ndarray
    action: np.ndarray
    images: dict[str, list[bytes]]
    task_index: int

    def __len__(self) -> int:
        return len(self.state)


class DataWriter:
    """Writes episodes into ``data/chunk-CCC/file-FFF.parquet``, one row group per episode."""

    def __init__(
        self,
        root: Path,
        features: dict[str, dict[str, Any]],
        fps: int,
        file_size_mb: float = DATA_FILES_SIZE_IN_MB,
    ) -> None:
        import pyarrow as pa

        self.root, self.features, self.fps = root, features, fps
        self.file_bytes = int(file_size_mb * 1024**2)
        self.schema = pa.schema([(k, _arrow_type(ft)) for k, ft in features.items()]).with_metadata(
            {"huggingface": json.dumps({"info": {"features": _hf_features(features)}})}
        )
        self.chunk = self.file = 0
        self._writer: Any = None
        self._bytes = 0
        self.frames = 0

    def write(self, episode_index: int, ep: EpisodeFrames) -> tuple[int, int]:
        """Append ``ep`` as episode ``episode_index``; returns its ``(chunk_index, file_index)``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = len(ep)
        size = int(ep.state.nbytes + ep.action.nbytes) + sum(len(b) for v in ep.images.values() for b in v)
        if self._writer is not None and self._bytes + size > self.file_bytes:
            self._writer.close()
            self._writer, self._bytes = None, 0
            self.file += 1
            if self.file >= CHUNKS_SIZE:
                self.chunk, self.file = self.chunk + 1, 0
        if self._writer is None:
            path = self.root / DATA_PATH.format(chunk_index=self.chunk, file_index=self.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(str(path), self.schema, compression="snappy")
        frame = np.arange(n, dtype=np.int64)
        columns: dict[str, Any] = {
            "observation.state": _vector(ep.state, self.features["observation.state"]),
            "action": _vector(ep.action, self.features["action"]),
        }
        for cam, pngs in ep.images.items():
            names = [f"frame-{i:06d}.png" for i in range(n)]
            columns[image_key(cam)] = pa.StructArray.from_arrays(
                [pa.array(pngs, pa.binary()), pa.array(names, pa.string())], names=["bytes", "path"]
            )
        columns["timestamp"] = pa.array((frame / self.fps).astype(np.float32))
        columns["frame_index"] = pa.array(frame)
        columns["episode_index"] = pa.array(np.full(n, episode_index, np.int64))
        columns["index"] = pa.array(self.frames + frame)
        columns["task_index"] = pa.array(np.full(n, ep.task_index, np.int64))
        self._writer.write_table(pa.table([columns[k] for k in self.features], schema=self.schema))
        self._bytes += size
        self.frames += n
        return self.chunk, self.file

    def close(self) -> None:
        """Close the current data file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def write_meta(
    root: Path,
    *,
    fps: int,
    features: dict[str, dict[str, Any]],
    robot_type: str | None,
    tasks: list[str],
    episodes: list[dict[str, Any]],
    stats: dict[str, Stats],
) -> None:
    """``meta/info.json``, ``stats.json``, ``tasks.parquet`` and ``episodes/chunk-000/file-000.parquet``.

    ``episodes``: one dict per episode with ``episode_index, tasks, length, data/chunk_index,
    data/file_index, dataset_from_index, dataset_to_index`` and ``stats`` ({feature: Stats}).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = root / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    total_frames = sum(int(e["length"]) for e in episodes)
    info = {
        "codebase_version": CODEBASE_VERSION,
        "fps": int(fps),
        "features": features,
        "total_episodes": len(episodes),
        "total_frames": total_frames,
        "total_tasks": len(tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "data_path": DATA_PATH,
        "video_path": None,
        "robot_type": robot_type,
        "splits": {"train": f"0:{len(episodes)}"},
    }
    (meta / "info.json").write_text(json.dumps(info, indent=4))
    (meta / "stats.json").write_text(json.dumps(to_json(stats), indent=4))
    # LeRobot reads tasks with pandas.read_parquet and uses the index ('task') as the strings:
    # the pandas metadata below is what pandas writes for DataFrame(task_index, index=task).
    table = pa.table(
        {"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())}
    )
    pq.write_table(
        table.replace_schema_metadata({"pandas": json.dumps(_PANDAS_TASKS)}), meta / "tasks.parquet"
    )
    rows = []
    for e in episodes:
        row = {k: v for k, v in e.items() if k != "stats"}
        for feat, s in e["stats"].items():
            for key, value in s.items():
                row[f"stats/{feat}/{key}"] = np.asarray(value).tolist()
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        rows.append(row)
    path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


_PANDAS_TASKS = {
    "index_columns": ["task"],
    "column_indexes": [
        {
            "name": None,
            "field_name": None,
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": {"encoding": "UTF-8"},
        }
    ],
    "columns": [
        {
            "name": "task_index",
            "field_name": "task_index",
            "pandas_type": "int64",
            "numpy_type": "int64",
            "metadata": None,
        },
        {
            "name": "task",
            "field_name": "task",
            "pandas_type": "unicode",
            "numpy_type": "object",
            "metadata": None,
        },
    ],
    "attributes": {},
    "creator": {"library": "pyarrow", "version": "vla_ros"},
    "pandas_version": "2.3.3",
}


def _vector(values: np.ndarray, ft: dict[str, Any]) -> Any:
    """``[N, D]`` float32 -> an Arrow ``fixed_size_list<float>[D]`` array, or a float array when
    the feature's shape is ``[1]`` (LeRobot stores shape-(1,) features as plain values)."""
    import pyarrow as pa

    v = np.ascontiguousarray(values, np.float32)
    if ft["shape"] == [1]:
        return pa.array(v.reshape(-1))
    return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])


def _arrow_type(ft: dict[str, Any]) -> Any:
    """The Arrow type of one feature, as Hugging Face ``datasets`` stores it."""
    import pyarrow as pa

    if ft["dtype"] == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    scalar = pa.from_numpy_dtype(np.dtype(ft["dtype"]))
    return scalar if ft["shape"] == [1] else pa.list_(scalar, ft["shape"][0])


def _hf_features(features: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``datasets.Features`` JSON that LeRobot's ``get_hf_features_from_features`` would make."""
    out: dict[str, Any] = {}
    for key, ft in features.items():
        if ft["dtype"] == "image":
            out[key] = {"_type": "Image"}
        elif ft["shape"] == [1]:
            out[key] = {"dtype": ft["dtype"], "_type": "Value"}
        else:
            out[key] = {
                "feature": {"dtype": ft["dtype"], "_type": "Value"},
                "length": ft["shape"][0],
                "_type": "List",
            }
    return out
