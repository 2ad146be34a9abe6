"""LeRobot's conditional 1-D U-Net (Diffusion Policy), weight-compatible with its checkpoints.

The module tree and parameter names follow ``DiffusionConditionalUnet1d`` of LeRobot 0.6.1
(``lerobot/policies/diffusion/modeling_diffusion.py``; Chi et al. 2023, "Diffusion Policy",
https://arxiv.org/abs/2303.04137), so a checkpoint's ``diffusion.unet.*`` tensors load by prefix:

- ``diffusion_step_encoder``: sinusoidal embedding -> Linear(E, 4E) -> Mish -> Linear(4E, E);
- ``down_modules.<i>``: two FiLM residual blocks + a stride-2 ``Conv1d(k=3)`` (none at the last);
- ``mid_modules.<i>``: two FiLM residual blocks at the widest level;
- ``up_modules.<i>``: two FiLM residual blocks on ``[x, skip]`` + ``ConvTranspose1d(k=4, s=2)``;
- ``final_conv``: Conv1d-GroupNorm-Mish block, then a 1x1 ``Conv1d`` to the action dimension.

FiLM (Perez et al. 2017, https://arxiv.org/abs/1709.07871): every residual block adds (and with
``use_film_scale_modulation`` also multiplies by) a per-channel vector computed from
``cond = [step_embedding, global_cond]``. All shapes are static; the module traces into ONNX.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vla_ros.spine.registry import HEADS


class DiffusionSinusoidalPosEmb(nn.Module):
    """Transformer sine/cosine embedding of the diffusion step (Vaswani et al. 2017).

    ``forward(t [B]) -> [B, dim]``: ``[sin(t w_i), cos(t w_i)]`` with
    ``w_i = exp(-i ln(10000) / (dim/2 - 1))``, ``i < dim/2`` (LeRobot's formula, sin half first).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 4 or dim % 2:
            raise ValueError(f"diffusion_step_embed_dim must be even and >= 4, got {dim}")
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        half = self.dim // 2
        scale = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=t.device) * -scale)
        ang = t.unsqueeze(-1) * freqs.unsqueeze(0)
        return torch.cat((ang.sin(), ang.cos()), dim=-1)


class DiffusionConv1dBlock(nn.Module):
    """``Conv1d(k, same padding) -> GroupNorm(n_groups) -> Mish``; key names ``block.0/1``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, n_groups: int = 8) -> None:
        super().__init__()
        if cout % n_groups:
            raise ValueError(f"U-Net width {cout} is not divisible by n_groups={n_groups}")
        self.block = nn.Sequential(
            nn.Conv1d(cin, cout, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, cout),
            nn.Mish(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class DiffusionConditionalResidualBlock1d(nn.Module):
    """Two conv blocks with FiLM between them and a (1x1 conv) residual.

    ``forward(x [B, cin, T], cond [B, cond_dim]) -> [B, cout, T]``.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        cond_dim: int,
        kernel_size: int = 3,
        n_groups: int = 8,
        use_film_scale_modulation: bool = False,
    ) -> None:
        super().__init__()
        self.use_film_scale_modulation = use_film_scale_modulation
        self.out_channels = cout
        self.conv1 = DiffusionConv1dBlock(cin, cout, kernel_size, n_groups)
        film = cout * 2 if use_film_scale_modulation else cout
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, film))
        self.conv2 = DiffusionConv1dBlock(cout, cout, kernel_size, n_groups)
        self.residual_conv: nn.Module = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        out = self.conv1(x)
        emb = self.cond_encoder(cond).unsqueeze(-1)
        if self.use_film_scale_modulation:
            out = emb[:, : self.out_channels] * out + emb[:, self.out_channels :]
        else:
            out = out + emb
        return self.conv2(out) + self.residual_conv(x)


