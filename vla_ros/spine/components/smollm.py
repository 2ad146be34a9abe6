"""SmolLM (Llama-architecture) decoder layers as SmolVLA runs them, and its prefix LLM slot.

Weight names follow Hugging Face's ``LlamaModel`` (``embed_tokens``, ``layers.<i>.input_layernorm``,
``self_attn.{q,k,v,o}_proj``, ``post_attention_layernorm``, ``mlp.{gate,up,down}_proj``, ``norm``),
so a SmolVLM text model's state dict loads by name. The attention is LeRobot 0.6.1's
``SmolVLMWithExpertModel`` path (``lerobot/policies/smolvla/smolvlm_with_expert.py``), not the
VLM's own: rotary positions with base 10000 (LeRobot's ``apply_rope``, split-half rotation computed
in float32, whatever the VLM config says), grouped-query attention written out eagerly with a
boolean mask, masked logits set to the float32 minimum and a float32 softmax.

Shapes: ``B`` batch, ``L`` tokens, ``H`` query heads, ``G`` key/value heads, ``D`` head size.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.registry import LLM_BACKBONES

#: LeRobot's SmolVLA RoPE base (``apply_rope(max_wavelength=10_000)``), not SmolVLM2's 100000
ROPE_BASE = 10_000.0


class RMSNorm(nn.Module):
    """Llama RMSNorm: ``w * x / sqrt(mean(x^2) + eps)``, computed in float32 (HF ``LlamaRMSNorm``)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def apply_rope(x: Tensor, positions: Tensor, base: float = ROPE_BASE) -> Tensor:
    """Rotary positions: ``x [B, L, H, D]``, ``positions [B, L]`` (any int/float) -> ``[B, L, H, D]``.

    LeRobot's ``apply_rope``: frequencies ``base ** (-2 i / D)`` for ``i < D/2``, the first half of
    each head rotated against the second (``[x1 cos - x2 sin, x2 cos + x1 sin]``), in float32.
    """
    d_half = x.shape[-1] // 2
    dtype = x.dtype
    x = x.to(torch.float32)
    exponents = (2.0 / x.shape[-1]) * torch.arange(d_half, dtype=torch.float32, device=x.device)
    timescale = base**exponents
    radians = positions[..., None].to(torch.float32) / timescale[None, None, :]
    radians = radians[..., None, :]  # [B, L, 1, D/2]
    sin, cos = torch.sin(radians), torch.cos(radians)
    x1, x2 = x[..., :d_half], x[..., d_half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(dtype)


def gqa_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor) -> Tensor:
    """Eager grouped-query attention as LeRobot's ``eager_attention_forward``.

    ``q [B, Lq, H, D]``, ``k``/``v [B, Lk, G, D]`` (``H % G == 0``), ``mask [B, Lq, Lk]`` bool (True =
    may attend) -> ``[B, Lq, H * D]``. Logits scaled by ``D ** -0.5`` in float32; masked logits are
    ``finfo(float32).min`` (a fully masked row becomes uniform, as in LeRobot).
    """
    b, lk, g, d = k.shape
    h = q.shape[2]
    k = k[:, :, :, None, :].expand(b, lk, g, h // g, d).reshape(b, lk, h, d)
    v = v[:, :, :, None, :].expand(b, lk, g, h // g, d).reshape(b, lk, h, d)
    logits = torch.matmul(q.to(torch.float32).transpose(1, 2), k.to(torch.float32).permute(0, 2, 3, 1))
    logits = logits * d**-0.5
    logits = torch.where(mask[:, None], logits, torch.finfo(torch.float32).min)
    probs = F.softmax(logits, dim=-1).to(v.dtype)
    out = torch.matmul(probs, v.transpose(1, 2))  # [B, H, Lq, D]
    return out.transpose(1, 2).reshape(b, -1, h * d)


class LlamaAttentionProj(nn.Module):
    """The four projections of a Llama attention block (no biases); ``kv_in`` lets a cross-attention
    layer read keys/values of another width (SmolVLA's expert re-projects the VLM's cache)."""

    def __init__(self, dim: int, heads: int, kv_heads: int, head_dim: int, kv_in: int | None = None) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        kv_in = dim if kv_in is None else kv_in
        self.q_proj = nn.Linear(dim, heads * head_dim, bias=False)
        self.k_proj = nn.Linear(kv_in, kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(kv_in, kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(heads * head_dim, dim, bias=False)


class LlamaMLP(nn.Module):
    """Gated MLP ``down(act(gate(x)) * up(x))``, ``x [..., dim]`` -> ``[..., dim]`` (no biases);
    ``act`` is SiLU as Llama's (Gemma passes tanh-approximated GELU)."""

    def __init__(self, dim: int, hidden: int, act: Callable[[Tensor], Tensor] = F.silu) -> None:
        super().__init__()
        self.act = act
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    """One decoder layer's weights; SmolVLA drives the attention itself (see the families)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        mlp_hidden: int,
        eps: float = 1e-5,
        kv_in: int | None = None,
    ) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(dim, eps)
        self.self_attn = LlamaAttentionProj(dim, heads, kv_heads, head_dim, kv_in)
        self.post_attention_layernorm = RMSNorm(dim, eps)
        self.mlp = LlamaMLP(dim, mlp_hidden)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Normed ``x [B, L, dim]`` -> q ``[B, L, H, D]``, k, v ``[B, L, G, D]`` (before RoPE)."""
        a = self.self_attn
        h = self.input_layernorm(x)
        shape = (*h.shape[:-1], -1, a.head_dim)
        return a.q_proj(h).view(shape), a.k_proj(h).view(shape), a.v_proj(h).view(shape)

    def finish(self, x: Tensor, attn: Tensor) -> Tensor:
        """Residual attention output then the residual MLP: ``x + o(attn)``, ``+ mlp(norm(.))``."""
        x = x + self.self_attn.o_proj(attn)
        return x + self.mlp(self.post_attention_layernorm(x))


class CachePrefix(nn.Module):
    """A decoder LM run over a VLA's prefix, returning every layer's KV cache.

    The one loop both :class:`SmolLMPrefix` and :class:`~vla_ros.spine.components.gemma.GemmaPrefix`
    run: ``forward(embeds [B, P, dim], positions [B, P], mask [B, P, P] bool)`` ->
    ``(keys, values)`` each ``[num_layers, B, P, G, D]`` (keys after RoPE). The last layer's hidden
    states are never computed (the VLAs read only the cache); ``norm`` is kept so the LM's weights
    load whole. Subclasses give the layer and norm classes and the per-layer hooks.
    """

    #: the LM's name in error messages
    family = "LM"

    def _build(
        self,
        layer: type[nn.Module],
        norm: type[nn.Module],
        vocab_size: int,
        dim: int,
        num_layers: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        mlp_hidden: int,
        eps: float,
        rope_base: float,
    ) -> None:
        """Create the weights (HF names: ``embed_tokens``, ``layers.<i>``, ``norm``).

        Raises ValueError when ``heads`` is not a multiple of ``kv_heads``.
        """
        if heads % kv_heads:
            raise ValueError(f"{self.family} heads {heads} must be a multiple of kv_heads {kv_heads}")
        self.dim, self.depth, self.heads, self.kv_heads, self.head_dim = (
            dim,
            num_layers,
            heads,
            kv_heads,
            head_dim,
        )
        self.rope_base = rope_base
        self.embed_tokens = nn.Embedding(vocab_size, dim)
        self.layers = nn.ModuleList(
            layer(dim, heads, kv_heads, head_dim, mlp_hidden, eps) for _ in range(num_layers)
        )
        self.norm = norm(dim, eps)

    def _hidden(self, embeds: Tensor) -> Tensor:
        """The prefix embeddings as the first layer takes them (default: unchanged)."""
        return embeds

    def _qkv(
        self, layer: nn.Module, x: Tensor, positions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """``x [B, L, dim]`` -> q ``[B, L, H, D]`` (RoPE may wait for :meth:`_query`), k (RoPE), v, gate.

        Abstract: each prefix (SmolLM, Gemma) defines it."""
        raise NotImplementedError(f"{type(self).__name__} defines no _qkv(): a CachePrefix subclass must")

    def _query(self, q: Tensor, positions: Tensor) -> Tensor:
        """The queries :meth:`_qkv` returned, ready for attention (default: unchanged)."""
        return q

    def _finish(self, layer: nn.Module, x: Tensor, attn: Tensor, gate: Tensor | None) -> Tensor:
        """The layer's residual attention output and MLP: ``x [B, L, dim]`` -> ``[B, L, dim]``.

        Abstract: each prefix (SmolLM, Gemma) defines it."""
        raise NotImplementedError(f"{type(self).__name__} defines no _finish(): a CachePrefix subclass must")

    def forward(self, embeds: Tensor, positions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        x = self._hidden(embeds)
        keys, values = [], []
        for i, layer in enumerate(self.layers):
            q, k, v, gate = self._qkv(layer, x, positions)
            keys.append(k)
            values.append(v)
            if i + 1 < len(self.layers):  # the last layer's output is never read, only its cache
                x = self._finish(layer, x, gqa_attention(self._query(q, positions), k, v, mask), gate)
        return torch.stack(keys), torch.stack(values)


@LLM_BACKBONES.register()
class SmolLMPrefix(CachePrefix):
    """The first ``num_layers`` SmolLM layers run over SmolVLA's prefix, returning its KV cache
    (:class:`CachePrefix`); RoPE as LeRobot's ``apply_rope``, SmolVLM2 defaults (960 wide, 16 layers,
    15 heads / 5 KV heads of 64, MLP 2560)."""

    family = "SmolLM"

    def __init__(
        self,
        vocab_size: int,
        dim: int = 960,
        num_layers: int = 16,
        heads: int = 15,
        kv_heads: int = 5,
        head_dim: int = 64,
        mlp_hidden: int = 2560,
        eps: float = 1e-5,
        rope_base: float = ROPE_BASE,
    ) -> None:
        super().__init__()
        self._build(
            LlamaLayer,
            RMSNorm,
            vocab_size,
            dim,
            num_layers,
            heads,
            kv_heads,
            head_dim,
            mlp_hidden,
            eps,
            rope_base,
        )

    def embed(self, tokens: Tensor) -> Tensor:
        """Token ids ``[B, L]`` (negative = padding, embedded as id 0) -> ``[B, L, dim]``."""
        return self.embed_tokens(tokens.clamp(min=0))

    def _qkv(self, layer: nn.Module, x: Tensor, positions: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        q, k, v = layer.qkv(x)
        return q, apply_rope(k, positions, self.rope_base), v, None

    def _query(self, q: Tensor, positions: Tensor) -> Tensor:
        return apply_rope(q, positions, self.rope_base)

    def _finish(self, layer: nn.Module, x: Tensor, attn: Tensor, gate: Tensor | None) -> Tensor:
        return layer.finish(x, attn)
