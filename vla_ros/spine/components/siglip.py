"""SmolVLM's vision tower (SigLIP-style ViT) and its pixel-shuffle connector, weight-compatible.

Weight names follow Hugging Face's ``SmolVLMVisionTransformer`` / ``SmolVLMConnector``
(transformers 5.5, ``models/smolvlm/modeling_smolvlm.py``) so SmolVLM / SmolVLA checkpoints load
by name: ``embeddings.patch_embedding`` (Conv2d, stride = patch), ``embeddings.position_embedding``
(learned, one per patch), ``encoder.layers.<i>.{layer_norm1, self_attn.{q,k,v,out}_proj,
layer_norm2, mlp.fc1, mlp.fc2}``, ``post_layernorm``; the connector's
``modality_projection.proj`` (no bias).

Position ids are ``0 .. P-1`` for a full square image (what transformers 4.50-4.53 and 5.5
compute; 4.55-4.57 are off by one, see ``shared/LEROBOT_FACTS.md``). SmolVLA always feeds full
images (its resize pads to the square input size), so patch masks are not supported.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.registry import PROJECTORS, VISION_BACKBONES


class SiglipAttention(nn.Module):
    """Bidirectional multi-head attention with biases (``q/k/v/out_proj``), eager float32 softmax."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"vision width {dim} must be divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, _ = x.shape
        shape = (b, n, self.heads, self.head_dim)
        q = self.q_proj(x).view(shape).transpose(1, 2)
        k = self.k_proj(x).view(shape).transpose(1, 2)
        v = self.v_proj(x).view(shape).transpose(1, 2)
        att = F.softmax((q @ k.transpose(-1, -2)) * self.head_dim**-0.5, dim=-1, dtype=torch.float32)
        return self.out_proj((att.to(v.dtype) @ v).transpose(1, 2).reshape(b, n, -1))


class SiglipMLP(nn.Module):
    """``fc2(gelu_tanh(fc1(x)))`` (SigLIP's ``gelu_pytorch_tanh``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SiglipLayer(nn.Module):
    """Pre-norm encoder layer: ``x + attn(ln1(x))``, then ``+ mlp(ln2(.))``."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, eps: float) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(dim, eps=eps)
        self.self_attn = SiglipAttention(dim, heads)
        self.layer_norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = SiglipMLP(dim, mlp_hidden)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SiglipEmbeddings(nn.Module):
    """Patch embedding (Conv2d ``patch x patch``, stride ``patch``) plus learned positions."""

    def __init__(self, image_size: int, patch_size: int, dim: int, in_channels: int = 3) -> None:
        super().__init__()
        self.side = image_size // patch_size
        self.patch_embedding = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.position_embedding = nn.Embedding(self.side**2, dim)

    def forward(self, pixels: Tensor) -> Tensor:
        x = self.patch_embedding(pixels)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        x = x.flatten(2).transpose(1, 2)  # [B, P, dim], row-major
        if (h, w) == (self.side, self.side):
            return x + self.position_embedding.weight[None]
        return (
            x + self.position_embedding.weight.index_select(0, bucketed_position_ids(h, w, self.side))[None]
        )


def bucketed_position_ids(h: int, w: int, side: int) -> Tensor:
    """Position ids ``[h * w]`` of an ``h x w`` patch grid on a ``side x side`` learned table:
    fractional coordinates ``i / h`` (clamped below 1) bucketed into ``side`` bins (transformers'
    ``SmolVLMVisionEmbeddings`` / Idefics3 for an image of another size, 5.5; float32 as there)."""
    bounds = torch.arange(1 / side, 1.0, 1 / side)
    rows = torch.clamp(torch.arange(h, dtype=torch.float32) * (1.0 / torch.tensor(float(h))), max=1.0 - 1e-6)
    cols = torch.clamp(torch.arange(w, dtype=torch.float32) * (1.0 / torch.tensor(float(w))), max=1.0 - 1e-6)
    bh = torch.bucketize(rows, bounds, right=True)
    bw = torch.bucketize(cols, bounds, right=True)
    return (bh[:, None] * side + bw[None, :]).reshape(-1)


