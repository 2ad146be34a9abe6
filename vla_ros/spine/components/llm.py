"""A decoder-only transformer (LLaMA-style): RoPE, grouped-query attention, SwiGLU, KV cache.

The KV cache is a pair of stacked tensors ``(K, V)``, each ``[depth, B, kv_heads, L, head_dim]``:
a plain tensor in and out of ``forward``, so a traced graph can take it as an input and return
the grown one (``cat`` along ``L``). Positions continue from the cache length, which is a static
shape, so decode loops of a fixed length trace into ONNX without data-dependent control flow.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vla_ros.spine.components.layers import (
    Block,
    RMSNorm,
    causal_additive,
    key_mask_to_additive,
    rope_tables,
)
from vla_ros.spine.registry import LLM_BACKBONES

KVCache = tuple[Tensor, Tensor]


@LLM_BACKBONES.register()
class DecoderLM(nn.Module):
    """Decoder-only transformer over embeddings.

    Args:
        dim, depth, heads: width, layers, query heads.
        kv_heads: key/value heads (grouped-query attention; ``heads % kv_heads == 0``).
        head_dim: per-head width (default ``dim // heads``).
        mlp_hidden: SwiGLU hidden width (default ``int(8 * dim / 3)`` rounded to 8).
        vocab_size: token embedding rows; 0 = no embedding (embeddings come from elsewhere).
        lm_head: add an output projection to ``vocab_size`` logits.
        max_len: longest sequence (RoPE table length).
    """

    def __init__(
        self,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        kv_heads: int = 2,
        head_dim: int | None = None,
        mlp_hidden: int | None = None,
        vocab_size: int = 0,
        lm_head: bool = False,
        max_len: int = 512,
        rope_theta: float = 10000.0,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        head_dim = head_dim or dim // heads
        mlp_hidden = mlp_hidden or (int(8 * dim / 3) + 7) // 8 * 8
        if lm_head and vocab_size <= 0:
            raise ValueError("DecoderLM lm_head=True needs vocab_size > 0")
        self.dim, self.depth, self.heads = dim, depth, heads
        self.kv_heads, self.head_dim, self.max_len = kv_heads, head_dim, max_len
        self.rope_theta = rope_theta
        self.out_dim = dim
        self.vocab_size = vocab_size
        self.embed_tokens = nn.Embedding(vocab_size, dim) if vocab_size > 0 else None
        self.layers = nn.ModuleList(
            Block(
                dim, heads, kv_heads, head_dim, mlp_hidden, norm="rms", mlp="swiglu", bias=False, eps=norm_eps
            )
            for _ in range(depth)
        )
        self.norm = RMSNorm(dim, norm_eps)
        self.lm_head = nn.Linear(dim, vocab_size, bias=False) if lm_head else None
        cos, sin = rope_tables(max_len, head_dim, rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def embed(self, tokens: Tensor) -> Tensor:
        """Token ids ``[B, L]`` -> embeddings ``[B, L, dim]``."""
        if self.embed_tokens is None:
            raise ValueError("this DecoderLM has vocab_size=0 (no embedding); set vocab_size")
        return self.embed_tokens(tokens)

    def rope(self, start: int, length: int) -> tuple[Tensor, Tensor]:
        """RoPE tables for positions ``start .. start+length-1``."""
        if start + length > self.max_len:
            raise ValueError(
                f"sequence of {start + length} positions exceeds DecoderLM max_len={self.max_len}; "
                "raise max_len in the llm config"
            )
        return (
            self.rope_cos[start : start + length],
            self.rope_sin[start : start + length],
        )

    def forward(
        self,
        embeds: Tensor,
        key_mask: Tensor | None = None,
        causal: bool = True,
        past_kv: KVCache | None = None,
    ) -> tuple[Tensor, KVCache]:
        """Run the layers.

        Args:
            embeds: ``[B, L, dim]`` new positions.
            key_mask: ``[B, L_past + L]`` 1 = attend, 0 = padding (None: all attend).
            causal: causal mask (positions see earlier ones); False = bidirectional.
            past_kv: cache from a previous call, ``(K, V)`` each ``[depth, B, kv, L_past, hd]``.

        Returns:
            ``hidden [B, L, dim]`` after the final norm, and the grown cache.
        """
        past = 0 if past_kv is None else past_kv[0].shape[3]
        length = embeds.shape[1]
        rope = self.rope(past, length)
        mask = key_mask_to_additive(key_mask, embeds.dtype)
        if causal:
            c = causal_additive(length, past + length, embeds.dtype, embeds.device)
            mask = c if mask is None else mask + c
        x = embeds
        ks, vs = [], []
        for i, layer in enumerate(self.layers):
            layer_past = None if past_kv is None else (past_kv[0][i], past_kv[1][i])
            x, (k, v) = layer(x, mask=mask, rope=rope, past_kv=layer_past)
            ks.append(k)
            vs.append(v)
        return self.norm(x), (torch.stack(ks), torch.stack(vs))

    def logits(self, hidden: Tensor) -> Tensor:
        """``[B, L, dim]`` -> ``[B, L, vocab_size]``."""
        if self.lm_head is None:
            raise ValueError("this DecoderLM has no lm_head; set lm_head: true in its config")
        return self.lm_head(hidden)
