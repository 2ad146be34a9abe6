"""Small helpers shared by the family implementations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.checkpoints.normalize import FeatureNormalizer


def encode_cameras(vision: nn.Module, images: Tensor) -> Tensor:
    """``images [B, N, C, H, W]`` through one shared backbone -> tokens ``[B, N * M, F]``."""
    b, n = images.shape[:2]
    tokens = vision(images.reshape(b * n, *images.shape[2:]))
    return tokens.reshape(b, n * tokens.shape[1], tokens.shape[2])


def action_weights(batch: Mapping[str, Tensor], actions: Tensor) -> Tensor:
    """``[B, H, 1]`` weights: 0 where ``batch["action_is_pad"]`` is true, else 1."""
    pad = batch.get("action_is_pad")
    if pad is None:
        return torch.ones(*actions.shape[:2], 1, dtype=actions.dtype, device=actions.device)
    return (~pad.bool()).to(actions.dtype)[..., None]


def masked_loss(pred: Tensor, target: Tensor, weights: Tensor, kind: str = "l1") -> Tensor:
    """Mean elementwise L1 or MSE over the non-padded actions."""
    if kind == "l1":
        err = F.l1_loss(pred, target, reduction="none")
    else:
        err = F.mse_loss(pred, target, reduction="none")
    denom = (weights.sum() * pred.shape[-1]).clamp_min(1.0)
    return (err * weights).sum() / denom


def require_actions(batch: Mapping[str, Tensor], family: str, horizon: int, dim: int) -> Tensor:
    """``batch["actions"]`` checked to be ``[B, horizon, dim]``."""
    if "actions" not in batch:
        raise KeyError(f"{family}.forward needs batch['actions'] [B, {horizon}, {dim}]")
    a = batch["actions"]
    if tuple(a.shape[1:]) != (horizon, dim):
        raise ValueError(
            f"{family}: batch['actions'] has shape {tuple(a.shape)}; expected [B, {horizon}, {dim}]"
        )
    return a


def camera_normalizers(
    image_normalization: Sequence[Mapping[str, Any]] | None, cameras: Sequence[str], channels: int
) -> nn.ModuleList:
    """One LeRobot :class:`~vla_ros.spine.checkpoints.normalize.FeatureNormalizer` per camera,
    statistics ``[channels, 1, 1]``, from ``{"mode": ..., "eps": ...}`` entries in camera order
    (``eps`` default 1e-8; ``None``: IDENTITY for every camera).

    Raises ``ValueError`` when the entries do not number the cameras.
    """
    norms = list(image_normalization or [{"mode": "IDENTITY"}] * len(cameras))
    if len(norms) != len(cameras):
        raise ValueError(
            f"image_normalization has {len(norms)} entries for {len(cameras)} cameras {list(cameras)}"
        )
    return nn.ModuleList(
        FeatureNormalizer(str(n["mode"]), (channels, 1, 1), eps=float(n.get("eps", 1e-8))) for n in norms
    )


class DiffusionNoise:
    """The training draws of the denoising-diffusion families (:class:`~vla_ros.spine.families.
    diffusion.DiffusionVLA`, :class:`~vla_ros.spine.families.lerobot_diffusion.LeRobotDiffusion`):
    Gaussian noise ``[B, horizon, action_dim]`` and a timestep ``[B]`` in
    ``0 .. num_train_timesteps - 1`` (DDPM, Ho et al. 2020). Mixed into a ``BaseVLA`` with
    ``io`` and ``num_train_timesteps``."""

    io: Any
    num_train_timesteps: int

    def training_noise(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        """``{"noise": [B, horizon, action_dim], "timestep": int64 [B]}`` drawn from ``seed``."""
        g = torch.Generator().manual_seed(seed)
        shape = (batch_size, self.io.horizon, self.io.action_dim)
        return {
            "noise": torch.randn(shape, generator=g),
            "timestep": torch.randint(0, self.num_train_timesteps, (batch_size,), generator=g),
        }

    def noise_and_timestep(self, batch: Mapping[str, Tensor], actions: Tensor) -> tuple[Tensor, Tensor]:
        """The batch's ``noise`` (shaped as ``actions``) and ``timestep [B]``, each drawn from the
        global generator when the batch has none."""
        noise = batch.get("noise")
        noise = torch.randn_like(actions) if noise is None else noise
        t = batch.get("timestep")
        if t is None:
            t = torch.randint(0, self.num_train_timesteps, (actions.shape[0],), device=actions.device)
        return noise, t
