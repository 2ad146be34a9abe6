"""vla_ros.eval: rosbag replay through the policy and executor code, metrics, plots, tuning.

- :mod:`~vla_ros.eval.bag`: read rosbag2 (sqlite3, mcap) with ``rosbags``; no ROS needed.
- :mod:`~vla_ros.eval.replay`: the policy pass (``PolicyStep``) and the executor pass
  (``ChunkController``) in bag time.
- :mod:`~vla_ros.eval.metrics`: chunk and command error against a recorded reference, smoothness.
- :mod:`~vla_ros.eval.tune`: executor parameter sweeps and writing the winner into the YAML.
- :mod:`~vla_ros.eval.simbag`: a demonstration bag from the embedded simulated arm.
- ``vla-ros eval`` / ``vla-ros tune``: :mod:`~vla_ros.eval.cli`, :mod:`~vla_ros.eval.tune_cli`.
"""
