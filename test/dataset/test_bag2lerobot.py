"""vla-ros bag2lerobot on real rosbag2 files: the dataset's files hold the bag's values (no LeRobot)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bag2lerobot_helpers import (
    JOINTS,
    bag_truth,
    camera_pixels,
    check_sim_frames,
    read_data_files,
    write_arm_bag,
)

from vla_ros.cli import main
from vla_ros.eval.simbag import INSTRUCTION, write_sim_bag

PARAMS = """/**/policy_node:
  ros__parameters:
    cameras: ["front={topic}"]
/**/executor_node:
  ros__parameters:
    control_rate_hz: 100.0
"""


def params(tmp: Path, topic: str = "/camera/front/image_raw") -> Path:
    path = tmp / "params.yaml"
    path.write_text(PARAMS.format(topic=topic))
    return path


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The sim arm's bag (2 episodes of 1 s, camera 'front') converted at 10 fps."""
    tmp = tmp_path_factory.mktemp("sim")
    bag = write_sim_bag(tmp / "bag", episodes=2, duration_s=1.0, cameras=("front",))
    out = tmp / "dataset"
    rc = main(["bag2lerobot", str(bag), "--params", str(params(tmp)), "--out", str(out), "--fps", "10"])
    assert rc == 0
    return {"bag": bag, "out": out, "truth": bag_truth(bag, {"front": "/camera/front/image_raw"})}


def test_sim_bag_frames_equal_the_bags_messages_at_the_fps(sim: dict) -> None:
    frames = read_data_files(sim["out"])
    lengths = check_sim_frames(frames, sim["truth"], fps=10)
    assert lengths == [10, 10]  # 1 s at 10 fps, less the last frame (its action, the next state, is absent)
    assert list(frames["index"]) == list(range(20))
    assert set(frames["task_index"]) == {0}


def test_sim_bag_meta_is_lerobot_v3(sim: dict) -> None:
    import pyarrow.parquet as pq

    root = sim["out"]
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, 20, 1)
    assert info["splits"] == {"train": "0:2"} and info["video_path"] is None
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    feats = info["features"]
    assert feats["observation.state"] == {
        "dtype": "float32",
        "shape": [6],
        "names": [f"joint_{i}" for i in range(1, 7)],
    }
    assert feats["observation.images.front"]["dtype"] == "image"
    assert feats["observation.images.front"]["shape"] == [64, 64, 3]
    assert list(feats)[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    data = pq.ParquetFile(root / "data/chunk-000/file-000.parquet")
    assert data.num_row_groups == 2  # one per episode
    schema = data.schema_arrow
    assert str(schema.field("observation.state").type) == "fixed_size_list<element: float>[6]"
    assert str(schema.field("observation.images.front").type) == "struct<bytes: binary, path: string>"
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["observation.images.front"] == {"_type": "Image"}
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.to_pylist() == [{"task_index": 0, "task": INSTRUCTION}]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]
    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [
        (e["episode_index"], e["length"], e["dataset_from_index"], e["dataset_to_index"]) for e in eps
    ] == [
        (0, 10, 0, 10),
        (1, 10, 10, 20),
    ]
    assert eps[0]["tasks"] == [INSTRUCTION] and eps[1]["data/file_index"] == 0


