"""vla_ros.dataset: rosbag2 teleoperation recordings -> LeRobot datasets (v3 layout).

- :mod:`~vla_ros.dataset.mapping`: which bag topics feed which dataset feature (the nodes' YAML).
- :mod:`~vla_ros.dataset.align`: episode splitting (log time) and the fixed-fps grid (header stamps).
- :mod:`~vla_ros.dataset.stats`: per-feature statistics as LeRobot's ``meta/stats.json`` holds them.
- :mod:`~vla_ros.dataset.lerobot_v3`: the files of a LeRobot 0.6.1 (codebase v3.0) dataset, with pyarrow.
- :mod:`~vla_ros.dataset.convert`: the conversion; ``vla-ros bag2lerobot``: :mod:`~vla_ros.dataset.cli`.

Nothing here imports LeRobot, torch or ROS.
"""
