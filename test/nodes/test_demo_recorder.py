"""``vla-ros demo --record``: CDR messages into an MCAP rosbag2 folder, read back by rosbags.

The messages are serialized here with the ``rosbags`` typestore the recorder uses for its
schemas (the demo itself writes the bytes its raw subscriptions receive; test_demo.py reads a
real run's recording back message by message).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from vla_ros.nodes.demo.recorder import McapRecorder, RecordError, type_name, typestore


def _messages(store):
    T = store.types
    empty = np.zeros(0, np.float64)

    def header(sec: int) -> object:
        return T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=0), frame_id="f"
        )

    def duration(ns: int) -> object:
        return T["builtin_interfaces/msg/Duration"](sec=0, nanosec=ns)

    chunk = T["vla_ros/msg/ActionChunk"](
        header=header(3),
        policy_id="sim_reach_act@test",
        seq=7,
        joint_names=["j1", "j2"],
        dt=duration(50_000_000),
        horizon=3,
        action_dim=2,
        actions=np.arange(6, dtype=np.float32) / 4,
        action_mode="delta",
        inference_latency=duration(1_000_000),
    )
    states = [
        T["sensor_msgs/msg/JointState"](
            header=header(k),
            name=["j1", "j2"],
            position=np.array([0.1 * k, -0.2 * k]),
            velocity=empty,
            effort=empty,
        )
        for k in range(5)
    ]
    image = T["sensor_msgs/msg/Image"](
        header=header(1),
        height=2,
        width=3,
        encoding="rgb8",
        is_bigendian=0,
        step=9,
        data=np.arange(18, dtype=np.uint8),
    )
    point = T["geometry_msgs/msg/PointStamped"](
        header=header(1), point=T["geometry_msgs/msg/Point"](x=0.4, y=0.5, z=0.0)
    )
    return {
        "/joint_states": ("sensor_msgs/msg/JointState", states),
        "/vla/action_chunk": ("vla_ros/msg/ActionChunk", [chunk]),
        "/camera/front/image_raw": ("sensor_msgs/msg/Image", [image, image]),
        "/sim/target": ("geometry_msgs/msg/PointStamped", [point]),
    }


def test_recording_reads_back_with_the_right_topics_counts_and_values(tmp_path: Path) -> None:
    from rosbags.rosbag2 import Reader
    from rosbags.rosbag2.storage_mcap import McapReader

    store = typestore()
    msgs = _messages(store)
    topics = {topic: msgtype for topic, (msgtype, _) in msgs.items()}
    recorder = McapRecorder(tmp_path / "rec", topics)
    t = 1_000
    for topic, (msgtype, values) in msgs.items():
        for msg in values:
            t += 1
            recorder.write(topic, t, store.serialize_cdr(msg, msgtype).tobytes())
    recorder.close()
    recorder.write("/sim/target", t + 1, b"ignored once closed")
    counts = {k: len(v) for k, (_, v) in msgs.items()}
    assert recorder.mcap_file == tmp_path / "rec" / "rec.mcap" and recorder.mcap_file.is_file()
    assert dict(recorder.counts) == counts

    meta = yaml.safe_load((tmp_path / "rec" / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap" and meta["message_count"] == 9
    assert recorder.mcap_file.read_bytes()[:8] == b"\x89MCAP0\r\n"  # the MCAP magic
    # what Foxglove's and PlotJuggler's ROS 2 decoders read: ros2msg schemas with every
    # dependency inlined, CDR messages
    mcap = McapReader(recorder.mcap_file)
    mcap.open()
    try:
        schemas = {s.name: s for s in mcap.schemas.values()}
        channels = {c.topic: c for c in mcap.channels.values()}
    finally:
        mcap.close()
    assert set(schemas) == set(topics.values()) and {s.encoding for s in schemas.values()} == {"ros2msg"}
    assert {c.topic: (c.schema, c.message_encoding) for c in channels.values()} == {
        t: (m, "cdr") for t, m in topics.items()
    }
    chunk_schema = schemas["vla_ros/msg/ActionChunk"].data
    assert chunk_schema.startswith("std_msgs/Header header\n")
    assert "MSG: std_msgs/Header" in chunk_schema and "MSG: builtin_interfaces/Duration" in chunk_schema
    with Reader(tmp_path / "rec") as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == topics
        assert {c.topic: c.msgcount for c in reader.connections} == counts
        chunk_conn = next(c for c in reader.connections if c.topic == "/vla/action_chunk")
        assert "float32[] actions" in chunk_conn.msgdef.data  # the schema Foxglove decodes with
        read: dict[str, list] = {c.topic: [] for c in reader.connections}
        for conn, stamp, raw in reader.messages():
            read[conn.topic].append((stamp, store.deserialize_cdr(raw, conn.msgtype)))
    chunk = read["/vla/action_chunk"][0][1]
    assert (chunk.policy_id, chunk.seq, chunk.horizon, chunk.dt.nanosec) == (
        "sim_reach_act@test",
        7,
        3,
        50_000_000,
    )
    np.testing.assert_array_equal(chunk.actions, np.arange(6, dtype=np.float32) / 4)
    assert [m.position.tolist() for _, m in read["/joint_states"]] == [[0.1 * k, -0.2 * k] for k in range(5)]
    assert read["/camera/front/image_raw"][1][1].data.tolist() == list(range(18))
    assert (read["/sim/target"][0][1].point.x, read["/sim/target"][0][1].point.y) == (0.4, 0.5)
    assert [s for s, _ in read["/joint_states"]] == [1001, 1002, 1003, 1004, 1005]


def test_refuses_an_existing_folder_and_unknown_types(tmp_path: Path) -> None:
    (tmp_path / "there").mkdir()
    with pytest.raises(RecordError, match="already exists; choose another --out"):
        McapRecorder(tmp_path / "there", {"/a": "std_msgs/msg/String"})
    with pytest.raises(RecordError, match=r"cannot record types \['nope_msgs/msg/Nope'\]"):
        McapRecorder(tmp_path / "new", {"/a": "nope_msgs/msg/Nope"})
    assert not (tmp_path / "new").exists()


@pytest.mark.ros
def test_type_names_of_rclpy_classes() -> None:
    from sensor_msgs.msg import JointState

    from vla_ros.msg import ActionChunk

    assert type_name(JointState) == "sensor_msgs/msg/JointState"
    assert type_name(ActionChunk) == "vla_ros/msg/ActionChunk"
