"""LeRobot's SmolVLA, weight-compatible, decomposed onto the spine's slots (inference only).

Follows ``lerobot/policies/smolvla/`` of LeRobot 0.6.1 (Shukor et al. 2025, "SmolVLA: A
Vision-Language-Action Model for Affordable and Efficient Robotics")::

    vision_backbone  SmolVLMVisionTower     [B*N, 3, S, S] in [-1, 1] -> [B*N, (S/16)^2, 768]
    projector        PixelShuffleConnector  pixel shuffle x4 + Linear -> [B*N, 64, 960]
    llm_backbone     SmolLMPrefix           the first num_vlm_layers SmolLM layers over the
                                            prefix [images, language, state] -> KV cache
    vla_head         SmolVLAExpert          the action expert: velocity of the flow
    state_proj       (family)               Linear(max_state_dim, 960): the state token

Preprocessing as LeRobot's ``SmolVLAPolicy.prepare_images`` / ``prepare_state``: each camera
resized keeping its aspect ratio to fit ``resize_imgs_with_padding`` (bilinear, align_corners
False), padded on the left and top with 0, scaled to [-1, 1]; the state zero-padded to
``max_state_dim``. LeRobot's empty-camera slots (``empty_cameras``: -1 images with mask 0) are
masked out of every attention and take no position, so they change nothing: vla_ros does not
compute them. Image and language embeddings are multiplied by ``sqrt(width)``; images and
language attend to each other, the state token attends to everything; positions are the running
count of valid tokens minus one.

Sampling: the prefix cache once, then ``num_steps`` Euler steps from ``t = 1`` to ``0``
(``x <- x + dt * v``, ``dt = -1 / num_steps``) from noise ``[B, chunk, max_action_dim]``
(LeRobot's shape: the padded action dimensions carry noise too), truncated to the action
dimension at the end. Split layout: ``export_prefix`` -> ``prefix_k``/``prefix_v``
``[L, B, P, G, D]`` and ``prefix_mask [B, P]``; ``export_step`` is one Euler step.

Inputs: ``images [B, 1, N, 3, H, W]`` in [0, 1], ``state [B, 1, D]`` normalized (the card
carries LeRobot's MEAN_STD), ``tokens [B, tokenizer_max_length]`` from :meth:`tokenize` (the
task with a newline, ``-1`` = padding), ``noise [B, chunk, max_action_dim]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.components import siglip, smollm, smolvla_expert  # noqa: F401  (registers the slots)
from vla_ros.spine.components.smolvla_text import (
    SmolVLATokenizer,
    TokenizerNotFoundError,
)
from vla_ros.spine.families.lerobot_flow import LeRobotFlowVLA
from vla_ros.spine.registry import VLAS

#: spine model prefix -> LeRobot checkpoint prefix (first match wins; see spine/weights.py)
NAME_MAPPING: dict[str, str] = {
    "vision_backbone": "model.vlm_with_expert.vlm.model.vision_model",
    "projector": "model.vlm_with_expert.vlm.model.connector",
    "llm_backbone": "model.vlm_with_expert.vlm.model.text_model",
    "vla_head.lm_expert": "model.vlm_with_expert.lm_expert",
    "vla_head": "model",
    "state_proj": "model.state_proj",
}
#: LeRobot keys SmolVLA never uses at inference (the VLM's next-token head), dropped by name
UNUSED_PREFIXES = ("model.vlm_with_expert.vlm.lm_head.",)
SMOLVLM2_500M_NAME = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
#: SmolVLM2-500M-Video-Instruct's architecture (used when its config.json is not at hand; the
#: shapes are checked against the weights): see shared/LEROBOT_FACTS.md
SMOLVLM2_500M: dict[str, Any] = {
    "text_config": {
        "hidden_size": 960,
        "intermediate_size": 2560,
        "num_attention_heads": 15,
        "num_key_value_heads": 5,
        "head_dim": 64,
        "rms_norm_eps": 1e-5,
        "vocab_size": 49280,
    },
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 512,
        "patch_size": 16,
        "layer_norm_eps": 1e-6,
    },
    "scale_factor": 4,
}
DEFAULT_FPS = 30.0


def resize_with_pad(images: Tensor, height: int, width: int) -> Tensor:
    """LeRobot's ``resize_with_pad`` (SmolVLA): ``[B, C, h, w]`` -> ``[B, C, height, width]``.

    Scaled by ``1 / max(w / width, h / height)`` (sizes truncated to int), bilinear with
    ``align_corners=False`` and no antialiasing, then zero-padded on the left and top.
    """
    h, w = images.shape[-2:]
    if (h, w) == (height, width):
        return images
    ratio = max(w / width, h / height)
    rh, rw = int(h / ratio), int(w / ratio)
    out = F.interpolate(images, size=(rh, rw), mode="bilinear", align_corners=False)
    return F.pad(out, (max(0, width - rw), 0, max(0, height - rh), 0), value=0.0)


@VLAS.register(name="lerobot_smolvla")
class LeRobotSmolVLA(LeRobotFlowVLA):
    """LeRobot SmolVLA on the spine; see the module docstring."""

    FAMILY = "lerobot_smolvla"

    FLOW_NAME = "SmolVLA"
    DEFAULT_RESIZE = (512, 512)
    _tokenizer: SmolVLATokenizer | None

    def check_expert(self, llm: Any, head: Any) -> None:
        if head.depth != llm.depth or head.kv_heads != llm.kv_heads or head.head_dim != llm.head_dim:
            raise ValueError(
                f"SmolVLA expert (depth {head.depth}, kv_heads {head.kv_heads}, head_dim {head.head_dim}) "
                f"must match the VLM layers it reads (depth {llm.depth}, {llm.kv_heads}, {llm.head_dim})"
            )

    def setup_family(self) -> None:
        """The state projection ``state_proj``: ``max_state_dim`` -> the VLM width."""
        self.state_proj = nn.Linear(self.max_state_dim, self.llm_backbone.dim)

    # ------------------------------------------------------------------ text
    def tokenize(self, instructions: str | list[str]) -> Tensor:
        """Tasks -> ``int64 [B, tokenizer_max_length]`` as LeRobot's preprocessor (see
        :class:`~vla_ros.spine.components.smolvla_text.SmolVLATokenizer`); ``FileNotFoundError``
        when a model built from a checkpoint has no tokenizer file. A model built from a spine
        config (random weights, no checkpoint, no ``smolvla:`` tokenizer in its IO spec)
        tokenizes with the IO spec's tokenizer like every spine family."""
        if self._tokenizer is None:
            if not self.tokenizer_file and not self.io.tokenizer.startswith("smolvla:"):
                return super().tokenize(instructions)
            if not self.tokenizer_file or not Path(self.tokenizer_file).is_file():
                raise TokenizerNotFoundError(
                    f"SmolVLA tokenizer file {self.tokenizer_file!r} does not exist; pass the VLM's "
                    "tokenizer.json (vla-ros export --tokenizer PATH)"
                )
            self._tokenizer = SmolVLATokenizer(self.tokenizer_file, self.io.text_max_len)
        return self._tokenizer(instructions)

    # ------------------------------------------------------------------ prefix
    def preprocess_images(self, images: Tensor) -> Tensor:
        """``[B, N, 3, H, W]`` in [0, 1] -> ``[B * N, 3, S_h, S_w]`` (each camera normalized with
        its VISUAL statistics when the checkpoint has them, then resized, padded, scaled to [-1, 1]
        when in [0, 1], as LeRobot's preprocessor and ``prepare_images`` do)."""
        if any(norm.mode != "IDENTITY" for norm in self.image_norm):
            images = torch.stack([norm.normalize(images[:, i]) for i, norm in enumerate(self.image_norm)], 1)
        x = resize_with_pad(images.flatten(0, 1), *self.resize)
        return x * 2.0 - 1.0

    def embed_prefix(self, obs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Prefix embeddings ``[B, P, dim]``, valid mask ``[B, P]`` bool and attention blocks
        ``[P]`` int (0 image/language, 1 state), as LeRobot's ``embed_prefix``."""
        images = obs["images"][:, -1]
        b, n = images.shape[:2]
        llm = self.llm_backbone
        img = self.projector(self.vision_backbone(self.preprocess_images(images)))  # [B*N, T, dim]
        img = img.reshape(b, n * img.shape[1], img.shape[2]) * torch.tensor(
            img.shape[-1] ** 0.5, dtype=img.dtype, device=img.device
        )
        tokens = obs["tokens"]
        lang = llm.embed(tokens) * math.sqrt(llm.dim)
        state = F.pad(obs["state"][:, -1], (0, self.max_state_dim - self.io.state_dim))
        st = self.state_proj(state)[:, None, :]
        embeds = torch.cat([img, lang, st], dim=1)
        ones = torch.ones(b, img.shape[1], dtype=torch.bool, device=img.device)
        mask = torch.cat([ones, tokens >= 0, ones[:, :1]], dim=1)
        blocks = torch.zeros(embeds.shape[1], dtype=torch.long, device=img.device)
        blocks[-1] = 1
        return embeds, mask, blocks

    def export_prefix(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        embeds, mask, blocks = self.embed_prefix(obs)
        cum = torch.cumsum(blocks, dim=0)
        att = (cum[None, :] <= cum[:, None])[None] & mask[:, None, :] & mask[:, :, None]
        positions = torch.cumsum(mask.to(torch.long), dim=1) - 1
        k, v = self.llm_backbone(embeds, positions, att)
        return {"prefix_k": k, "prefix_v": v, "prefix_mask": mask.to(k.dtype)}

    # ------------------------------------------------------------------ steps
    def velocity(self, prefix: Mapping[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
        """The expert's velocity ``[B, chunk, max_action_dim]`` at ``x`` and time ``t [B]``."""
        return self.vla_head(prefix["prefix_k"], prefix["prefix_v"], prefix["prefix_mask"] > 0.5, x, t)

    def noise_name(self) -> str:
        return "SmolVLA"

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Training is LeRobot's job; vla_ros runs SmolVLA for inference only."""
        raise NotImplementedError("lerobot_smolvla is inference-only: fine-tune SmolVLA in LeRobot")


# the LeRobot folder -> model code (build_from_lerobot, smolvla_model_config, ...) is in
# lerobot_smolvla_checkpoint, which imports this module (families/__init__ imports it to register)
__all__ = ["NAME_MAPPING", "LeRobotSmolVLA", "resize_with_pad"]
