"""Pure parts of bag2lerobot: the frame grid, nearest-stamp picks, episode splits, exact stats."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.dataset.align import (
    NS,
    Window,
    align,
    frame_grid,
    nearest,
    runs,
    split_by_events,
    split_by_gap,
    split_by_list,
)
from vla_ros.dataset.stats import ImageStats, vector_stats


def test_frame_grid_rounds_each_frame_time_to_the_nanosecond() -> None:
    grid = frame_grid(5, 5 + NS, 30)
    assert len(grid) == 31
    assert grid[1] - 5 == 33_333_333 and grid[2] - 5 == 66_666_667 and grid[-1] == 5 + NS


def test_nearest_picks_within_tolerance_only_and_the_earlier_on_a_tie() -> None:
    stamps = np.array([0, 100, 200, 400], np.int64)
    grid = np.array([0, 50, 149, 300, 390], np.int64)
    assert nearest(stamps, grid, 50).tolist() == [0, 0, 1, -1, 3]  # 50: tie -> 0; 300: 100 away from both
    assert nearest(np.zeros(0, np.int64), grid, 50).tolist() == [-1] * 5


def test_align_reports_missing_frames_per_stream_and_anchors_on_the_reference() -> None:
    cam = np.array([1000, 1100, 1300, 1400], np.int64) * 1_000_000  # 1.2 s missing
    joints = np.arange(990, 1411, 10, dtype=np.int64) * 1_000_000
    a = align({"cam": cam, "joints": joints}, "cam", fps=10, tol_ns=NS // 20)
    assert not isinstance(a, str)
    assert a.grid[0] == cam[0] and len(a.grid) == 5
    assert a.missing["cam"].tolist() == [2] and "joints" not in a.missing
    assert runs(a.complete) == [(0, 2), (3, 5)]


def test_align_names_streams_that_do_not_overlap() -> None:
    why = align({"a": np.array([0, 10]), "b": np.array([10 * NS, 11 * NS])}, "a", fps=10, tol_ns=NS // 20)
    assert isinstance(why, str) and "do not overlap" in why and "b: 10.000..11.000 s" in why


def test_splits_by_gap_events_and_list() -> None:
    assert split_by_gap([5, 0, 10, 3000, 3010], gap_ns=1000) == [Window(0, 10), Window(3000, 3010)]
    bools = [(10, True), (20, True), (30, False), (40, False), (50, True)]
    assert split_by_events(bools, end_ns=99) == [Window(10, 30), Window(50, 99)]
    numbers = [(10, 1), (20, 1), (30, 2)]
    assert split_by_events(numbers, end_ns=99) == [Window(10, 29), Window(30, 99)]
    assert split_by_list([(0.5, 1.0)], bag_start_ns=7) == [Window(7 + NS // 2, 7 + NS)]
    with pytest.raises(ValueError, match=r"episode \[2.0, 1.0\]"):
        split_by_list([(2.0, 1.0)], 0)


def test_stats_are_exact() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    s = vector_stats(x)
    np.testing.assert_array_equal(s["q10"], np.quantile(x, 0.1, axis=0))
    np.testing.assert_array_equal(s["std"], x.std(axis=0))
    assert s["count"].tolist() == [50]
    frames = rng.integers(0, 256, size=(4, 5, 7, 3), dtype=np.uint8)
    acc = ImageStats()
    for f in frames:
        acc.add(f)
    img = acc.stats()
    px = frames.reshape(-1, 3) / 255.0
    for key, q in (("q01", 0.01), ("q50", 0.5), ("q99", 0.99)):
        np.testing.assert_allclose(img[key].ravel(), np.quantile(px, q, axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(img["mean"].ravel(), px.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(img["std"].ravel(), px.std(axis=0), rtol=1e-12)
    assert img["max"].shape == (3, 1, 1) and img["count"].tolist() == [4]


def test_data_files_roll_over_at_the_size_limit(tmp_path) -> None:
    import pyarrow.parquet as pq

    from vla_ros.dataset.lerobot_v3 import DataWriter, EpisodeFrames, make_features

    writer = DataWriter(tmp_path, make_features(["a"], ["a"], {"c": (1, 1)}), fps=5, file_size_mb=1e-4)
    where = [
        writer.write(
            i, EpisodeFrames(np.full((3, 1), i, np.float32), np.zeros((3, 1)), {"c": [b"x" * 40] * 3}, 0)
        )
        for i in range(3)
    ]
    writer.close()
    assert where == [(0, 0), (0, 1), (0, 2)]  # 105-byte limit: one episode per file
    tables = [pq.read_table(tmp_path / f"data/chunk-000/file-{f:03d}.parquet") for f in range(3)]
    assert [t.column("index").to_pylist() for t in tables] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert tables[2].column("observation.state").to_pylist() == [2.0] * 3  # shape (1,): a plain value
    assert tables[1].column("timestamp").to_pylist() == pytest.approx([0.0, 0.2, 0.4])
