"""Shared by the bag2lerobot tests: bags written with rosbags, the bag's own values, frame checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.eval.bag import BagSource

NS = 1_000_000_000
JOINTS = ("j1", "j2", "j3")


def stamp(msg: Any) -> int:
    return int(msg.header.stamp.sec) * NS + int(msg.header.stamp.nanosec)


def bag_truth(bag: Path, camera_topics: dict[str, str]) -> dict[str, Any]:
    """The bag's messages by header stamp: joint positions (by name), camera pixels, log times."""
    joints: dict[int, dict[str, float]] = {}
    cams: dict[str, dict[int, np.ndarray]] = {c: {} for c in camera_topics}
    logs: list[int] = []
    by_topic = {t: c for c, t in camera_topics.items()}
    with BagSource(bag) as src:
        for log, topic, msg in src.messages(["/joint_states", *camera_topics.values()]):
            logs.append(log)
            if topic == "/joint_states":
                joints.setdefault(stamp(msg), {}).update(dict(zip(msg.name, msg.position, strict=True)))
            else:
                pixels = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
                cams[by_topic[topic]][stamp(msg)] = pixels
    return {"joints": joints, "cameras": cams, "logs": logs}


def write_arm_bag(
    path: Path,
    *,
    frames: int = 12,
    drop_camera: tuple[int, ...] = (),
    command: str | None = "joint_state",
    joint_states: bool = True,
    camera_topic: str = "/camera/front/image_raw",
    start_s: int = 100,
    camera_clock_offset_s: int = 0,
    recording: dict[int, bool] | None = None,
) -> Path:
    """A 10 fps camera, 100 Hz joint states and 100 Hz JointState commands, stamped exactly.

    Joint ``j`` measures ``0.1 * j + 0.001 * tick``; its command is that plus 0.5. Camera frame
    ``k`` (stamp ``start + k * 100 ms``, plus ``camera_clock_offset_s``: a camera on another
    clock) is filled with the value ``10 * k`` in every channel (plus a row gradient); frames in
    ``drop_camera`` are not recorded. ``command``: the executor's output_type the commands are
    recorded as (``joint_state`` on vla/joint_command, ``float64_multi_array`` on commands,
    ``joint_trajectory`` on joint_trajectory with a header stamp of 0: "start now"), or None.
    ``recording``: tick -> std_msgs/Bool on ``/recording``.
    """
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types

    def header(t: int) -> Any:
        return T["std_msgs/msg/Header"](
            stamp=T["builtin_interfaces/msg/Time"](sec=t // NS, nanosec=t % NS), frame_id="base"
        )

    def joint_msg(t: int, values: np.ndarray) -> Any:
        empty = np.zeros(0, np.float64)
        return T["sensor_msgs/msg/JointState"](
            header=header(t), name=list(JOINTS), position=values, velocity=empty, effort=empty
        )

    start = start_s * NS
    with Writer(path, version=9) as w:
        cam = w.add_connection(camera_topic, "sensor_msgs/msg/Image", typestore=ts)
        js = (
            w.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ts)
            if joint_states
            else None
        )
        cmd_topic, cmd_type = COMMANDS[command or "joint_state"]
        cmd = w.add_connection(cmd_topic, cmd_type, typestore=ts)
        text = w.add_connection("/vla/instruction", "std_msgs/msg/String", typestore=ts)
        flag = w.add_connection("/recording", "std_msgs/msg/Bool", typestore=ts)
        w.write(
            text, start - 1, ts.serialize_cdr(T["std_msgs/msg/String"](data="stack the cubes"), text.msgtype)
        )
        for tick in range((frames - 1) * 10 + 1):
            t = start + tick * NS // 100
            measured = np.array([0.1 * j + 0.001 * tick for j in range(len(JOINTS))])
            if tick in (recording or {}):
                w.write(flag, t, ts.serialize_cdr(T["std_msgs/msg/Bool"](data=recording[tick]), flag.msgtype))
            if joint_states:
                w.write(js, t + 1000, ts.serialize_cdr(joint_msg(t, measured), js.msgtype))
            if command:
                w.write(cmd, t + 2000, ts.serialize_cdr(command_msg(T, command, t, measured + 0.5), cmd_type))
            if tick % 10 == 0 and tick // 10 not in drop_camera:
                pixels = camera_pixels(tick // 10)
                img = T["sensor_msgs/msg/Image"](
                    header=header(t + camera_clock_offset_s * NS),
                    height=pixels.shape[0],
                    width=pixels.shape[1],
                    encoding="rgb8",
                    is_bigendian=0,
                    step=3 * pixels.shape[1],
                    data=pixels.reshape(-1),
                )
                w.write(cam, t + 3000, ts.serialize_cdr(img, cam.msgtype))
    return path


COMMANDS = {
    "joint_state": ("/vla/joint_command", "sensor_msgs/msg/JointState"),
    "float64_multi_array": ("/commands", "std_msgs/msg/Float64MultiArray"),
    "joint_trajectory": ("/joint_trajectory", "trajectory_msgs/msg/JointTrajectory"),
}


def command_msg(T: Any, kind: str, t: int, values: np.ndarray) -> Any:
    """One command message of the executor's ``output_type`` ``kind`` for time ``t``."""
    zero = T["builtin_interfaces/msg/Time"](sec=0, nanosec=0)
    if kind == "float64_multi_array":
        layout = T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
        return T["std_msgs/msg/Float64MultiArray"](layout=layout, data=values)
    if kind == "joint_trajectory":
        empty = np.zeros(0, np.float64)
        point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
            positions=values,
            velocities=empty,
            accelerations=empty,
            effort=empty,
            time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=0),
        )
        header = T["std_msgs/msg/Header"](stamp=zero, frame_id="")
        return T["trajectory_msgs/msg/JointTrajectory"](
            header=header, joint_names=list(JOINTS), points=[point]
        )
    empty = np.zeros(0, np.float64)
    header = T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=t // NS, nanosec=t % NS), frame_id="base"
    )
    return T["sensor_msgs/msg/JointState"](
        header=header, name=list(JOINTS), position=values, velocity=empty, effort=empty
    )


