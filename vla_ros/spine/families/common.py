"""Small helpers shared by the family implementations."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
