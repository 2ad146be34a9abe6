"""Vision-language backbones: a vision encoder, a projector and a decoder LM in one slot.

Built recursively from one config: the ``vision``, ``projector`` and ``llm`` keys are themselves
type-tagged configs of the vision-backbone, projector and LLM registries::

    vlm_backbone:
      type: TinyVLM
      vision: {type: ViT, image_size: [32, 32], patch_size: 8, dim: 48}
      projector: {type: MLPProjector, in_dim: 48, out_dim: 64}
      llm: {type: DecoderLM, dim: 64, vocab_size: 259}
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vla_ros.spine.registry import VLM_BACKBONES


@VLM_BACKBONES.register()
class TinyVLM(nn.Module):
    """Prefix-LM VLM: image tokens, then text tokens, then any extra embeddings, one sequence.

    ``forward(images [B, N, C, H, W], tokens [B, L] | None, extra [B, K, dim] | None, causal)``
    returns ``(hidden [B, S, dim], mask [B, S])`` with ``S = N * vision.num_tokens + L + K``.
    """

    def __init__(self, vision: nn.Module, projector: nn.Module, llm: nn.Module) -> None:
        super().__init__()
        v_out = getattr(vision, "out_dim", None)
        if getattr(projector, "in_dim", v_out) != v_out:
            raise ValueError(
                f"TinyVLM: projector in_dim={projector.in_dim} != vision out_dim={v_out}; "
                "make them equal in the vlm_backbone config"
            )
        if getattr(projector, "out_dim", llm.dim) != llm.dim:
            raise ValueError(
                f"TinyVLM: projector out_dim={projector.out_dim} != llm dim={llm.dim}; "
                "make them equal in the vlm_backbone config"
            )
        self.vision, self.projector, self.llm = vision, projector, llm
        self.out_dim = llm.dim
        self.image_size = getattr(vision, "image_size", None)

    def forward(
        self,
        images: Tensor,
        tokens: Tensor | None = None,
        extra: Tensor | None = None,
        causal: bool = True,
    ) -> tuple[Tensor, Tensor]:
        b, n = images.shape[:2]
        feats = self.vision(images.reshape(b * n, *images.shape[2:]))
        parts = [self.projector(feats).reshape(b, n * feats.shape[1], -1)]
        masks = [torch.ones(b, parts[0].shape[1], dtype=parts[0].dtype, device=images.device)]
        if tokens is not None:
            parts.append(self.llm.embed(tokens))
            masks.append((tokens != 0).to(parts[0].dtype))
        if extra is not None:
            parts.append(extra)
            masks.append(torch.ones(b, extra.shape[1], dtype=extra.dtype, device=extra.device))
        x, mask = torch.cat(parts, dim=1), torch.cat(masks, dim=1)
        hidden, _ = self.llm(x, key_mask=mask, causal=causal)
        return hidden, mask
