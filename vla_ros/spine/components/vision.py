"""Vision backbones: a ViT and a ResNet-style CNN, written here (no torchvision).

Both take images ``[B, C, H, W]`` in ``[0, 1]`` (RGB), normalize them internally with
``pixel_mean``/``pixel_std`` and return tokens ``[B, num_tokens, out_dim]``. ``out_dim`` and
``num_tokens`` are attributes, so a VLA can size its projector and position tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vla_ros.spine.components.layers import Block
from vla_ros.spine.registry import VISION_BACKBONES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    a, b = v
    return (int(a), int(b))


class _PixelNorm(nn.Module):
    """``(x - mean) / std`` per channel; the buffers follow the config, not the checkpoint."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.folded = False

    def forward(self, x: Tensor) -> Tensor:
        if self.folded:
            return x
        return (x - self.mean) / self.std


@VISION_BACKBONES.register()
class ViT(nn.Module):
    """Vision transformer: patch embedding, learned positions, pre-norm blocks.

    Args:
        image_size: (H, W) the input must have.
        patch_size: square patch side; H and W must be multiples of it.
        dim, depth, heads, mlp_ratio: transformer size.
        cls_token: prepend a learned class token (then ``num_tokens`` = patches + 1).
    """

    def __init__(
        self,
        image_size: int | Sequence[int] = 32,
        patch_size: int = 8,
        in_channels: int = 3,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        cls_token: bool = False,
        pixel_mean: Sequence[float] = (0.5, 0.5, 0.5),
        pixel_std: Sequence[float] = (0.5, 0.5, 0.5),
    ) -> None:
        super().__init__()
        h, w = _pair(image_size)
        if h % patch_size or w % patch_size:
            raise ValueError(
                f"ViT image_size={h}x{w} is not a multiple of patch_size={patch_size}; change one of them"
            )
        self.image_size = (h, w)
        self.pixel_norm = _PixelNorm(pixel_mean, pixel_std)
        self.patch = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        n = (h // patch_size) * (w // patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None
        self.num_tokens = n + (1 if cls_token else 0)
        self.pos = nn.Parameter(torch.randn(1, self.num_tokens, dim) * 0.02)
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_hidden=int(dim * mlp_ratio), norm="layer", mlp="gelu") for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` in [0, 1] -> tokens ``[B, num_tokens, dim]``."""
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(
                f"ViT expects images of size {self.image_size}, got {tuple(x.shape[-2:])}; "
                "resize them or set image_size"
            )
        x = self.patch(self.pixel_norm(x)).flatten(2).transpose(1, 2)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos
        for blk in self.blocks:
            x = blk(x)[0]
        return self.norm(x)

    @torch.no_grad()
    def fold_for_inference(self) -> None:
        """Fold the pixel normalization into the patch convolution (exact: it has no padding)."""
        if self.pixel_norm.folded:
            return
        mean = self.pixel_norm.mean.view(-1)
        std = self.pixel_norm.std.view(-1)
        w = self.patch.weight  # [dim, C, p, p]
        shift = (w * (mean / std).view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
        w.div_(std.view(1, -1, 1, 1))
        self.patch.bias.sub_(shift)
        self.pixel_norm.folded = True


class _ConvNorm(nn.Module):
    """Conv2d followed by GroupNorm or BatchNorm; BatchNorm folds into the conv for inference."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, norm: str, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)
        if norm == "group":
            self.norm: nn.Module = nn.GroupNorm(min(groups, cout), cout)
        elif norm == "batch":
            self.norm = nn.BatchNorm2d(cout)
        else:
            raise ValueError(f"ResNet norm={norm!r} is not supported; use 'group' or 'batch'")

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(x))

    @torch.no_grad()
    def fold_for_inference(self) -> None:
        """BatchNorm (running statistics) -> conv weight and bias; exact in eval mode."""
        if not isinstance(self.norm, nn.BatchNorm2d):
            return
        bn = self.norm
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv = nn.Conv2d(
            self.conv.in_channels,
            self.conv.out_channels,
            self.conv.kernel_size,
            stride=self.conv.stride,
            padding=self.conv.padding,
            bias=True,
        ).to(self.conv.weight)
        conv.weight.copy_(self.conv.weight * scale.view(-1, 1, 1, 1))
        conv.bias.copy_(bn.bias - bn.running_mean * scale)
        self.conv = conv
        self.norm = nn.Identity()


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str, groups: int) -> None:
        super().__init__()
        self.a = _ConvNorm(cin, cout, 3, stride, norm, groups)
        self.b = _ConvNorm(cout, cout, 3, 1, norm, groups)
        self.skip = _ConvNorm(cin, cout, 1, stride, norm, groups) if (stride != 1 or cin != cout) else None
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.b(self.act(self.a(x)))
        return self.act(y + (x if self.skip is None else self.skip(x)))


@VISION_BACKBONES.register()
class ResNet(nn.Module):
    """ResNet-style CNN of basic blocks; returns the last feature map as tokens.

    Args:
        image_size: (H, W) of the input (used to compute ``num_tokens``).
        widths, blocks: channels and number of basic blocks per stage; every stage after the
            first halves the resolution.
        stem_kernel, stem_stride, stem_pool: the stem (ResNet-18 on 224 px: 7, 2, True).
        norm: ``"group"`` (batch-size independent, Diffusion Policy style) or ``"batch"``.
        pool: ``"none"`` (tokens = feature map positions) or ``"avg"`` (one token).
    """

    def __init__(
        self,
        image_size: int | Sequence[int] = 32,
        in_channels: int = 3,
        widths: Sequence[int] = (16, 32, 64),
        blocks: Sequence[int] = (1, 1, 1),
        stem_kernel: int = 3,
        stem_stride: int = 1,
        stem_pool: bool = False,
        norm: str = "group",
        groups: int = 8,
        pool: str = "none",
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"ResNet widths={widths} and blocks={blocks} must be equal length")
        if pool not in ("none", "avg"):
            raise ValueError(f"ResNet pool={pool!r} is not supported; use 'none' or 'avg'")
        self.image_size = _pair(image_size)
        self.pixel_norm = _PixelNorm(pixel_mean, pixel_std)
        self.stem = nn.Sequential(
            _ConvNorm(in_channels, widths[0], stem_kernel, stem_stride, norm, groups), nn.ReLU()
        )
        self.stem_pool = nn.MaxPool2d(3, 2, 1) if stem_pool else nn.Identity()
        stages = []
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                stages.append(_BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1, norm, groups))
                cin = w
        self.stages = nn.Sequential(*stages)
        self.pool = pool
        self.out_dim = widths[-1]
        was_training = self.training
        self.eval()  # do not touch BatchNorm running statistics with the probe
        with torch.no_grad():
            probe = self._features(torch.zeros(1, in_channels, *self.image_size))
        self.train(was_training)
        self.feature_hw = tuple(probe.shape[-2:])
        self.num_tokens = 1 if pool == "avg" else self.feature_hw[0] * self.feature_hw[1]

    def _features(self, x: Tensor) -> Tensor:
        return self.stages(self.stem_pool(self.stem(self.pixel_norm(x))))

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, H, W]`` in [0, 1] -> tokens ``[B, num_tokens, out_dim]``."""
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(
                f"ResNet expects images of size {self.image_size}, got {tuple(x.shape[-2:])}; "
                "resize them or set image_size"
            )
        f = self._features(x)
        if self.pool == "avg":
            return f.mean(dim=(2, 3))[:, None, :]
        return f.flatten(2).transpose(1, 2)
