"""ResNet, spatial softmax and Diffusion Policy's RGB encoder, weight-compatible with LeRobot.

Written here in torch (no torchvision). Module names follow what LeRobot 0.6.1 saves:

- :class:`TorchvisionResNetTrunk` is ``nn.Sequential(*list(torchvision_resnet.children())[:-2])``:
  ``0`` conv1 (7x7, stride 2), ``1`` bn1, ``2`` ReLU, ``3`` max-pool (3, 2, 1), ``4``-``7``
  layer1-layer4 of ``BasicBlock`` (resnet10/18/34) or ``Bottleneck`` (v1.5: stride on the 3x3;
  resnet50/101/152) blocks with ``conv1, bn1, conv2, bn2[, conv3, bn3], downsample.0/1``
  (He et al. 2016, https://arxiv.org/abs/1512.03385; torchvision's layout).
- Norms are ``BatchNorm2d`` (eval: running statistics) or, with ``use_group_norm``,
  ``GroupNorm(C // 16, C)`` under the same names (LeRobot's ``_replace_submodules``).
- :class:`SpatialSoftmax` (Finn et al. 2016, https://arxiv.org/abs/1509.06113; LeRobot's port of
  robomimic): optional 1x1 conv to ``num_kp`` maps, softmax over H*W, expected (x, y) on a grid in
  [-1, 1] (``pos_grid`` buffer, saved in checkpoints).
- :class:`DiffusionRgbEncoder`: optional resize (bilinear, antialiased: torchvision's tensor
  ``Resize``) -> center crop (inference) -> trunk -> spatial softmax -> ``out`` Linear -> ReLU.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.registry import VISION_BACKBONES

_BLOCKS_PER_DEPTH = {
    10: ("basic", (1, 1, 1, 1)),
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
_NAME = re.compile(r"^resnet(\d+)(?:_w(\d+))?$")


@dataclass(frozen=True)
class ResNetSpec:
    """A torchvision-layout ResNet: block kind, blocks and width (planes) per stage, stem width."""

    block: str
    layers: tuple[int, ...]
    widths: tuple[int, ...] = (64, 128, 256, 512)
    stem_width: int = 64


# The reduced trunk of the ACT golden fixtures (scripts/lerobot_goldens.py registers the same
# network in LeRobot's torchvision under this name).
REDUCED_TEST_SPECS = {"resnet_reduced_test": ResNetSpec("basic", (2, 1, 1, 1), (8, 16, 16, 32), 8)}


def resnet_spec(name: str) -> ResNetSpec:
    """Spec of ``resnet{10,18,34,50,101,152}``, optionally ``_w<N>``, or a reduced test name.

    The plain names are torchvision's (``resnet18`` = basic blocks ``[2, 2, 2, 2]``, widths
    64-512). ``_w<N>`` (e.g. ``resnet10_w16``) is the same layout with stem and stage widths
    ``N, N, 2N, 4N, 8N``: the reduced trunks of the Diffusion golden fixtures
    (``scripts/lerobot_goldens_diffusion.py`` registers them in LeRobot's torchvision).
    ``resnet_reduced_test`` is the ACT fixtures' trunk. Raises ``ValueError`` naming the
    accepted forms for anything else.
    """
    if name in REDUCED_TEST_SPECS:
        return REDUCED_TEST_SPECS[name]
    m = _NAME.match(str(name))
    depth = int(m.group(1)) if m else -1
    if depth not in _BLOCKS_PER_DEPTH:
        raise ValueError(
            f"vision_backbone {name!r} is not supported; use one of "
            f"{[f'resnet{d}' for d in _BLOCKS_PER_DEPTH]} (optionally with _w<width>)"
        )
    block, layers = _BLOCKS_PER_DEPTH[depth]
    if not m.group(2):
        return ResNetSpec(block, layers)
    w = int(m.group(2))
    return ResNetSpec(block, layers, (w, 2 * w, 4 * w, 8 * w), w)


def _norm(channels: int, group_norm: bool) -> nn.Module:
    if group_norm:
        if channels < 16:
            raise ValueError(
                f"use_group_norm needs >= 16 channels per norm (GroupNorm(C // 16, C)); got {channels}"
            )
        return nn.GroupNorm(channels // 16, channels)
    return nn.BatchNorm2d(channels)


class BasicBlock(nn.Module):
    """torchvision ``BasicBlock``: 3x3 (stride) -> norm -> ReLU -> 3x3 -> norm, + shortcut, ReLU."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, group_norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = _norm(planes, group_norm)
        self.relu = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = _norm(planes, group_norm)
        self.downsample = _shortcut(cin, planes, stride, group_norm)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """torchvision ``Bottleneck`` (v1.5): 1x1 -> 3x3 (stride) -> 1x1 (x4), + shortcut, ReLU."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, group_norm: bool) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = _norm(planes, group_norm)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = _norm(planes, group_norm)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = _norm(out, group_norm)
        self.relu = nn.ReLU(inplace=False)
        self.downsample = _shortcut(cin, out, stride, group_norm)

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def _shortcut(cin: int, cout: int, stride: int, group_norm: bool) -> nn.Sequential | None:
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout, group_norm))


class TorchvisionResNetTrunk(nn.Sequential):
    """torchvision ResNet without avgpool/fc: ``[B, 3, H, W] -> [B, C_out, H/32, W/32]`` (ceil)."""

    def __init__(self, spec: ResNetSpec, group_norm: bool = False, in_channels: int = 3) -> None:
        block = BasicBlock if spec.block == "basic" else Bottleneck
        mods: list[nn.Module] = [
            nn.Conv2d(in_channels, spec.stem_width, 7, 2, 3, bias=False),
            _norm(spec.stem_width, group_norm),
            nn.ReLU(inplace=False),
            nn.MaxPool2d(3, 2, 1),
        ]
        cin = spec.stem_width
        for i, n in enumerate(spec.layers):
            planes = spec.widths[i]
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (i > 0 and j == 0) else 1, group_norm))
                cin = planes * block.expansion
            mods.append(nn.Sequential(*blocks))
        super().__init__(*mods)
        self.out_channels = cin


class SpatialSoftmax(nn.Module):
    """Keypoints ``[B, K, 2]`` (x, y in [-1, 1]) from feature maps ``[B, C, H, W]``.

    ``nets`` (1x1 conv C -> ``num_kp``) when ``num_kp`` is given; the grid is numpy's
    ``meshgrid(linspace(-1, 1, W), linspace(-1, 1, H))`` in float64 cast to float32, as LeRobot.
    """

    def __init__(self, input_shape: Sequence[int], num_kp: int | None = None) -> None:
        super().__init__()
        c, h, w = (int(v) for v in input_shape)
        self._in_h, self._in_w = h, w
        self.nets = nn.Conv2d(c, num_kp, kernel_size=1) if num_kp is not None else None
        self._out_c = num_kp if num_kp is not None else c
        px, py = np.meshgrid(np.linspace(-1.0, 1.0, w), np.linspace(-1.0, 1.0, h))
        grid = np.concatenate([px.reshape(h * w, 1), py.reshape(h * w, 1)], axis=1)
        self.register_buffer("pos_grid", torch.from_numpy(grid).float())

    def forward(self, features: Tensor) -> Tensor:
        if self.nets is not None:
            features = self.nets(features)
        attention = F.softmax(features.reshape(-1, self._in_h * self._in_w), dim=-1)
        return (attention @ self.pos_grid).view(-1, self._out_c, 2)


def center_crop_box(size: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of torchvision's center crop: ``int(round((size - crop) / 2))`` per axis."""
    return round((size[0] - crop[0]) / 2.0), round((size[1] - crop[1]) / 2.0)


def resize_matrix(size_in: int, size_out: int) -> Tensor:
    """``[size_out, size_in]`` matrix of a 1-D antialiased bilinear resize (half-pixel centers).

    Torch's ``interpolate(mode="bilinear", antialias=True, align_corners=False)`` (what
    torchvision's tensor ``Resize`` runs) is separable and linear, so resizing ``[.., H, W]`` is
    ``R_h @ x @ R_w.T`` with these matrices (read off by resizing the identity): plain MatMuls in
    an ONNX graph, where the antialiased op has no opset-17 form. Equal up to float rounding.
    """
    with torch.device("cpu"):
        # 3 columns, not 1: torch's antialiased kernel mishandles a width-1 input
        eye = torch.eye(size_in).reshape(size_in, 1, size_in, 1).repeat(1, 1, 1, 3)
        out = F.interpolate(eye, size=(size_out, 3), mode="bilinear", align_corners=False, antialias=True)
    return out[:, 0, :, 0].t().contiguous()


@VISION_BACKBONES.register()
class DiffusionRgbEncoder(nn.Module):
    """One camera's image ``[B, 3, H, W]`` (already normalized) -> feature ``[B, 2 * num_kp]``.

    Args:
        image_size: (H, W) of the input images.
        vision_backbone: a :func:`resnet_spec` name (``resnet18`` by default).
        use_group_norm: GroupNorm(C // 16, C) instead of BatchNorm in the trunk.
        spatial_softmax_num_keypoints: ``K``; the feature is ``2K`` wide.
        resize_shape: (H, W) to resize to first (bilinear, antialiased), or None.
        crop_shape: (H, W) center crop (after the resize), or None. Must fit the image.
    """

    def __init__(
        self,
        image_size: Sequence[int] = (96, 96),
        vision_backbone: str = "resnet18",
        use_group_norm: bool = False,
        spatial_softmax_num_keypoints: int = 32,
        resize_shape: Sequence[int] | None = None,
        crop_shape: Sequence[int] | None = None,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.resize_shape = tuple(int(v) for v in resize_shape) if resize_shape else None
        self.crop_shape = tuple(int(v) for v in crop_shape) if crop_shape else None
        hw = self.resize_shape or self.image_size
        if self.crop_shape is not None:
            if self.crop_shape[0] > hw[0] or self.crop_shape[1] > hw[1]:
                raise ValueError(
                    f"crop_shape {list(self.crop_shape)} does not fit the {list(hw)} image; "
                    "choose a crop no larger than the (resized) image"
                )
            hw = self.crop_shape
        resize = self.resize_shape is not None and self.resize_shape != self.image_size
        for name, axis in (("resize_h", 0), ("resize_w", 1)):
            mat = resize_matrix(self.image_size[axis], self.resize_shape[axis]) if resize else None
            self.register_buffer(name, mat, persistent=False)
        self.backbone = TorchvisionResNetTrunk(resnet_spec(vision_backbone), use_group_norm, in_channels)
        fh, fw = hw
        for _ in range(5):  # conv1 and max-pool (stride 2, pad so ceil), then 3 strided stages
            fh, fw = (fh + 1) // 2, (fw + 1) // 2
        self.pool = SpatialSoftmax((self.backbone.out_channels, fh, fw), spatial_softmax_num_keypoints)
        self.feature_dim = spatial_softmax_num_keypoints * 2
        self.out = nn.Linear(self.feature_dim, self.feature_dim)
        self.relu = nn.ReLU()
        self.out_dim = self.feature_dim

    def preprocess(self, x: Tensor) -> Tensor:
        """Resize (if configured) then center crop (if configured): LeRobot's eval path.

        Sizes come from the configuration (the input is ``image_size``), so the crop box is a
        constant in an exported graph.
        """
        hw = self.image_size
        if self.resize_h is not None and self.resize_w is not None:
            x = torch.matmul(torch.matmul(self.resize_h, x), self.resize_w.t())
            hw = self.resize_shape
        if self.crop_shape is not None:
            top, left = center_crop_box(hw, self.crop_shape)
            x = x[..., top : top + self.crop_shape[0], left : left + self.crop_shape[1]]
        return x

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(
                f"DiffusionRgbEncoder expects images of size {self.image_size}, got "
                f"{tuple(x.shape[-2:])}; resize them or set image_size"
            )
        x = self.pool(self.backbone(self.preprocess(x)))
        return self.relu(self.out(torch.flatten(x, start_dim=1)))
