"""Transformer building blocks shared by every component, written to trace into ONNX.

Rules kept here so that everything above them exports with static shapes:

- attention is plain ``matmul -> softmax -> matmul`` with an additive mask (no fused kernels);
- grouped-query attention repeats key/value heads with ``expand + reshape``;
- a KV cache is a pair of tensors ``[B, H_kv, L, head_dim]`` (per layer) grown with ``cat``;
- masks are built from static sizes only, never from tensor values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Additive mask value: exp(MASK_VALUE - max) underflows to exactly 0 in float32 and float16
# keeps it finite (float16 max is 65504), so an exported fp16 graph does not produce NaN.
MASK_VALUE = -1.0e4


class RMSNorm(nn.Module):
    """Root-mean-square layer norm (no mean subtraction), as in LLaMA-style decoders."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        var = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(var + self.eps) * self.weight


def make_norm(kind: str, dim: int, eps: float = 1e-6) -> nn.Module:
    """``"rms"`` -> :class:`RMSNorm`, ``"layer"`` -> ``nn.LayerNorm``."""
    if kind == "rms":
        return RMSNorm(dim, eps)
    if kind == "layer":
        return nn.LayerNorm(dim, eps=eps)
    raise ValueError(f"norm={kind!r} is not supported; use 'rms' or 'layer'")


def rope_tables(max_len: int, head_dim: int, theta: float = 10000.0) -> tuple[Tensor, Tensor]:
    """Rotary position tables ``cos, sin`` of shape ``[max_len, head_dim]``."""
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    ang = torch.arange(max_len, dtype=torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().float(), ang.sin().float()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x [B, H, L, D]`` by the tables ``cos, sin [L, D]`` (rotate-half convention)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def key_mask_to_additive(key_mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """Bool/0-1 ``[B, Lk]`` (1 = attend) -> additive ``[B, 1, 1, Lk]``."""
    if key_mask is None:
        return None
    return ((1.0 - key_mask.to(dtype)) * MASK_VALUE)[:, None, None, :]


def causal_additive(q_len: int, k_len: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Additive causal mask ``[Lq, Lk]`` where query ``i`` sees keys ``j <= (k_len - q_len) + i``."""
    allowed = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(k_len - q_len)
    zero = torch.zeros((), dtype=dtype, device=device)
    return torch.where(allowed, zero, torch.full((), MASK_VALUE, dtype=dtype, device=device))


class Attention(nn.Module):
    """Multi-head attention with grouped-query heads, optional RoPE and an external KV cache.

    Self-attention when ``context`` is None (keys from ``x``, appended to ``past_kv``);
    cross-attention otherwise (keys from ``context``, RoPE not applied to them).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        kv_heads: int | None = None,
        head_dim: int | None = None,
        context_dim: int | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        kv_heads = kv_heads or heads
        head_dim = head_dim or dim // heads
        if heads % kv_heads:
            raise ValueError(f"heads={heads} must be a multiple of kv_heads={kv_heads}")
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.scale = 1.0 / math.sqrt(head_dim)
        ctx = context_dim or dim
        self.q = nn.Linear(dim, heads * head_dim, bias=bias)
        # no key bias: it adds q.b to every score of a query, which softmax cancels exactly
        self.k = nn.Linear(ctx, kv_heads * head_dim, bias=False)
        self.v = nn.Linear(ctx, kv_heads * head_dim, bias=bias)
        self.o = nn.Linear(heads * head_dim, dim, bias=bias)

    def _split(self, x: Tensor, heads: int) -> Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, heads, self.head_dim).transpose(1, 2)

    def _repeat_kv(self, x: Tensor) -> Tensor:
        rep = self.heads // self.kv_heads
        if rep == 1:
            return x
        b, h, n, d = x.shape
        return x[:, :, None].expand(b, h, rep, n, d).reshape(b, h * rep, n, d)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        rope: tuple[Tensor, Tensor] | None = None,
        past_kv: tuple[Tensor, Tensor] | None = None,
        context: Tensor | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Returns the output ``[B, Lq, dim]`` and the (grown) ``(k, v)`` ``[B, H_kv, Lk, hd]``."""
        q = self._split(self.q(x), self.heads)
        src = x if context is None else context
        k = self._split(self.k(src), self.kv_heads)
        v = self._split(self.v(src), self.kv_heads)
        if rope is not None:
            cos, sin = rope
            q = apply_rope(q, cos, sin)
            if context is None:
                k = apply_rope(k, cos, sin)
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        scores = torch.matmul(q, self._repeat_kv(k).transpose(-1, -2)) * self.scale
        if mask is not None:
            scores = scores + mask
        attn = torch.softmax(scores, dim=-1)
        out = torch.matmul(attn, self._repeat_kv(v))
        b, _, n, _ = out.shape
        out = out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim)
        return self.o(out), (k, v)


class MLP(nn.Module):
    """Feed-forward block: ``"gelu"`` (two linears) or ``"swiglu"`` (gated, three linears)."""

    def __init__(self, dim: int, hidden: int, kind: str = "gelu", bias: bool = True) -> None:
        super().__init__()
        if kind not in ("gelu", "swiglu"):
            raise ValueError(f"mlp={kind!r} is not supported; use 'gelu' or 'swiglu'")
        self.kind = kind
        self.up = nn.Linear(dim, hidden, bias=bias)
        self.gate = nn.Linear(dim, hidden, bias=bias) if kind == "swiglu" else None
        self.down = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.gate is not None:
            return self.down(F.silu(self.gate(x)) * self.up(x))
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, MLP."""

    def __init__(
        self,
        dim: int,
        heads: int,
        kv_heads: int | None = None,
        head_dim: int | None = None,
        mlp_hidden: int | None = None,
        norm: str = "layer",
        mlp: str = "gelu",
        context_dim: int | None = None,
        bias: bool = True,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        mlp_hidden = mlp_hidden or 4 * dim
        self.norm1 = make_norm(norm, dim, eps)
        self.attn = Attention(dim, heads, kv_heads, head_dim, bias=bias)
        self.cross: Attention | None = None
        if context_dim is not None:
            self.norm_c = make_norm(norm, dim, eps)
            self.cross = Attention(dim, heads, kv_heads, head_dim, context_dim=context_dim, bias=bias)
        self.norm2 = make_norm(norm, dim, eps)
        self.mlp = MLP(dim, mlp_hidden, mlp, bias=bias)

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        rope: tuple[Tensor, Tensor] | None = None,
        past_kv: tuple[Tensor, Tensor] | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, kv = self.attn(self.norm1(x), mask=mask, rope=rope, past_kv=past_kv)
        x = x + h
        if self.cross is not None:
            if context is None:
                raise ValueError("this Block has cross-attention; pass context=")
            x = x + self.cross(self.norm_c(x), mask=context_mask, context=context)[0]
        return x + self.mlp(self.norm2(x)), kv


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of a float ``t [B]`` -> ``[B, dim]`` (sin then cos)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb.to(t.dtype) if t.is_floating_point() else emb


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``x [B, L, D]`` over L, counting only positions where ``mask [B, L]`` is 1."""
    if mask is None:
        return x.mean(dim=1)
    m = mask.to(x.dtype)[..., None]
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)
