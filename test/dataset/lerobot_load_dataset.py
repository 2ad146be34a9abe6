"""Run in the LeRobot reference lane (Python 3.12, lerobot 0.6.1): load a dataset folder with
``LeRobotDataset`` and save every frame as LeRobot returns it into an ``.npz`` file.

    .venv-lerobot/bin/python test/dataset/lerobot_load_dataset.py DATASET OUT.npz
"""

import json
import sys

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset


def main() -> None:
    root, out = sys.argv[1], sys.argv[2]
    ds = LeRobotDataset("local/bag2lerobot", root=root)
    items = [ds[i] for i in range(len(ds))]
    arrays = {key: np.stack([np.asarray(item[key]) for item in items]) for key in items[0] if key != "task"}
    for key in ds.meta.camera_keys:  # float [0, 1] CHW -> uint8 HWC, exact for PNG-stored images
        arrays[key] = np.round(arrays[key].transpose(0, 2, 3, 1) * 255.0).astype(np.uint8)
    meta = {
        "num_frames": ds.num_frames,
        "num_episodes": ds.num_episodes,
        "fps": ds.fps,
        "camera_keys": list(ds.meta.camera_keys),
        "tasks": [item["task"] for item in items],
        "stats_state_mean": np.asarray(ds.meta.stats["observation.state"]["mean"]).tolist(),
    }
    np.savez(out, meta=json.dumps(meta), **arrays)


if __name__ == "__main__":
    main()
