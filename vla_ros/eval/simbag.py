"""A demonstration rosbag2 from the embedded simulated arm, for trying ``vla-ros eval`` anywhere.

The scripted expert (:class:`vla_ros.sim.loop.ExpertPolicy`) reaches for a target per episode
while the recorder writes what a real ``ros2 bag record`` on the robot would hold: every camera
as ``sensor_msgs/Image`` rgb8 on ``/camera/<name>/image_raw``, the measured ``/joint_states`` at
the control rate, and the instruction on ``/vla/instruction``. Header stamps are the simulated
capture times; log times add ``delivery_s`` (the transport delay a recorder sees). Episodes are
separated by a ``gap_s`` with no messages, as when an operator resets the scene.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vla_ros.eval.bag import BagError

NS = 1_000_000_000
INSTRUCTION = "reach the red target"


def write_sim_bag(
    path: str | Path,
    *,
    episodes: int = 2,
    duration_s: float = 3.0,
    seed: int = 7,
    storage: str = "sqlite3",
    delivery_s: float = 0.002,
    gap_s: float = 1.0,
    cameras: tuple[str, ...] = ("front", "wrist"),
    horizon: int = 10,
    dt: float = 0.05,
) -> Path:
    """Record ``episodes`` expert demonstrations into a new rosbag2 folder at ``path``.

    ``storage`` is ``sqlite3`` or ``mcap``. Raises :class:`~vla_ros.eval.bag.BagError` when
    ``path`` already exists (rosbag2 never overwrites) or an argument is out of range.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from vla_ros.sim.loop import ExpertPolicy, LoopConfig, evaluation_targets, run_episode
    from vla_ros.sim.task import ReachTask

    path = Path(path)
    if path.exists():
        raise BagError(f"bag {str(path)!r} already exists; choose a new folder or delete it first")
    if episodes < 1 or duration_s <= 0:
        raise BagError(f"episodes must be >= 1 and duration_s > 0 (got {episodes}, {duration_s})")
    plugins = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
    if storage not in plugins:
        raise BagError(f"storage {storage!r} is not one of {sorted(plugins)}")
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    task = ReachTask()
    config = LoopConfig(cameras=cameras, duration_s=duration_s)
    delivery_ns = round(delivery_s * NS)
    with Writer(path, version=9, storage_plugin=plugins[storage]) as writer:
        conns = {
            f"/camera/{c}/image_raw": writer.add_connection(
                f"/camera/{c}/image_raw", "sensor_msgs/msg/Image", typestore=ts
            )
            for c in cameras
        }
        joints_conn = writer.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ts)
        text_conn = writer.add_connection("/vla/instruction", "std_msgs/msg/String", typestore=ts)
        offset = 0

        def header(stamp_ns: int, frame: str) -> object:
            sec, nanosec = divmod(stamp_ns, NS)
            return T["std_msgs/msg/Header"](
                stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame
            )

        def put(conn: object, log_ns: int, msg: object) -> None:
            writer.write(conn, log_ns, ts.serialize_cdr(msg, conn.msgtype))

        for target in evaluation_targets(episodes, seed=seed, task=task):
            start = offset
            put(text_conn, offset + NS - 1, T["std_msgs/msg/String"](data=INSTRUCTION))

            def on_tick(t_ns: int, names: tuple[str, ...], positions: np.ndarray, base: int = start) -> None:
                empty = np.zeros(0, np.float64)
                msg = T["sensor_msgs/msg/JointState"](
                    header=header(base + t_ns, "base_link"),
                    name=list(names),
                    position=np.asarray(positions, np.float64),
                    velocity=empty,
                    effort=empty,
                )
                put(joints_conn, base + t_ns + delivery_ns, msg)

            def on_observation(obs: object, _chunk: np.ndarray, base: int = start) -> None:
                stamp = base + obs.stamp_ns
                for cam, pixels in obs.images.items():
                    h, w = pixels.shape[:2]
                    msg = T["sensor_msgs/msg/Image"](
                        header=header(stamp, f"{cam}_optical"),
                        height=h,
                        width=w,
                        encoding="rgb8",
                        is_bigendian=0,
                        step=3 * w,
                        data=np.ascontiguousarray(pixels, np.uint8).reshape(-1),
                    )
                    put(conns[f"/camera/{cam}/image_raw"], stamp + delivery_ns, msg)

            expert = ExpertPolicy(task, target, horizon, dt)
            run_episode(
                expert, target, task=task, config=config, on_observation=on_observation, on_tick=on_tick
            )
            offset += round((duration_s + gap_s) * NS) + NS
    return path
