"""ACT (Action Chunking with Transformers, Zhao et al. 2023).

CNN (or ViT) features of every camera, a state token and a CVAE latent token go through a
transformer encoder; ``horizon`` learned queries decode an action chunk. Training: L1 on the
chunk + ``kl_weight`` * KL(q(z | state, actions) || N(0, I)). Inference: z = 0. One graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from vla_ros.spine.base_vla import BaseVLA
from vla_ros.spine.families.common import (
    action_weights,
    encode_cameras,
    masked_loss,
    require_actions,
)
from vla_ros.spine.registry import VLAS


@VLAS.register(name="act")
class ACT(BaseVLA):
    """ACT: ``vision_backbone`` -> ``projector`` (to the head width) -> ``vla_head`` (ACTHead)."""

    FAMILY = "act"
    REQUIRED_SLOTS = ("vision_backbone", "projector", "vla_head")
    OPTIONAL_SLOTS = ()
    USES_TEXT = False
    EXPORT_LAYOUT = "monolithic"

    def __init__(
        self,
        io: Mapping[str, Any],
        *,
        dim: int = 64,
        kl_weight: float = 10.0,
        freeze: Any = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        self.dim, self.kl_weight = dim, kl_weight
        self.build_slots()
        if self.io.obs_history != 1:
            raise ValueError("act uses the newest observation only; set io.obs_history: 1")

    def slot_defaults(self, slot: str) -> dict[str, Any]:
        io = self.io
        if slot == "vision_backbone":
            return {"image_size": io.image_size, "in_channels": io.image_channels}
        if slot == "projector":
            return {"in_dim": self.vision_backbone.out_dim, "out_dim": self.dim}
        if slot == "vla_head":
            return {
                "dim": self.dim,
                "horizon": io.horizon,
                "action_dim": io.action_dim,
                "state_dim": io.state_dim,
                "num_obs_tokens": len(io.camera_names) * self.vision_backbone.num_tokens,
            }
        return {}

    def training_noise(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(seed)
        return {"latent_noise": torch.randn(batch_size, self.vla_head.latent_dim, generator=g)}

    def _obs_tokens(self, obs: Mapping[str, Tensor]) -> Tensor:
        return self.projector(encode_cameras(self.vision_backbone, obs["images"][:, -1]))

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        self.check_obs(batch)
        actions = require_actions(batch, "act", self.io.horizon, self.io.action_dim)
        w = action_weights(batch, actions)
        pred, mu, logvar = self.vla_head(
            self._obs_tokens(batch),
            batch["state"][:, -1],
            actions,
            action_mask=w[..., 0],
            latent_noise=batch.get("latent_noise"),
        )
        l1 = masked_loss(pred, actions, w, "l1")
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(-1).mean()
        return {"loss": l1 + self.kl_weight * kl, "l1": l1, "kl": kl}

    def predict_action(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        self.check_obs(obs)
        return self.vla_head(self._obs_tokens(obs), obs["state"][:, -1])[0]
