"""torchvision-layout ResNets (BasicBlock), written here in torch (torchvision is not a dependency).

Module names and the computation follow torchvision's ``resnet.py`` (He et al. 2016, "Deep
Residual Learning"), so checkpoints of LeRobot policies built on ``torchvision.models.resnet18``
load by name: ``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0`` (1x1 conv) /
``downsample.1`` (norm), ... The classifier (``avgpool``, ``fc``) is left out: the output is the
``layer4`` feature map ``[B, C, ceil(H/32), ceil(W/32)]`` (what LeRobot's
``IntermediateLayerGetter(..., {"layer4": "feature_map"})`` returns).

Norms: ``frozen_bn`` is torchvision's ``FrozenBatchNorm2d`` (buffers weight, bias, running_mean,
running_var; ``y = x * w / sqrt(rv + 1e-5) + (b - rm * w / sqrt(rv + 1e-5))``, computed in that
order); ``group_norm`` is ``nn.GroupNorm(C // 16, C)`` (LeRobot's Diffusion Policy replaces
BatchNorm with it when ``use_group_norm``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vla_ros.spine.registry import VISION_BACKBONES

#: name -> (blocks per stage, widths per stage); BasicBlock variants only
RESNET_VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "resnet18": ((2, 2, 2, 2), (64, 128, 256, 512)),
    "resnet34": ((3, 4, 6, 3), (64, 128, 256, 512)),
    # the reduced variant the parity fixtures use (scripts/lerobot_goldens.py registers the same
    # architecture, torchvision's own classes, into torchvision.models under this name)
    "resnet_reduced_test": ((2, 1, 1, 1), (8, 16, 16, 32)),
}
NORMS = ("frozen_bn", "group_norm")


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (torchvision's, same buffers)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        for name, fill in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((num_features,), fill))

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight.reshape(1, -1, 1, 1)
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + self.eps).rsqrt()
        return x * scale + (b - rm * scale)


def make_norm(kind: str, channels: int) -> nn.Module:
    """The norm layer ``kind`` (:data:`NORMS`) for ``channels`` channels."""
    if kind == "frozen_bn":
        return FrozenBatchNorm2d(channels)
    if kind == "group_norm":
        return nn.GroupNorm(num_groups=max(channels // 16, 1), num_channels=channels)
    raise ValueError(f"ResNet norm {kind!r} is not one of {NORMS}")


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual (torchvision ``BasicBlock``, expansion 1)."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = make_norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = make_norm(norm, cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), make_norm(norm, cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


@VISION_BACKBONES.register()
class TorchvisionResNet(nn.Module):
    """``[B, 3, H, W] -> [B, C, ceil(H/32), ceil(W/32)]`` (the layer4 feature map).

    ``variant`` is a key of :data:`RESNET_VARIANTS`; ``norm`` one of :data:`NORMS`. Raises
    ``ValueError`` for an unknown variant (naming the supported ones), a Bottleneck variant, or
    ``dilation`` (torchvision's BasicBlock does not support dilation either).
    """

    def __init__(
        self,
        variant: str = "resnet18",
        norm: str = "frozen_bn",
        in_channels: int = 3,
        image_size: tuple[int, int] | None = None,
        dilation: bool = False,
    ) -> None:
        super().__init__()
        if variant not in RESNET_VARIANTS:
            raise ValueError(
                f"vision backbone {variant!r} is not supported; vla_ros builds the torchvision "
                f"BasicBlock ResNets {sorted(RESNET_VARIANTS)} (Bottleneck ResNets such as resnet50 "
                "are not implemented)"
            )
        if dilation:
            raise ValueError(
                "replace_final_stride_with_dilation is set, but a BasicBlock ResNet has no dilated "
                "variant (torchvision raises too); train with it off"
            )
        blocks, widths = RESNET_VARIANTS[variant]
        self.variant, self.out_dim, self.image_size = variant, widths[-1], image_size
        self.conv1 = nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = make_norm(norm, widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            stage = [
                BasicBlock(cin if j == 0 else w, w, (1 if i == 0 else 2) if j == 0 else 1, norm)
                for j in range(n)
            ]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            cin = w

    def feature_size(self, h: int, w: int) -> tuple[int, int]:
        """Feature-map ``(h, w)`` for an ``h x w`` image (stride-2 convs and pool, padding kept)."""

        def down(n: int, k: int, s: int, p: int) -> int:
            return (n + 2 * p - k) // s + 1

        h, w = down(h, 7, 2, 3), down(w, 7, 2, 3)
        h, w = down(h, 3, 2, 1), down(w, 3, 2, 1)
        for _ in range(3):
            h, w = down(h, 3, 2, 1), down(w, 3, 2, 1)
        return h, w

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))