@HEADS.register()
class LeRobotConditionalUnet1d(nn.Module):
    """Noise (or sample) predictor of LeRobot's Diffusion Policy.

    ``forward(x [B, H, action_dim], timestep [B] int64, global_cond [B, global_cond_dim])
    -> [B, H, action_dim]``. ``H`` must be a multiple of ``2 ** len(down_dims)`` (LeRobot's check;
    the U-Net itself halves ``len(down_dims) - 1`` times).

    Args:
        action_dim: channels of the denoised sequence.
        global_cond_dim: observation condition size (``n_obs_steps * per-step features``).
        down_dims: channel width of each level (LeRobot default ``(512, 1024, 2048)``).
        kernel_size: temporal kernel of the conv blocks (default 5).
        n_groups: GroupNorm groups of the conv blocks (default 8).
        diffusion_step_embed_dim: step embedding size ``E`` (default 128).
        use_film_scale_modulation: FiLM scale and bias (True, LeRobot default) or bias only.
    """

    def __init__(
        self,
        action_dim: int = 2,
        global_cond_dim: int = 64,
        down_dims: Sequence[int] = (512, 1024, 2048),
        kernel_size: int = 5,
        n_groups: int = 8,
        diffusion_step_embed_dim: int = 128,
        use_film_scale_modulation: bool = True,
    ) -> None:
        super().__init__()
        dims = [int(d) for d in down_dims]
        if not dims:
            raise ValueError("down_dims must name at least one U-Net level")
        e = int(diffusion_step_embed_dim)
        self.action_dim, self.global_cond_dim = int(action_dim), int(global_cond_dim)
        self.down_dims = tuple(dims)
        self.diffusion_step_encoder = nn.Sequential(
            DiffusionSinusoidalPosEmb(e), nn.Linear(e, e * 4), nn.Mish(), nn.Linear(e * 4, e)
        )
        kw = {
            "cond_dim": e + self.global_cond_dim,
            "kernel_size": kernel_size,
            "n_groups": n_groups,
            "use_film_scale_modulation": use_film_scale_modulation,
        }
        in_out = [(self.action_dim, dims[0]), *itertools.pairwise(dims)]
        self.down_modules = nn.ModuleList()
        for i, (cin, cout) in enumerate(in_out):
            last = i >= len(in_out) - 1
            self.down_modules.append(
                nn.ModuleList(
                    [
                        DiffusionConditionalResidualBlock1d(cin, cout, **kw),
                        DiffusionConditionalResidualBlock1d(cout, cout, **kw),
                        nn.Conv1d(cout, cout, 3, 2, 1) if not last else nn.Identity(),
                    ]
                )
            )
        self.mid_modules = nn.ModuleList(
            [DiffusionConditionalResidualBlock1d(dims[-1], dims[-1], **kw) for _ in range(2)]
        )
        self.up_modules = nn.ModuleList()
        # LeRobot's is_last test compares against len(in_out) - 1 while enumerating len(in_out) - 1
        # items, so every up level upsamples; kept as is for weight compatibility.
        for cout, cin in reversed(in_out[1:]):
            self.up_modules.append(
                nn.ModuleList(
                    [
                        DiffusionConditionalResidualBlock1d(cin * 2, cout, **kw),
                        DiffusionConditionalResidualBlock1d(cout, cout, **kw),
                        nn.ConvTranspose1d(cout, cout, 4, 2, 1),
                    ]
                )
            )
        self.final_conv = nn.Sequential(
            DiffusionConv1dBlock(dims[0], dims[0], kernel_size=kernel_size),
            nn.Conv1d(dims[0], self.action_dim, 1),
        )

    def forward(self, x: Tensor, timestep: Tensor, global_cond: Tensor) -> Tensor:
        x = x.transpose(1, 2)  # [B, D, H]: channels first for Conv1d
        cond = torch.cat([self.diffusion_step_encoder(timestep), global_cond], dim=-1)
        skips: list[Tensor] = []
        for res1, res2, down in self.down_modules:
            x = res2(res1(x, cond), cond)
            skips.append(x)
            x = down(x)
        for mid in self.mid_modules:
            x = mid(x, cond)
        for res1, res2, up in self.up_modules:
            x = torch.cat((x, skips.pop()), dim=1)
            x = up(res2(res1(x, cond), cond))
        return self.final_conv(x).transpose(1, 2)
