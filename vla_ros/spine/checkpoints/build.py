"""Building a spine model for a LeRobot checkpoint and loading its weights strictly: the one
place the flow families (pi0/pi0.5, SmolVLA) turn a model config and a checkpoint into a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from vla_ros.spine.checkpoints.lerobot import LeRobotCheckpoint, LeRobotCheckpointError


def camera_name(feature: str) -> str:
    """The card camera name of the LeRobot image feature ``feature``
    (``observation.images.top`` -> ``top``; any other key with its dots as underscores)."""
    prefix = "observation.images."
    return feature[len(prefix) :] if feature.startswith(prefix) else feature.replace(".", "_")


def camera_features(ckpt: LeRobotCheckpoint, label: str) -> list[str]:
    """The checkpoint's real camera features (its ``empty_cameras`` padding left out), in order.

    :class:`LeRobotCheckpointError` naming ``config.json`` and the ``label`` policy when there is
    no camera, the cameras differ in size (a card has one image size), an environment-state input
    (no ROS source) or no ``observation.state`` (the card's joints)."""
    where = ckpt.path / "config.json"
    n_empty = int(ckpt.config.get("empty_cameras", 0))
    empty = {f"observation.images.empty_camera_{i}" for i in range(n_empty)}
    cams = [k for k in ckpt.image_features if k not in empty]
    if not cams:
        raise LeRobotCheckpointError(f"{where}: this {label} has no camera input; it needs at least one")
    shapes = {k: ckpt.input_features[k].shape for k in cams}
    if len(set(shapes.values())) != 1:
        raise LeRobotCheckpointError(
            f"{where}: cameras have different sizes {shapes}; a policy card has one image size for all"
        )
    if ckpt.features_of("ENV"):
        raise LeRobotCheckpointError(f"{where}: environment-state inputs have no ROS source in vla_ros")
    if "observation.state" not in ckpt.input_features:
        raise LeRobotCheckpointError(f"{where}: no 'observation.state' input; the card's joints come from it")
    return cams


def build_and_load(
    ckpt: LeRobotCheckpoint,
    cfg: dict[str, Any],
    weights: Callable[[Any], dict[str, Tensor]],
    name_mapping: Any,
    *,
    label: str,
    config_desc: str,
    sources: str,
) -> nn.Module:
    """The spine model of ``cfg`` (``build_vla``) with ``weights(model)`` loaded strictly through
    ``name_mapping``, in eval mode.

    :class:`LeRobotCheckpointError` when the config builds no model (naming the ``label`` model
    and ``config.json``) or the weights do not fit it (naming ``model.safetensors``,
    ``config.json`` + ``config_desc``, the load report and ``sources``, what came from
    different models)."""
    from vla_ros.spine.compose import build_vla
    from vla_ros.spine.weights import WeightLoadError, load_weights

    try:
        model = build_vla(cfg)
    except (TypeError, ValueError, KeyError) as e:
        raise LeRobotCheckpointError(
            f"{ckpt.path / 'config.json'}: cannot build the {label} model: {e}"
        ) from e
    try:
        load_weights(model, weights(model), name_mapping=name_mapping, strict=True)
    except WeightLoadError as e:
        raise LeRobotCheckpointError(
            f"{ckpt.path / 'model.safetensors'} does not fit {ckpt.path / 'config.json'}{config_desc}: "
            f"{e.report.summary(8)}. {sources} come from different models; copy the whole "
            "pretrained_model folder"
        ) from e
    return model.eval()
