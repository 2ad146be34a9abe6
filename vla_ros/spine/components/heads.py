"""Action heads: the part of a VLA that turns features into an action chunk ``[B, H, D]``.

- :class:`ACTHead`: ACT's transformer encoder-decoder with a CVAE latent.
- :class:`FlowMatchingExpert`: pi0-style action expert attending to a prefix KV cache.
- :class:`ConditionalUNet1D`: Diffusion Policy's FiLM-conditioned 1-D U-Net (noise prediction).
- :class:`MLPActionHead`: per-query MLP (regression families).
- :class:`FastPolicyHead`: Helix-style fast visuomotor transformer reading a slow latent.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vla_ros.spine.components.layers import (
    Block,
    RMSNorm,
    key_mask_to_additive,
    rope_tables,
    sinusoidal_embedding,
)
from vla_ros.spine.registry import HEADS


def _blocks(dim: int, heads: int, depth: int, context_dim: int | None = None) -> nn.ModuleList:
    return nn.ModuleList(Block(dim, heads, context_dim=context_dim) for _ in range(depth))


@HEADS.register()
class ACTHead(nn.Module):
    """ACT: CVAE encoder (training only) + transformer encoder over [z, state, obs] + decoder.

    ``forward(obs_tokens [B, M, dim], state [B, S], actions=None, action_mask=None,
    latent_noise=None) -> (actions [B, H, D], mu, logvar)``; without ``actions`` the latent is
    the prior mean (zero) and ``mu``/``logvar`` are None.
    """

    def __init__(
        self,
        dim: int = 64,
        heads: int = 4,
        enc_layers: int = 2,
        dec_layers: int = 2,
        cvae_layers: int = 1,
        latent_dim: int = 16,
        horizon: int = 8,
        action_dim: int = 7,
        state_dim: int = 7,
        num_obs_tokens: int = 16,
    ) -> None:
        super().__init__()
        self.latent_dim, self.horizon = latent_dim, horizon
        # CVAE posterior q(z | state, actions)
        self.cvae_cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.cvae_state = nn.Linear(state_dim, dim)
        self.cvae_action = nn.Linear(action_dim, dim)
        self.cvae_pos = nn.Parameter(torch.randn(1, 2 + horizon, dim) * 0.02)
        self.cvae_blocks = _blocks(dim, heads, cvae_layers)
        self.cvae_out = nn.Linear(dim, 2 * latent_dim)
        # policy
        self.latent_in = nn.Linear(latent_dim, dim)
        self.state_in = nn.Linear(state_dim, dim)
        self.enc_pos = nn.Parameter(torch.randn(1, 2 + num_obs_tokens, dim) * 0.02)
        self.enc_blocks = _blocks(dim, heads, enc_layers)
        self.queries = nn.Parameter(torch.randn(1, horizon, dim))
        self.dec_blocks = _blocks(dim, heads, dec_layers, context_dim=dim)
        self.dec_norm = nn.LayerNorm(dim)
        self.action_out = nn.Linear(dim, action_dim)

    def posterior(
        self, state: Tensor, actions: Tensor, action_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``mu, logvar [B, latent_dim]`` of q(z | state, actions)."""
        b = state.shape[0]
        x = (
            torch.cat(
                [self.cvae_cls.expand(b, -1, -1), self.cvae_state(state)[:, None], self.cvae_action(actions)],
                dim=1,
            )
            + self.cvae_pos
        )
        mask = None
        if action_mask is not None:
            keep = torch.cat([x.new_ones(b, 2), action_mask.to(x.dtype)], dim=1)
            mask = key_mask_to_additive(keep, x.dtype)
        for blk in self.cvae_blocks:
            x = blk(x, mask=mask)[0]
        mu, logvar = self.cvae_out(x[:, 0]).chunk(2, dim=-1)
        return mu, logvar

    def forward(
        self,
        obs_tokens: Tensor,
        state: Tensor,
        actions: Tensor | None = None,
        action_mask: Tensor | None = None,
        latent_noise: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        b = obs_tokens.shape[0]
        mu = logvar = None
        if actions is None:
            z = torch.zeros(b, self.latent_dim, dtype=obs_tokens.dtype, device=obs_tokens.device)
        else:
            mu, logvar = self.posterior(state, actions, action_mask)
            eps = torch.randn_like(mu) if latent_noise is None else latent_noise
            z = mu + torch.exp(0.5 * logvar) * eps
        memory = (
            torch.cat([self.latent_in(z)[:, None], self.state_in(state)[:, None], obs_tokens], dim=1)
            + self.enc_pos
        )
        for blk in self.enc_blocks:
            memory = blk(memory)[0]
        x = self.queries.expand(b, -1, -1)
        for blk in self.dec_blocks:
            x = blk(x, context=memory)[0]
        return self.action_out(self.dec_norm(x)), mu, logvar


@HEADS.register()
class FlowMatchingExpert(nn.Module):
    """pi0-style action expert: its own weights, attending to the prefix's per-layer KV cache.

    Tokens: one state token, then ``horizon`` action tokens (noisy action + flow time). Layer
    ``i`` attends to ``[prefix K/V of LLM layer i, its own K/V]``, so ``depth``, ``kv_heads`` and
    ``head_dim`` must equal the LLM's (the VLA fills them in). Positions continue after the
    prefix. An optional ``context [B, dim]`` (a pooled prefix summary) is added to the state
    token. Returns the flow velocity ``[B, H, D]``.
    """

    def __init__(
        self,
        dim: int = 48,
        depth: int = 2,
        heads: int = 4,
        kv_heads: int = 2,
        head_dim: int = 16,
        mlp_hidden: int | None = None,
        action_dim: int = 7,
        state_dim: int = 7,
        horizon: int = 8,
        max_len: int = 512,
        rope_theta: float = 10000.0,
    ) -> None:
        super().__init__()
        self.dim, self.depth, self.kv_heads, self.head_dim = dim, depth, kv_heads, head_dim
        self.state_in = nn.Linear(state_dim, dim)
        self.action_in = nn.Linear(action_dim, dim)
        self.time_mlp = nn.Sequential(nn.Linear(2 * dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.layers = nn.ModuleList(
            Block(dim, heads, kv_heads, head_dim, mlp_hidden or 4 * dim, norm="rms", mlp="swiglu", bias=False)
            for _ in range(depth)
        )
        self.norm = RMSNorm(dim)
        self.action_out = nn.Linear(dim, action_dim)
        cos, sin = rope_tables(max_len, head_dim, rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(
        self,
        prefix_k: Tensor,
        prefix_v: Tensor,
        prefix_mask: Tensor,
        state: Tensor,
        x_t: Tensor,
        t: Tensor,
        context: Tensor | None = None,
    ) -> Tensor:
        b, h, _ = x_t.shape
        p = prefix_k.shape[3]
        # t: [B] (one flow time per sample) or [B, H] (per action token: real-time chunking
        # conditions the committed prefix at t = 0)
        temb = sinusoidal_embedding(t.reshape(-1) * 1000.0, self.dim).reshape(b, -1, self.dim)
        temb = temb.expand(b, h, self.dim)
        act = self.time_mlp(torch.cat([self.action_in(x_t), temb], dim=-1))
        state_tok = self.state_in(state)
        if context is not None:
            state_tok = state_tok + context
        x = torch.cat([state_tok[:, None], act], dim=1)
        n = x.shape[1]
        rope = (self.rope_cos[p : p + n], self.rope_sin[p : p + n])
        keep = torch.cat([prefix_mask.to(x.dtype), x.new_ones(b, n)], dim=1)
        mask = key_mask_to_additive(keep, x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, mask=mask, rope=rope, past_kv=(prefix_k[i], prefix_v[i]))[0]
        return self.action_out(self.norm(x[:, 1:]))


class _CondRes1D(nn.Module):
    """Two conv blocks with FiLM (scale, shift) from the condition between them."""

    def __init__(self, cin: int, cout: int, cond_dim: int, kernel: int, groups: int) -> None:
        super().__init__()

        def conv(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv1d(a, b, kernel, padding=kernel // 2), nn.GroupNorm(groups, b), nn.SiLU()
            )

        self.c1, self.c2 = conv(cin, cout), conv(cout, cout)
        self.film = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * cout))
        self.res = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        scale, shift = self.film(cond)[..., None].chunk(2, dim=1)
        h = self.c1(x) * (1.0 + scale) + shift
        return self.c2(h) + self.res(x)


@HEADS.register()
class ConditionalUNet1D(nn.Module):
    """Diffusion Policy's 1-D temporal U-Net, FiLM-conditioned on observation + diffusion step.

    ``forward(x [B, H, D], timestep [B], cond [B, cond_dim]) -> predicted noise [B, H, D]``.
    ``horizon`` must be divisible by ``2 ** (len(down_dims) - 1)``.
    """

    def __init__(
        self,
        action_dim: int = 7,
        cond_dim: int = 64,
        horizon: int = 8,
        down_dims: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        groups: int = 8,
        time_embed_dim: int = 32,
    ) -> None:
        super().__init__()
        levels = len(down_dims) - 1
        if horizon % (2**levels):
            raise ValueError(
                f"ConditionalUNet1D: horizon={horizon} must be divisible by 2**{levels} "
                f"(len(down_dims)={len(down_dims)}); change horizon or down_dims"
            )
        bad = [d for d in down_dims if d % groups]
        if bad:
            raise ValueError(f"ConditionalUNet1D: down_dims {bad} not divisible by groups={groups}")
        self.time_embed_dim = time_embed_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(time_embed_dim, 4 * time_embed_dim),
            nn.SiLU(),
            nn.Linear(4 * time_embed_dim, time_embed_dim),
        )
        c = cond_dim + time_embed_dim
        dims = [action_dim, *down_dims]
        pairs = list(itertools.pairwise(dims))
        self.downs = nn.ModuleList()
        for i, (a, b) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.downs.append(
                nn.ModuleList(
                    [
                        _CondRes1D(a, b, c, kernel_size, groups),
                        _CondRes1D(b, b, c, kernel_size, groups),
                        nn.Identity() if last else nn.Conv1d(b, b, 3, stride=2, padding=1),
                    ]
                )
            )
        top = down_dims[-1]
        self.mid = nn.ModuleList([_CondRes1D(top, top, c, kernel_size, groups) for _ in range(2)])
        self.ups = nn.ModuleList()
        for a, b in reversed(pairs[1:]):
            self.ups.append(
                nn.ModuleList(
                    [
                        _CondRes1D(2 * b, a, c, kernel_size, groups),
                        _CondRes1D(a, a, c, kernel_size, groups),
                        nn.ConvTranspose1d(a, a, 4, stride=2, padding=1),
                    ]
                )
            )
        self.final = nn.Sequential(
            nn.Conv1d(down_dims[0], down_dims[0], kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(groups, down_dims[0]),
            nn.SiLU(),
            nn.Conv1d(down_dims[0], action_dim, 1),
        )

    def forward(self, x: Tensor, timestep: Tensor, cond: Tensor) -> Tensor:
        temb = self.time_mlp(sinusoidal_embedding(timestep.to(cond.dtype), self.time_embed_dim))
        c = torch.cat([cond, temb], dim=-1)
        h = x.transpose(1, 2)
        skips = []
        for r1, r2, down in self.downs:
            h = r2(r1(h, c), c)
            skips.append(h)
            h = down(h)
        for r in self.mid:
            h = r(h, c)
        for r1, r2, up in self.ups:
            h = torch.cat([h, skips.pop()], dim=1)
            h = up(r2(r1(h, c), c))
        return self.final(h).transpose(1, 2)


@HEADS.register()
class MLPActionHead(nn.Module):
    """Per-token MLP: ``[B, H, in_dim] -> [B, H, action_dim]`` (OpenVLA-OFT style L1 head)."""

    def __init__(self, in_dim: int = 64, action_dim: int = 7, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = hidden_dim or 2 * in_dim
        self.net = nn.Sequential(
            nn.LayerNorm(in_dim),
            nn.Linear(in_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, action_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@HEADS.register()
class FastPolicyHead(nn.Module):
    """Helix System-1 style fast policy: [latent, state, image tokens, action queries] -> actions.

    The action queries are offset by the latent and state embeddings, so the conditioning
    reaches every query directly as well as through attention.

    ``forward(latent [B, latent_dim], obs_tokens [B, M, vision_dim], state [B, S]) -> [B, H, D]``.
    """

    def __init__(
        self,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        latent_dim: int = 32,
        vision_dim: int = 32,
        state_dim: int = 7,
        action_dim: int = 7,
        horizon: int = 8,
        num_obs_tokens: int = 16,
    ) -> None:
        super().__init__()
        self.latent_in = nn.Linear(latent_dim, dim)
        self.vision_in = nn.Linear(vision_dim, dim)
        self.state_in = nn.Linear(state_dim, dim)
        self.queries = nn.Parameter(torch.randn(1, horizon, dim))
        self.pos = nn.Parameter(torch.randn(1, 2 + num_obs_tokens + horizon, dim) * 0.02)
        self.blocks = _blocks(dim, heads, depth)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, action_dim)
        self.horizon = horizon

    def forward(self, latent: Tensor, obs_tokens: Tensor, state: Tensor) -> Tensor:
        lat, st = self.latent_in(latent)[:, None], self.state_in(state)[:, None]
        # the queries also start from latent + state (a direct conditioning path, FiLM-like)
        queries = self.queries + lat + st
        x = torch.cat([lat, st, self.vision_in(obs_tokens), queries], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)[0]
        return self.out(self.norm(x[:, -self.horizon :]))
