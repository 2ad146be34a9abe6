"""pi0 / pi0.5 action experts (Gemma 300M), weight-compatible with LeRobot 0.6.1.

LeRobot's ``PI0Pytorch`` / ``PI05Pytorch.embed_suffix`` and ``denoise_step``
(``lerobot/policies/pi0/modeling_pi0.py``, ``pi05/modeling_pi05.py``; Black et al. 2024, "pi0: A
Vision-Language-Action Flow Model"; Physical Intelligence 2025, "pi0.5")::

    pi0   suffix = [state_proj(state); action_time_mlp_out(silu(action_time_mlp_in(
                   [action_in_proj(x_t), time_emb(t)])))]        the state token, then the actions
    pi0.5 suffix = action_in_proj(x_t); cond = silu(time_mlp_out(silu(time_mlp_in(time_emb(t)))))
                   conditions every norm of the expert (AdaRMS, gated residuals)
    every layer attends over [prefix K/V of the VLM's same layer (keys after RoPE); its own K/V],
    positions n_valid .. n_valid + S - 1; pi0's state token sees the prefix and itself, the action
    tokens see everything (bidirectional); velocity = action_out_proj(norm(suffix)[-chunk:]) in fp32

Names as LeRobot's (``gemma_expert.layers.<i>...``, ``gemma_expert.norm``, ``action_in_proj``,
``action_out_proj``, ``state_proj``, ``action_time_mlp_{in,out}`` / ``time_mlp_{in,out}``). The
time embedding is :func:`~vla_ros.spine.components.smolvla_expert.sinusoidal_time_embedding`
(openpi's, in float64), cast to the time's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.components.gemma import ROPE_BASE, AdaRMSNorm, GemmaLayer, GemmaRMSNorm
from vla_ros.spine.components.smollm import gqa_attention
from vla_ros.spine.components.smolvla_expert import ExpertStack, sinusoidal_time_embedding
from vla_ros.spine.registry import HEADS


class PiExpertBase(nn.Module):
    """Shared body of the pi0 / pi0.5 experts; subclasses build the suffix and the condition.

    Defaults are Gemma 300M's (LeRobot ``gemma_300m``: 1024 wide, 18 layers, 8 heads / 1 KV head
    of 256, MLP 4096); depth, KV heads and head size must equal the VLM's (the cache is shared).
    """

    ADARMS = False

    def __init__(
        self,
        dim: int = 1024,
        num_layers: int = 18,
        heads: int = 8,
        kv_heads: int = 1,
        head_dim: int = 256,
        mlp_hidden: int = 4096,
        eps: float = 1e-6,
        max_action_dim: int = 32,
        max_state_dim: int = 32,
        chunk_size: int = 50,
        min_period: float = 4e-3,
        max_period: float = 4.0,
        rope_base: float = ROPE_BASE,
    ) -> None:
        super().__init__()
        self.dim, self.depth, self.kv_heads, self.head_dim = dim, num_layers, kv_heads, head_dim
        self.chunk_size, self.max_action_dim, self.max_state_dim = chunk_size, max_action_dim, max_state_dim
        self.min_period, self.max_period, self.rope_base = min_period, max_period, rope_base
        cond = dim if self.ADARMS else None
        layers = [
            GemmaLayer(dim, heads, kv_heads, head_dim, mlp_hidden, eps, cond) for _ in range(num_layers)
        ]
        norm = AdaRMSNorm(dim, dim, eps) if self.ADARMS else GemmaRMSNorm(dim, eps)
        self.gemma_expert = ExpertStack(layers, norm)
        self.action_in_proj = nn.Linear(max_action_dim, dim)
        self.action_out_proj = nn.Linear(dim, max_action_dim)
        self.build_time_path()

    def build_time_path(self) -> None:
        """The family's own projections (state, time MLP); see the subclasses."""

    def time_embedding(self, t: Tensor) -> Tensor:
        """``t [B]`` -> ``[B, dim]``: openpi's sine/cosine embedding, cast to ``t``'s dtype."""
        return sinusoidal_time_embedding(t, self.dim, self.min_period, self.max_period).to(t.dtype)

    def run(
        self,
        prefix_k: Tensor,
        prefix_v: Tensor,
        prefix_mask: Tensor,
        h: Tensor,
        suffix_mask: Tensor,
        cond: Tensor | None,
    ) -> Tensor:
        """The expert over the suffix ``h [B, S, dim]``; ``suffix_mask [B, S, S]`` bool; returns
        the velocity of the last ``chunk_size`` tokens ``[B, chunk, max_action_dim]`` (float32)."""
        if prefix_k.shape[0] != self.depth:
            raise ValueError(f"the prefix cache has {prefix_k.shape[0]} layers; the expert has {self.depth}")
        # the layers' dtype: LeRobot's bf16 expert casts the float32 suffix embeddings at its input
        h = h.to(self.gemma_expert.layers[0].self_attn.q_proj.weight.dtype)
        b, s = h.shape[:2]
        p = prefix_mask.shape[1]
        n_valid = prefix_mask.to(torch.long).sum(dim=1, keepdim=True)
        positions = n_valid + torch.arange(s, device=h.device)[None, :]
        mask = torch.cat([prefix_mask[:, None, :].expand(b, s, p), suffix_mask], dim=2)
        for i, layer in enumerate(self.gemma_expert.layers):
            q, k, v, gate = layer.qkv(h, positions, cond, self.rope_base)
            att = gqa_attention(q, torch.cat([prefix_k[i], k], 1), torch.cat([prefix_v[i], v], 1), mask)
            h = layer.finish(h, att, gate, cond)
        out, _ = self.gemma_expert.norm(h, cond)
        return self.action_out_proj(out[:, -self.chunk_size :].to(torch.float32))