def camera_pixels(k: int) -> np.ndarray:
    """Frame ``k`` of :func:`write_arm_bag`'s camera: ``[6, 8, 3]`` uint8."""
    pixels = np.full((6, 8, 3), 10 * k, np.uint8)
    pixels[:, :, 1] += np.arange(6, dtype=np.uint8)[:, None]
    return pixels


def read_data_files(root: Path) -> dict[str, Any]:
    """Every frame of the dataset's data files as arrays (PNG images decoded with OpenCV)."""
    import cv2
    import pyarrow.parquet as pq

    tables = [pq.read_table(p) for p in sorted((root / "data").glob("chunk-*/file-*.parquet"))]
    out: dict[str, Any] = {}
    for name in tables[0].column_names:
        values = [v for t in tables for v in t.column(name).to_pylist()]
        if name.startswith("observation.images."):
            decoded = [cv2.imdecode(np.frombuffer(v["bytes"], np.uint8), cv2.IMREAD_COLOR) for v in values]
            out[name] = np.stack([d[..., ::-1] for d in decoded])
        else:
            out[name] = np.asarray(values)
    return out


def check_sim_frames(
    frames: dict[str, Any], truth: dict[str, Any], fps: int, gap_s: float = 1.0
) -> list[int]:
    """Assert every dataset frame equals the sim bag's messages at its grid time; returns lengths.

    Episode ``e`` starts at its first camera stamp ``t0`` (episodes are separated by more than
    ``gap_s`` without messages); frame ``k`` is due at ``t0 + k / fps``. The sim arm stamps joint
    states every 10 ms and camera frames on a 40/30/30 ms pattern, so at 10 fps every frame time
    has a joint state and a camera frame stamped exactly then. The action is the next frame's state.
    """
    period = NS // fps
    cam = truth["cameras"]["front"]
    cam_stamps = np.array(sorted(cam), np.int64)
    cuts = np.nonzero(np.diff(cam_stamps) > gap_s * NS)[0]
    starts = cam_stamps[np.concatenate(([0], cuts + 1))]
    ends = cam_stamps[np.concatenate((cuts, [len(cam_stamps) - 1]))]
    joint_stamps = np.array(sorted(truth["joints"]), np.int64)
    episode = np.asarray(frames["episode_index"])
    lengths = []
    for e, (t0, t_end) in enumerate(zip(starts, ends, strict=True)):
        last = min(t_end, joint_stamps[joint_stamps <= t_end + gap_s * NS].max())
        expected = int((last - t0) // period)  # frames whose next frame is still recorded
        rows = np.nonzero(episode == e)[0]
        assert len(rows) == expected, (e, len(rows), expected)
        lengths.append(len(rows))
        for k, row in enumerate(rows):
            t = int(t0) + k * period
            assert frames["frame_index"][row] == k
            assert np.float32(frames["timestamp"][row]) == np.float32(k / fps)
            state = np.array([truth["joints"][t][j] for j in sorted(truth["joints"][t])], np.float32)
            nxt = np.array([truth["joints"][t + period][j] for j in sorted(truth["joints"][t])], np.float32)
            np.testing.assert_array_equal(np.asarray(frames["observation.state"][row], np.float32), state)
            np.testing.assert_array_equal(np.asarray(frames["action"][row], np.float32), nxt)
            np.testing.assert_array_equal(frames["observation.images.front"][row], cam[t])
    assert len(episode) == sum(lengths)
    return lengths
