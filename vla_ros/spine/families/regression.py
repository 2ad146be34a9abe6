"""Parallel-decoding regression VLA (OpenVLA-OFT / Octo style).

Tokens: image tokens of every camera and history step (vision backbone -> projector, plus a
learned embedding per (step, camera)), one state token per history step, an optional task token
(the pooled instruction from a ``text_encoder``), then ``horizon`` learned action queries. The
LLM runs bidirectionally over all of them once; the head maps each query's output to one action.
L1 loss. One graph, no sampling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from vla_ros.spine.base_vla import BaseVLA
from vla_ros.spine.components.layers import masked_mean
from vla_ros.spine.components.text import get_tokenizer
from vla_ros.spine.families.common import (
    action_weights,
    masked_loss,
    require_actions,
)
from vla_ros.spine.registry import VLAS


@VLAS.register(name="regression")
class RegressionVLA(BaseVLA):
    """Learned action queries decoded in parallel by a bidirectional transformer; L1."""

    FAMILY = "regression"
    REQUIRED_SLOTS = ("vision_backbone", "projector", "llm_backbone", "vla_head")
    OPTIONAL_SLOTS = ("text_encoder",)
    EXPORT_LAYOUT = "monolithic"

    def __init__(
        self,
        io: Mapping[str, Any],
        *,
        freeze: Any = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        has_text = "text_encoder" in self._slot_cfgs
        if has_text != (self.io.text_max_len > 0):
            raise ValueError(
                "regression: a text_encoder (task embedding) and io.text_max_len > 0 go together; "
                f"got text_encoder={'set' if has_text else 'absent'}, "
                f"text_max_len={self.io.text_max_len}"
            )
        self.build_slots()
        io, dim = self.io, self.llm_backbone.dim
        n_img = io.obs_history * len(io.camera_names)
        self.obs_embed = nn.Parameter(torch.randn(1, n_img, 1, dim) * 0.02)
        self.state_proj = nn.Linear(io.state_dim, dim)
        self.state_embed = nn.Parameter(torch.randn(1, io.obs_history, dim) * 0.02)
        self.task_proj = nn.Linear(self.text_encoder.out_dim, dim) if self.text_encoder is not None else None
        self.queries = nn.Parameter(torch.randn(1, io.horizon, dim) * 0.02)

    def slot_defaults(self, slot: str) -> dict[str, Any]:
        io = self.io
        if slot == "vision_backbone":
            return {"image_size": io.image_size, "in_channels": io.image_channels}
        if slot == "text_encoder":
            return {"vocab_size": get_tokenizer(io.tokenizer).vocab_size, "max_len": io.text_max_len}
        if slot == "llm_backbone":
            return {"vocab_size": 0}
        if slot == "projector":
            return {"in_dim": self.vision_backbone.out_dim, "out_dim": self.llm_backbone.dim}
        if slot == "vla_head":
            return {"in_dim": self.llm_backbone.dim, "action_dim": io.action_dim}
        return {}

    def _sequence(self, obs: Mapping[str, Tensor]) -> Tensor:
        images, state = obs["images"], obs["state"]
        b, t, n = images.shape[:3]
        feats = self.vision_backbone(images.reshape(b * t * n, *images.shape[3:]))
        img = self.projector(feats).reshape(b, t * n, feats.shape[1], -1) + self.obs_embed
        parts = [img.reshape(b, t * n * feats.shape[1], -1)]
        parts.append(self.state_proj(state) + self.state_embed)
        if self.text_encoder is not None:
            tf, tm = self.text_encoder(obs["tokens"])
            parts.append(self.task_proj(masked_mean(tf, tm))[:, None])
        parts.append(self.queries.expand(b, -1, -1))
        return torch.cat(parts, dim=1)

    def predict_action(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        self.check_obs(obs)
        hidden, _ = self.llm_backbone(self._sequence(obs), causal=False)
        return self.vla_head(hidden[:, -self.io.horizon :])

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        self.check_obs(batch)
        a = require_actions(batch, "regression", self.io.horizon, self.io.action_dim)
        hidden, _ = self.llm_backbone(self._sequence(batch), causal=False)
        pred = self.vla_head(hidden[:, -self.io.horizon :])
        loss = masked_loss(pred, a, action_weights(batch, a), "l1")
        return {"loss": loss, "l1": loss.detach()}