class _Encoder(nn.Module):
    def __init__(self, n: int, **kw: int | float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(SiglipLayer(**kw) for _ in range(n))  # type: ignore[arg-type]


@VISION_BACKBONES.register()
class SmolVLMVisionTower(nn.Module):
    """Pixels ``[B, 3, S, S]`` in [-1, 1] -> patch features ``[B, (S/patch)^2, dim]``.

    ``S`` is ``image_size`` (one learned position per patch of that grid) or another multiple of
    the patch size (SmolVLA's ``resize_imgs_with_padding``; the positions are then bucketed as
    transformers does, :func:`bucketed_position_ids`); a non-square or unaligned ``S`` raises
    ``ValueError`` naming the sizes. Defaults are SmolVLM2-500M's
    (768 wide, 12 layers, 12 heads, MLP 3072, 16x16 patches at 512, LayerNorm eps 1e-6).
    A subclass with ``ALIGNED_ONLY = False`` takes an ``image_size`` that is not a multiple of
    the patch: the stride-``patch`` convolution drops the remainder, ``(S // patch)^2`` patches.
    """

    #: whether ``image_size`` (and the input) must be a multiple of ``patch_size``
    ALIGNED_ONLY = True

    def __init__(
        self,
        image_size: int = 512,
        patch_size: int = 16,
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_hidden: int = 3072,
        eps: float = 1e-6,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if self.ALIGNED_ONLY and image_size % patch_size:
            raise ValueError(f"vision image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size, self.out_dim = image_size, patch_size, dim
        self.grid = image_size // patch_size
        self.embeddings = SiglipEmbeddings(image_size, patch_size, dim, in_channels)
        self.encoder = _Encoder(depth, dim=dim, heads=heads, mlp_hidden=mlp_hidden, eps=eps)
        self.post_layernorm = nn.LayerNorm(dim, eps=eps)

    def forward(self, pixels: Tensor) -> Tensor:
        h, w = (int(s) for s in pixels.shape[-2:])
        if h != w or (self.ALIGNED_ONLY and h % self.patch_size):
            raise ValueError(
                f"SmolVLM vision tower takes square images, a multiple of {self.patch_size} (its own "
                f"size {self.image_size}); got {(h, w)}: resize with padding first (SmolVLA's preprocessing)"
            )
        x = self.embeddings(pixels)
        for layer in self.encoder.layers:
            x = layer(x)
        return self.post_layernorm(x)


@PROJECTORS.register()
class PixelShuffleConnector(nn.Module):
    """SmolVLM's connector: pixel shuffle by ``scale_factor`` then a bias-free Linear.

    ``[B, P, in_dim]`` (``P`` a square grid ``g x g``, ``g % scale_factor == 0``) ->
    ``[B, P / scale_factor^2, out_dim]``; each output token concatenates a ``scale x scale``
    block of patches in transformers' ``SmolVLMConnector.pixel_shuffle`` order.
    """

    def __init__(self, in_dim: int, out_dim: int, scale_factor: int = 4) -> None:
        super().__init__()
        self.scale_factor, self.in_dim, self.out_dim = scale_factor, in_dim, out_dim
        self.modality_projection = nn.Module()
        self.modality_projection.proj = nn.Linear(in_dim * scale_factor**2, out_dim, bias=False)

    def pixel_shuffle(self, x: Tensor) -> Tensor:
        """``[B, g*g, C]`` -> ``[B, (g/s)^2, C s^2]`` (transformers' order, reshapes only)."""
        b, seq, c = x.shape
        s = self.scale_factor
        seq = int(seq)
        g = math.isqrt(seq)
        if g * g != seq or g % s:
            raise ValueError(f"pixel shuffle x{s} needs a square grid divisible by {s}; got {seq} tokens")
        x = x.reshape(b, g, g // s, c * s)
        x = x.permute(0, 2, 1, 3).reshape(b, g // s, g // s, c * s * s)
        return x.permute(0, 2, 1, 3).reshape(b, seq // (s * s), c * s * s)

    def forward(self, x: Tensor) -> Tensor:
        return self.modality_projection.proj(self.pixel_shuffle(x))
