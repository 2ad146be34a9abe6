"""Gemma decoder layers as LeRobot 0.6.1's pi0 / pi0.5 run them, and PaliGemma's prefix LLM slot.

Weight names follow Hugging Face's ``GemmaModel`` as LeRobot's ``PiGemmaModel`` subclasses it
(``lerobot/policies/pi_gemma.py``): ``embed_tokens``, ``layers.<i>.input_layernorm``,
``self_attn.{q,k,v,o}_proj`` (no biases), ``post_attention_layernorm``, ``mlp.{gate,up,down}_proj``,
``norm``. What differs from Llama (:mod:`~vla_ros.spine.components.smollm`):

- RMSNorm scales by ``1 + w`` (``w`` starts at 0), eps 1e-6; pi0.5's action expert uses the
  adaptive form (AdaRMS, :class:`AdaRMSNorm`): ``dense(cond) -> (scale, shift, gate)``,
  ``norm(x) (1 + scale) + shift``, and the residual adds ``gate * y``.
- The MLP gate is tanh-approximated GELU (``gelu_pytorch_tanh``), not SiLU.
- Token embeddings are multiplied by ``sqrt(width)`` (transformers' ``GemmaTextScaledWordEmbedding``);
  image features are not.
- RoPE base 10000 with transformers' ``inv_freq = 1 / base^(2i/D)`` and ``rotate_half``.

Mixed precision as LeRobot's ``dtype: bfloat16``: hidden states take the layers' dtype, norms
compute in float32 (their weights may stay float32) and return the hidden dtype.

Attention is eager grouped-query attention with a float32 softmax
(:func:`~vla_ros.spine.components.smollm.gqa_attention`); LeRobot adds ``-2.38e38`` to masked
logits, which gives the same probabilities for every row with a valid key.

Shapes: ``B`` batch, ``L`` tokens, ``H`` query heads, ``G`` key/value heads, ``D`` head size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.components.smollm import CachePrefix, LlamaAttentionProj, LlamaMLP
from vla_ros.spine.registry import LLM_BACKBONES

#: Gemma's RoPE base (transformers ``GemmaConfig.rope_theta`` default, which LeRobot keeps)
ROPE_BASE = 10_000.0


class GemmaRMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * (1 + w)`` in float32 (LeRobot's ``PiGemmaRMSNorm``, no cond)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, None]:
        """``x [..., dim]`` -> ``(normed [..., dim], None)`` (no gate; ``cond`` is ignored)."""
        var = x.float().square().mean(-1, keepdim=True)
        out = (x * torch.rsqrt(var + self.eps)) * (1.0 + self.weight.float())
        return out.type_as(x), None


class AdaRMSNorm(nn.Module):
    """Adaptive RMSNorm (pi0.5): ``dense(cond [B, cond_dim]) -> scale, shift, gate [B, dim]``;
    returns ``(norm(x) (1 + scale) + shift, gate)`` for ``x [B, L, dim]`` or ``[B, dim]``."""

    def __init__(self, dim: int, cond_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.dense = nn.Linear(cond_dim, 3 * dim)
        self.eps = eps

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if cond is None:
            raise ValueError("AdaRMSNorm needs the conditioning vector (pi0.5's time embedding)")
        var = x.float().square().mean(-1, keepdim=True)
        normed = x * torch.rsqrt(var + self.eps)
        mod = self.dense(cond)
        if x.ndim == 3:
            mod = mod[:, None, :]
        scale, shift, gate = mod.chunk(3, dim=-1)
        out = normed * (1 + scale.float()) + shift.float()
        return out.to(x.dtype), gate.to(x.dtype)


def rope(x: Tensor, positions: Tensor, base: float = ROPE_BASE) -> Tensor:
    """Rotary positions as transformers' Gemma: ``x [B, L, H, D]``, ``positions [B, L]`` -> same.

    ``inv_freq = 1 / base ** (arange(0, D, 2) / D)``, angles ``positions * inv_freq`` in float32,
    ``x cos + rotate_half(x) sin`` with ``rotate_half([x1, x2]) = [-x2, x1]``.
    """
    d = x.shape[-1]
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.int64, device=x.device).float() / d))
    freqs = positions.float()[..., None] * inv_freq  # [B, L, D/2]
    emb = torch.cat([freqs, freqs], dim=-1)[:, :, None, :]  # [B, L, 1, D]
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def gelu_tanh(x: Tensor) -> Tensor:
    """Tanh-approximated GELU (transformers' ``gelu_pytorch_tanh``), elementwise."""
    return F.gelu(x, approximate="tanh")


class GemmaMLP(LlamaMLP):
    """``down(gelu_tanh(gate(x)) * up(x))``, ``x [..., dim]`` -> ``[..., dim]``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(dim, hidden, act=gelu_tanh)


class GemmaLayer(nn.Module):
    """One Gemma decoder layer's weights (``cond_dim`` set: AdaRMS norms); the families drive it:
    :meth:`qkv` then attention (own or joint with a cache) then :meth:`finish`."""

    def __init__(
        self,
        dim: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        mlp_hidden: int,
        eps: float = 1e-6,
        cond_dim: int | None = None,
    ) -> None:
        super().__init__()

        def norm() -> nn.Module:
            return GemmaRMSNorm(dim, eps) if cond_dim is None else AdaRMSNorm(dim, cond_dim, eps)

        self.input_layernorm = norm()
        self.self_attn = LlamaAttentionProj(dim, heads, kv_heads, head_dim)
        self.post_attention_layernorm = norm()
        self.mlp = GemmaMLP(dim, mlp_hidden)

    def qkv(
        self, x: Tensor, positions: Tensor, cond: Tensor | None = None, base: float = ROPE_BASE
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """``x [B, L, dim]`` -> q ``[B, L, H, D]``, k ``[B, L, G, D]`` (both after RoPE), v, gate."""
        a = self.self_attn
        h, gate = self.input_layernorm(x, cond)
        shape = (*h.shape[:-1], -1, a.head_dim)
        q = rope(a.q_proj(h).view(shape), positions, base)
        k = rope(a.k_proj(h).view(shape), positions, base)
        return q, k, a.v_proj(h).view(shape), gate

    def finish(self, x: Tensor, attn: Tensor, gate: Tensor | None, cond: Tensor | None = None) -> Tensor:
        """Gated residuals: ``x + gate * o(attn)``, then ``+ gate' * mlp(norm(.))`` (no gate: 1)."""
        y = self.self_attn.o_proj(attn)
        x = x + (y if gate is None else y * gate)
        h, gate2 = self.post_attention_layernorm(x, cond)
        y = self.mlp(h)
        return x + (y if gate2 is None else y * gate2)


@LLM_BACKBONES.register()
class GemmaPrefix(CachePrefix):
    """PaliGemma's Gemma run over the prefix ``[images, language]``, returning its KV cache
    (:class:`~vla_ros.spine.components.smollm.CachePrefix`), what the action expert attends to.

    Defaults are Gemma 2B's (LeRobot ``gemma_2b``: 2048 wide, 18 layers, 8 heads / 1 KV head of
    256, MLP 16384, vocabulary 257152).
    """

    family = "Gemma"

    def __init__(
        self,
        vocab_size: int = 257_152,
        dim: int = 2048,
        num_layers: int = 18,
        heads: int = 8,
        kv_heads: int = 1,
        head_dim: int = 256,
        mlp_hidden: int = 16_384,
        eps: float = 1e-6,
        rope_base: float = ROPE_BASE,
    ) -> None:
        super().__init__()
        self._build(
            GemmaLayer,
            GemmaRMSNorm,
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
        """Token ids ``[B, L]`` (negative = padding, embedded as id 0) -> ``[B, L, dim]`` times
        ``sqrt(dim)`` (rounded to the weight dtype, as transformers does)."""
        scale = torch.tensor(math.sqrt(self.dim), dtype=self.embed_tokens.weight.dtype)
        return self.embed_tokens(tokens.clamp(min=0)) * scale.to(self.embed_tokens.weight.device)

    def _hidden(self, embeds: Tensor) -> Tensor:
        # the layers' dtype (LeRobot's PiGemmaModel: bf16 layers take bf16 hidden states; norms
        # compute in float32 and return the input's dtype)
        return embeds.to(self.layers[0].self_attn.q_proj.weight.dtype) if len(self.layers) else embeds

    def _qkv(
        self, layer: nn.Module, x: Tensor, positions: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        return layer.qkv(x, positions, base=self.rope_base)

    def _finish(self, layer: nn.Module, x: Tensor, attn: Tensor, gate: Tensor | None) -> Tensor:
        return layer.finish(x, attn, gate)
