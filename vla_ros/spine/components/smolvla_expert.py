"""SmolVLA's action expert (the flow-matching velocity head), weight-compatible with LeRobot 0.6.1.

LeRobot's ``VLAFlowMatching.embed_suffix`` / ``denoise_step`` and the expert half of
``SmolVLMWithExpertModel.forward`` (``lerobot/policies/smolvla/``), in cross-attention mode::

    suffix = action_time_mlp_out(silu(action_time_mlp_in([action_in_proj(x_t), time_emb(t)])))
    layer i (i % self_attn_every_n_layers == 0): self-attention over [prefix K/V of VLM layer i;
        its own K/V], RoPE positions n_valid .. n_valid + S - 1, action tokens causal
    other layers: cross-attention to VLM layer i's cached keys (after RoPE) and values,
        re-projected by the layer's own k_proj / v_proj, query positions 0 .. S - 1
    velocity = action_out_proj(norm(suffix))

Names as LeRobot's (``lm_expert.layers.<i>...``, ``lm_expert.norm``, ``action_in_proj``,
``action_out_proj``, ``action_time_mlp_in``, ``action_time_mlp_out``). The time embedding is
openpi's ``create_sinusoidal_pos_embedding`` (periods ``min_period .. max_period`` geometric,
``[sin, cos]``), computed in float64 like LeRobot's on the CPU.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.components.smollm import ROPE_BASE, LlamaLayer, RMSNorm, apply_rope, gqa_attention
from vla_ros.spine.registry import HEADS


def expert_mlp_hidden(width: int, multiplier: int = 4, multiple_of: int = 256) -> int:
    """LeRobot's ``get_intermediate_size``: ``int(2 w / 3) * 4`` rounded up to a multiple of 256."""
    hidden = int(multiplier * int(2 * width / 3))
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def sinusoidal_time_embedding(t: Tensor, dim: int, min_period: float, max_period: float) -> Tensor:
    """``t [B]`` -> ``[B, dim]`` float64: ``[sin(2 pi t / p), cos(2 pi t / p)]`` for ``dim / 2``
    periods ``p = min_period * (max_period / min_period) ** linspace(0, 1)`` (openpi / LeRobot)."""
    if dim % 2:
        raise ValueError(f"time embedding width {dim} must be even")
    fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=torch.float64, device=t.device)
    period = min_period * (max_period / min_period) ** fraction
    scale = 1.0 / period * 2 * math.pi
    arg = scale[None, :] * t.to(torch.float64)[:, None]
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


class ExpertStack(nn.Module):
    """An action expert's decoder ``layers`` and final ``norm``, no embeddings (LeRobot's SmolVLA
    ``lm_expert`` and pi0's ``gemma_expert.model``; the weight names both checkpoints use)."""

    def __init__(self, layers: list[nn.Module], norm: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm


@HEADS.register()
class SmolVLAExpert(nn.Module):
    """Velocity of SmolVLA's flow: prefix KV cache + noisy actions + time -> ``v [B, S, A]``.

    ``forward(prefix_k, prefix_v, prefix_mask, x, t)``: ``prefix_k``/``prefix_v``
    ``[L, B, P, G, D]`` (the VLM's per-layer cache, keys after RoPE), ``prefix_mask [B, P]`` bool
    (valid prefix tokens), ``x [B, S, max_action_dim]``, ``t [B]`` -> ``[B, S, max_action_dim]``.
    ``L`` must equal ``num_layers`` (LeRobot's default ``num_expert_layers <= 0``).
    """

    def __init__(
        self,
        dim: int = 720,
        num_layers: int = 16,
        heads: int = 15,
        kv_heads: int = 5,
        head_dim: int = 64,
        mlp_hidden: int | None = None,
        eps: float = 1e-5,
        self_attn_every_n_layers: int = 2,
        max_action_dim: int = 32,
        chunk_size: int = 50,
        min_period: float = 4e-3,
        max_period: float = 4.0,
        rope_base: float = ROPE_BASE,
    ) -> None:
        super().__init__()
        self.dim, self.depth, self.kv_heads, self.head_dim = dim, num_layers, kv_heads, head_dim
        self.every = int(self_attn_every_n_layers)
        self.chunk_size, self.max_action_dim = chunk_size, max_action_dim
        self.min_period, self.max_period, self.rope_base = min_period, max_period, rope_base
        hidden = mlp_hidden or expert_mlp_hidden(dim)
        kv = kv_heads * head_dim
        layers = [
            LlamaLayer(dim, heads, kv_heads, head_dim, hidden, eps, kv_in=None if self.is_self(i) else kv)
            for i in range(num_layers)
        ]
        self.lm_expert = ExpertStack(layers, RMSNorm(dim, eps))
        self.action_in_proj = nn.Linear(max_action_dim, dim)
        self.action_out_proj = nn.Linear(dim, max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * dim, dim)
        self.action_time_mlp_out = nn.Linear(dim, dim)

    def is_self(self, i: int) -> bool:
        """Layer ``i`` self-attends over [prefix; suffix] (else it cross-attends to the prefix)."""
        return self.every > 0 and i % self.every == 0

    def embed_suffix(self, x: Tensor, t: Tensor) -> Tensor:
        """LeRobot's ``embed_suffix``: noisy actions ``[B, S, A]`` and time ``[B]`` -> ``[B, S, dim]``."""
        a = self.action_in_proj(x)
        te = sinusoidal_time_embedding(t, self.dim, self.min_period, self.max_period).to(a.dtype)
        h = self.action_time_mlp_in(torch.cat([a, te[:, None, :].expand_as(a)], dim=2))
        return self.action_time_mlp_out(F.silu(h))

    def forward(
        self, prefix_k: Tensor, prefix_v: Tensor, prefix_mask: Tensor, x: Tensor, t: Tensor
    ) -> Tensor:
        if prefix_k.shape[0] != self.depth:
            raise ValueError(f"the prefix cache has {prefix_k.shape[0]} layers; the expert has {self.depth}")
        b, s = x.shape[:2]
        p = prefix_mask.shape[1]
        h = self.embed_suffix(x, t)
        arange = torch.arange(s, device=x.device)
        n_valid = prefix_mask.to(torch.long).sum(dim=1, keepdim=True)  # [B, 1]
        self_pos = n_valid + arange[None, :]
        cross_pos = arange[None, :].expand(b, s)
        pm = prefix_mask[:, None, :].expand(b, s, p)
        causal = (arange[None, :] <= arange[:, None])[None].expand(b, s, s)
        self_mask = torch.cat([pm, causal], dim=2)
        for i, layer in enumerate(self.lm_expert.layers):
            a = layer.self_attn
            if self.is_self(i):
                q, k, v = layer.qkv(h)
                q = apply_rope(q, self_pos, self.rope_base)
                k = apply_rope(k, self_pos, self.rope_base)
                att = gqa_attention(
                    q, torch.cat([prefix_k[i], k], 1), torch.cat([prefix_v[i], v], 1), self_mask
                )
            else:
                n = layer.input_layernorm(h)
                q = apply_rope(a.q_proj(n).view(b, s, -1, a.head_dim), cross_pos, self.rope_base)
                k = a.k_proj(prefix_k[i].reshape(b, p, -1)).view(b, p, -1, a.head_dim)
                v = a.v_proj(prefix_v[i].reshape(b, p, -1)).view(b, p, -1, a.head_dim)
                att = gqa_attention(q, k, v, pm)
            h = layer.finish(h, att)
        return self.action_out_proj(self.lm_expert.norm(h).to(torch.float32))
