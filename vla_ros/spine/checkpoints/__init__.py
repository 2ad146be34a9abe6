"""Readers of foreign checkpoint folders (LeRobot: config, weights, processor statistics).

See :mod:`vla_ros.spine.checkpoints.lerobot` for the interface every LeRobot family builds on,
and :mod:`vla_ros.spine.checkpoints.normalize` for LeRobot's normalization modes in torch.
"""

from vla_ros.spine.checkpoints.lerobot import (
    LEROBOT_BUILDERS,
    LeRobotCheckpoint,
    LeRobotCheckpointError,
    LeRobotFeature,
    build_lerobot_policy,
    is_lerobot_folder,
    read_lerobot_folder,
    register_lerobot_builder,
    resolve_folder,
    supported_types,
)
from vla_ros.spine.checkpoints.normalize import (
    MODE_STATS,
    NORM_MODES,
    FeatureNormalizer,
    card_affine,
)

__all__ = [
    "LEROBOT_BUILDERS",
    "MODE_STATS",
    "NORM_MODES",
    "FeatureNormalizer",
    "LeRobotCheckpoint",
    "LeRobotCheckpointError",
    "LeRobotFeature",
    "build_lerobot_policy",
    "card_affine",
    "is_lerobot_folder",
    "read_lerobot_folder",
    "register_lerobot_builder",
    "resolve_folder",
    "supported_types",
]
