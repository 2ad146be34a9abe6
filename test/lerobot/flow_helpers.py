"""Shared by the LeRobot pi0 / pi0.5 and SmolVLA model tests: raw golden inputs -> the spine's
inputs, and the whole-path check against LeRobot's outputs."""

from __future__ import annotations

import torch
from lerobot_fixtures import BOUND

from vla_ros.spine.checkpoints import LeRobotCheckpoint


def images_and_state(
    ckpt: LeRobotCheckpoint, model: torch.nn.Module, inputs: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Golden uint8 HWC camera bytes and raw state -> images ``[B, N, 3, H, W]`` in [0, 1] (the
    model's camera order) and the checkpoint-normalized state ``[B, D]``."""
    cams = [f"observation.images.{c}" for c in model.io.camera_names]
    images = torch.stack([inputs[f].permute(0, 3, 1, 2).to(torch.float32) / 255.0 for f in cams], dim=1)
    return images, ckpt.normalizer("observation.state").normalize(inputs["observation.state"])


def assert_whole_path_matches(
    ckpt: LeRobotCheckpoint,
    model: torch.nn.Module,
    obs: dict[str, torch.Tensor],
    inputs: dict[str, torch.Tensor],
    outputs: dict[str, torch.Tensor],
) -> None:
    """``model.predict_action(obs, noise=inputs["noise"])`` equals LeRobot's actions (raw and
    normalized) within :data:`BOUND`, and the golden actions vary over the chunk and samples."""
    with torch.no_grad():
        normalized = model.predict_action(obs, noise=inputs["noise"])
    got = ckpt.normalizer("action").unnormalize(normalized)
    assert got.shape == outputs["action"].shape
    assert (got - outputs["action"]).abs().max().item() <= BOUND
    assert (normalized - outputs["action.normalized"]).abs().max().item() <= BOUND
    # the golden actions vary over the chunk and between samples (a constant would not)
    assert outputs["action"].std(dim=1).min().item() > 1e-2
    assert (outputs["action"][0] - outputs["action"][1]).abs().max().item() > 1e-2
