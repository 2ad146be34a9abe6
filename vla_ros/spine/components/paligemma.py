"""PaliGemma's image path as LeRobot's pi0 / pi0.5 run it: the SigLIP tower and the projector.

``vision_tower.vision_model`` is transformers' ``SiglipVisionTransformer`` (no pooling head), the
same layout and weight names as SmolVLM's tower, so :class:`SiglipVisionTower` reuses
:class:`~vla_ros.spine.components.siglip.SmolVLMVisionTower` with so400m's numbers as defaults
(1152 wide, 27 layers, 16 heads, MLP 4304, 14x14 patches at 224: 256 tokens per image;
``PaliGemmaWithExpertModel`` in ``lerobot/policies/pi0/modeling_pi0.py``). ``multi_modal_projector``
is one ``Linear(vision width, Gemma width)`` with bias; its output is not scaled (the language
embeddings are, by ``sqrt(width)``). LeRobot keeps both in float32 whatever the model dtype:
:class:`SiglipVisionTower` casts its input to its own weights' dtype and returns that dtype.
"""

from __future__ import annotations

from torch import Tensor, nn

from vla_ros.spine.components.siglip import SmolVLMVisionTower
from vla_ros.spine.registry import PROJECTORS, VISION_BACKBONES


@VISION_BACKBONES.register()
class SiglipVisionTower(SmolVLMVisionTower):
    """Pixels ``[B, 3, S, S]`` in [-1, 1] -> ``[B, (S/patch)^2, dim]`` (SigLIP so400m defaults).

    Runs in its weights' dtype (float32 in LeRobot's pi0 / pi0.5 even when the rest is bf16);
    ``S != image_size`` raises ``ValueError`` naming both sizes. ``image_size`` need not be a
    multiple of ``patch_size`` (LeRobot's ``image_resolution`` is free): the remainder pixels are
    dropped and ``(S // patch)^2`` patches keep positions ``0 .. P-1``, as transformers'
    ``SiglipVisionEmbeddings`` (5.5) does.
    """

    ALIGNED_ONLY = False

    def __init__(
        self,
        image_size: int = 224,
        patch_size: int = 14,
        dim: int = 1152,
        depth: int = 27,
        heads: int = 16,
        mlp_hidden: int = 4304,
        eps: float = 1e-6,
        in_channels: int = 3,
    ) -> None:
        super().__init__(image_size, patch_size, dim, depth, heads, mlp_hidden, eps, in_channels)

    def forward(self, pixels: Tensor) -> Tensor:
        if tuple(pixels.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"SigLIP tower takes {self.image_size}x{self.image_size} images, got "
                f"{tuple(pixels.shape[-2:])}; resize with padding first (pi0's preprocessing)"
            )
        return super().forward(pixels.to(self.embeddings.patch_embedding.weight.dtype))


@PROJECTORS.register()
class PaliGemmaProjector(nn.Module):
    """``[B, T, in_dim]`` -> ``[B, T, out_dim]``: PaliGemma's ``multi_modal_projector.linear``."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.to(self.linear.weight.dtype))