@HEADS.register()
class Pi0Expert(PiExpertBase):
    """pi0's velocity: ``forward(prefix_k, prefix_v, prefix_mask, state, x, t)`` with the cache
    ``[L, B, P, G, D]``, ``prefix_mask [B, P]`` bool, ``state [B, max_state_dim]`` (normalized,
    padded), ``x [B, chunk, max_action_dim]``, ``t [B]`` -> ``[B, chunk, max_action_dim]``."""

    def build_time_path(self) -> None:
        self.state_proj = nn.Linear(self.max_state_dim, self.dim)
        self.action_time_mlp_in = nn.Linear(2 * self.dim, self.dim)
        self.action_time_mlp_out = nn.Linear(self.dim, self.dim)

    def embed_suffix(self, state: Tensor, x: Tensor, t: Tensor) -> Tensor:
        """``[state token; action tokens]`` ``[B, 1 + chunk, dim]`` (LeRobot's ``embed_suffix``)."""
        st = self.state_proj(state.to(self.state_proj.weight.dtype))[:, None, :]
        a = self.action_in_proj(x)
        te = self.time_embedding(t)[:, None, :].expand_as(a)
        at = self.action_time_mlp_out(F.silu(self.action_time_mlp_in(torch.cat([a, te], dim=2))))
        return torch.cat([st, at], dim=1)

    def forward(
        self, prefix_k: Tensor, prefix_v: Tensor, prefix_mask: Tensor, state: Tensor, x: Tensor, t: Tensor
    ) -> Tensor:
        h = self.embed_suffix(state, x, t)
        s = h.shape[1]
        # blocks [state | actions]: the state sees itself, each action sees the state and all actions
        block = torch.ones(s, dtype=torch.long, device=h.device)
        block[0] = 0
        suffix_mask = (block[None, :] <= block[:, None])[None].expand(h.shape[0], s, s)
        return self.run(prefix_k, prefix_v, prefix_mask, h, suffix_mask, None)


@HEADS.register()
class Pi05Expert(PiExpertBase):
    """pi0.5's velocity: ``forward(prefix_k, prefix_v, prefix_mask, x, t)`` (the state is in the
    prompt), shapes as :class:`Pi0Expert`; time conditions every norm through AdaRMS."""

    ADARMS = True

    def build_time_path(self) -> None:
        self.time_mlp_in = nn.Linear(self.dim, self.dim)
        self.time_mlp_out = nn.Linear(self.dim, self.dim)

    def condition(self, t: Tensor) -> Tensor:
        """``silu(time_mlp_out(silu(time_mlp_in(time_emb(t)))))`` ``[B, dim]``."""
        return F.silu(self.time_mlp_out(F.silu(self.time_mlp_in(self.time_embedding(t)))))

    def forward(
        self, prefix_k: Tensor, prefix_v: Tensor, prefix_mask: Tensor, x: Tensor, t: Tensor
    ) -> Tensor:
        h = self.action_in_proj(x)
        b, s = h.shape[:2]
        suffix_mask = torch.ones(b, s, s, dtype=torch.bool, device=h.device)
        return self.run(prefix_k, prefix_v, prefix_mask, h, suffix_mask, self.condition(t))
