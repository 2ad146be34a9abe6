"""Shared by the Diffusion Policy parity tests: LeRobot's whole path, run by vla_ros (no LeRobot)."""

from __future__ import annotations

import torch
from lerobot_fixtures import folder, golden

from vla_ros.spine.checkpoints import build_lerobot_policy, read_lerobot_folder
from vla_ros.spine.families.lerobot_diffusion import LeRobotDiffusion

DIFFUSION_CASES = ("diffusion_gn_ddim", "diffusion_bn_sample", "diffusion_ddpm")


def load_case(case: str) -> tuple[object, LeRobotDiffusion, dict, dict]:
    """(checkpoint, vla_ros model in eval mode, golden inputs, golden outputs)."""
    ckpt = read_lerobot_folder(folder(case))
    model = build_lerobot_policy(ckpt)
    assert isinstance(model, LeRobotDiffusion)
    inputs, outputs = golden(case)
    return ckpt, model, inputs, outputs


def spine_obs(ckpt, inputs: dict, i: int, frames: slice = slice(None)) -> dict[str, torch.Tensor]:
    """Sample ``i`` as spine inputs: images ``[1, T, N, 3, H, W]`` in [0, 1] (camera bytes / 255,
    cameras in config order), state ``[1, T, D]`` normalized with the checkpoint's statistics."""
    imgs = torch.stack(
        [inputs[c][i, frames].permute(0, 3, 1, 2).to(torch.float32) / 255.0 for c in ckpt.image_features],
        dim=1,
    )
    state = ckpt.normalizer("observation.state").normalize(inputs["observation.state"][i, frames])
    return {"images": imgs[None], "state": state[None]}


def repeat_history(obs: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """One frame repeated ``n`` times along T (LeRobot's queue right after reset)."""
    return {k: v.expand(v.shape[0], n, *v.shape[2:]).contiguous() for k, v in obs.items()}
