"""Projectors: map one feature width to another (vision -> LLM, VLM -> latent, ...).

All act on the last dimension, so ``[B, N, in_dim] -> [B, N, out_dim]`` and ``[B, in_dim] ->
[B, out_dim]`` both work.
"""

from __future__ import annotations

from torch import Tensor, nn

from vla_ros.spine.registry import PROJECTORS


@PROJECTORS.register()
class LinearProjector(nn.Module):
    """One linear layer."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.proj = nn.Linear(in_dim, out_dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


@PROJECTORS.register()
class MLPProjector(nn.Module):
    """Linear -> GELU -> Linear (LLaVA / Prismatic "gelu-mlp")."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        hidden_dim = hidden_dim or out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@PROJECTORS.register()
class FusedMLPProjector(nn.Module):
    """Projector for fused (concatenated) multi-backbone features, Prismatic "fused-gelu-mlp":
    a wide first layer (``fused_factor * in_dim``), then two GELU MLP layers to ``out_dim``."""

    def __init__(self, in_dim: int, out_dim: int, fused_factor: int = 4) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        wide = fused_factor * in_dim
        self.net = nn.Sequential(
            nn.Linear(in_dim, wide),
            nn.GELU(),
            nn.Linear(wide, out_dim),
            nn.GELU(),
            nn.Linear(out_dim, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