def test_sim_bag_stats_are_the_datas(sim: dict) -> None:
    frames = read_data_files(sim["out"])
    stats = json.loads((sim["out"] / "meta/stats.json").read_text())
    state = np.asarray(frames["observation.state"], np.float64)
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats["observation.state"]["std"], state.std(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats["action"]["q50"], np.quantile(frames["action"], 0.5, axis=0), rtol=1e-12)
    assert stats["observation.state"]["count"] == [20]
    pixels = frames["observation.images.front"].reshape(-1, 3) / 255.0
    img = stats["observation.images.front"]
    np.testing.assert_allclose(np.ravel(img["mean"]), pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.ravel(img["q90"]), np.quantile(pixels, 0.9, axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.ravel(img["min"]), pixels.min(axis=0))
    assert np.shape(img["std"]) == (3, 1, 1)


def test_command_topic_is_the_action_and_a_missing_frame_splits_the_episode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bag = write_arm_bag(tmp_path / "bag", frames=12, drop_camera=(5,))
    out = tmp_path / "ds"
    rc = main(["bag2lerobot", str(bag), "--params", str(params(tmp_path)), "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "camera 'front': no sample within the tolerance for 1 frame at 0.500 s" in captured.err
    result = json.loads(captured.out)
    assert result["fps"] == 10 and "median period 100.00 ms" in result["fps_source"]
    assert result["topics"]["action"] == "/vla/joint_command"
    frames = read_data_files(out)
    assert list(frames["episode_index"]) == [0] * 5 + [1] * 6  # frame 5 missing: split there, not filled
    ticks = np.array([0, 10, 20, 30, 40, 60, 70, 80, 90, 100, 110])
    measured = np.stack([0.1 * j + 0.001 * ticks for j in range(len(JOINTS))], axis=1)  # float64, as recorded
    np.testing.assert_array_equal(frames["observation.state"], measured.astype(np.float32))
    np.testing.assert_array_equal(frames["action"], (measured + 0.5).astype(np.float32))
    np.testing.assert_array_equal(frames["observation.images.front"], [camera_pixels(t // 10) for t in ticks])
    assert json.loads((out / "meta/info.json").read_text())["features"]["action"]["names"] == list(JOINTS)


@pytest.mark.parametrize("output_type", ["float64_multi_array", "joint_trajectory"])
def test_executor_output_types_are_the_action(tmp_path: Path, output_type: str) -> None:
    bag = write_arm_bag(tmp_path / "bag", frames=4, command=output_type)
    yaml = params(tmp_path)
    yaml.write_text(
        yaml.read_text() + f"    output_type: {output_type}\n    joint_names: [{', '.join(JOINTS)}]\n"
    )
    out = tmp_path / "ds"
    assert (
        main(["bag2lerobot", str(bag), "--params", str(yaml), "--out", str(out), "--action", "command"]) == 0
    )
    frames = read_data_files(out)
    ticks = np.array([0, 10, 20, 30])  # these commands have no stamp: their log time (+2 us) stands in
    measured = np.stack([0.1 * j + 0.001 * ticks for j in range(len(JOINTS))], axis=1)
    np.testing.assert_array_equal(frames["action"], (measured + 0.5).astype(np.float32))


def test_episodes_from_a_list_of_times(tmp_path: Path) -> None:
    bag = write_arm_bag(tmp_path / "bag", frames=12)
    out = tmp_path / "ds"
    args = ["bag2lerobot", str(bag), "--params", str(params(tmp_path)), "--out", str(out)]
    assert main([*args, "--episodes", "0:0.45,0.55:1.1", "--task", "pick"]) == 0
    frames = read_data_files(out)
    assert list(frames["episode_index"]) == [0] * 5 + [1] * 5  # frames 0-4 and 6-10
    np.testing.assert_allclose(frames["observation.state"][5, 0], 0.06, rtol=1e-6)
    assert json.loads((out / "meta/info.json").read_text())["total_tasks"] == 1


def test_episodes_from_a_bool_topic(tmp_path: Path) -> None:
    bag = write_arm_bag(tmp_path / "bag", frames=12, recording={0: True, 45: False, 60: True})
    out = tmp_path / "ds"
    args = ["bag2lerobot", str(bag), "--params", str(params(tmp_path)), "--out", str(out)]
    assert main([*args, "--episode-topic", "recording"]) == 0
    frames = read_data_files(out)
    assert list(frames["episode_index"]) == [0] * 5 + [1] * 6  # recording off from 0.45 s to 0.6 s
    np.testing.assert_array_equal(frames["observation.images.front"][5], camera_pixels(6))


def _fails(tmp_path: Path, capsys: pytest.CaptureFixture[str], bag: Path, out: Path, *extra: str) -> str:
    before = sorted(p.name for p in out.parent.iterdir())
    rc = main(["bag2lerobot", str(bag), "--out", str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert sorted(p.name for p in out.parent.iterdir()) == before  # nothing written, no temp folder left
    return err


def test_unknown_camera_topic_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = write_arm_bag(tmp_path / "bag", frames=3)
    yaml = params(tmp_path, "/wrist/image_raw")
    err = _fails(tmp_path, capsys, bag, tmp_path / "ds", "--params", str(yaml))
    assert "no topic '/wrist/image_raw' for the camera 'front'" in err
    assert "/camera/front/image_raw (sensor_msgs/msg/Image)" in err and "policy_node cameras" in err


def test_no_joint_states_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = write_arm_bag(tmp_path / "bag", frames=3, joint_states=False)
    err = _fails(tmp_path, capsys, bag, tmp_path / "ds", "--params", str(params(tmp_path)))
    assert "has no topic '/joint_states' for the joint states" in err and "--namespace" in err


def test_empty_bag_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    with Writer(tmp_path / "bag", version=9) as w:
        w.add_connection(
            "/joint_states", "sensor_msgs/msg/JointState", typestore=get_typestore(Stores.ROS2_HUMBLE)
        )
    err = _fails(tmp_path, capsys, tmp_path / "bag", tmp_path / "ds")
    assert "holds no messages" in err


def test_existing_out_exits_2_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = write_arm_bag(tmp_path / "bag", frames=3)
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    err = _fails(tmp_path, capsys, bag, out, "--params", str(params(tmp_path)))
    assert f"--out '{out}' already exists" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_missing_frames_with_on_gap_drop_leave_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bag = write_arm_bag(tmp_path / "bag", frames=6, drop_camera=(2,))
    err = _fails(
        tmp_path, capsys, bag, tmp_path / "ds", "--params", str(params(tmp_path)), "--on-gap", "drop"
    )
    assert "no complete frame at 10 fps" in err and "1 frames missing" in err


def test_camera_stamped_on_another_clock_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = write_arm_bag(tmp_path / "bag", frames=4, camera_clock_offset_s=-3600)
    err = _fails(tmp_path, capsys, bag, tmp_path / "ds", "--params", str(params(tmp_path)), "--fps", "10")
    assert "the streams' header stamps do not overlap" in err and "are they on one clock?" in err
    assert f"camera 'front': {100 - 3600:.3f}.." in err


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [("--fps", "0", "--fps 0 must be >= 1"), ("--gap-s", "0", "--gap-s 0.0 must be > 0")],
)
def test_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, says: str
) -> None:
    bag = write_arm_bag(tmp_path / "bag", frames=3)
    err = _fails(tmp_path, capsys, bag, tmp_path / "ds", "--params", str(params(tmp_path)), option, value)
    assert says in err
