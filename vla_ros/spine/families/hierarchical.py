"""Dual-rate hierarchical VLA (Figure Helix style).

System 2 (slow, ``slow_hz``): a VLM reads the cameras, the instruction and the state and writes
a latent vector (the hidden state of a learned query token, projected to ``latent_dim``).
System 1 (fast, ``fast_hz``): a small visuomotor transformer reads the newest latent together
with the newest cameras and state, and outputs the action chunk. The two run as two graphs at
two rates; at deployment S1 uses a latent S2 computed from an older observation. Training is
end to end; ``batch["slow_images"]``, ``["slow_state"]``, ``["slow_tokens"]`` (optional) feed S2
an older observation, as Helix trains with the deployment delay.

Export: ``predict_action(obs) = export_fast({"latent": export_slow(obs)["latent"]}, obs)`` (the
default, monolithic). For dual-rate deployment export the two graphs named in
``io_spec().extra["graphs"]``: ``export_slow(obs) -> {"latent": [B, latent_dim]}`` (inputs images,
state, tokens) and ``export_fast(prefix, obs) -> [B, H, D]`` (inputs latent, images, state).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from vla_ros.spine.base_vla import BaseVLA
from vla_ros.spine.families.common import (
    action_weights,
    encode_cameras,
    masked_loss,
    require_actions,
)
from vla_ros.spine.registry import VLAS


@VLAS.register(name="hierarchical")
class HierarchicalVLA(BaseVLA):
    """Helix-style: slow VLM -> latent; fast visuomotor policy reads latent + newest obs."""

    FAMILY = "hierarchical"
    REQUIRED_SLOTS = ("vlm_backbone", "projector", "vision_backbone", "vla_head")
    OPTIONAL_SLOTS = ()
    USES_TEXT = True
    EXPORT_LAYOUT = "dual"  # slow.onnx at slow_hz + fast.onnx every tick; "monolithic" also exports

    def __init__(
        self,
        io: Mapping[str, Any],
        *,
        latent_dim: int = 32,
        slow_hz: float = 8.0,
        fast_hz: float | None = None,
        freeze: Any = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        self.latent_dim = int(latent_dim)
        self.fast_hz = float(fast_hz) if fast_hz is not None else 1.0 / self.io.dt
        self.slow_hz = float(slow_hz)
        if not 0 < self.slow_hz <= self.fast_hz:
            raise ValueError(f"hierarchical: need 0 < slow_hz ({self.slow_hz}) <= fast_hz ({self.fast_hz})")
        self.build_slots()
        vlm_size = getattr(self.vlm_backbone, "image_size", None)
        if vlm_size is not None and tuple(vlm_size) != tuple(self.io.image_size):
            raise ValueError(
                f"hierarchical: vlm_backbone vision image_size {tuple(vlm_size)} != io.image_size "
                f"{tuple(self.io.image_size)}; make them equal"
            )
        if self.io.obs_history != 1:
            raise ValueError("hierarchical reads the newest observation; set io.obs_history: 1")
        width = self.vlm_backbone.out_dim
        self.slow_state = nn.Linear(self.io.state_dim, width)
        self.latent_query = nn.Parameter(torch.randn(1, 1, width) * 0.02)

    def slot_defaults(self, slot: str) -> dict[str, Any]:
        io = self.io
        if slot == "vision_backbone":
            return {"image_size": io.image_size, "in_channels": io.image_channels}
        if slot == "projector":
            return {"in_dim": self.vlm_backbone.out_dim, "out_dim": self.latent_dim}
        if slot == "vla_head":
            return {
                "latent_dim": self.latent_dim,
                "vision_dim": self.vision_backbone.out_dim,
                "state_dim": io.state_dim,
                "action_dim": io.action_dim,
                "horizon": io.horizon,
                "num_obs_tokens": len(io.camera_names) * self.vision_backbone.num_tokens,
            }
        return {}

    def io_extra(self) -> dict[str, Any]:
        return {
            "latent_dim": self.latent_dim,
            "slow_hz": self.slow_hz,
            "fast_hz": self.fast_hz,
            "graphs": {
                "slow": {
                    "method": "export_slow",
                    "inputs": ["images", "state", "tokens"],
                    "outputs": ["latent"],
                    "rate_hz": self.slow_hz,
                },
                "fast": {
                    "method": "export_fast",
                    "inputs": ["latent", "images", "state"],
                    "outputs": ["actions"],
                    "rate_hz": self.fast_hz,
                },
            },
        }

    # ------------------------------------------------------------------ the two systems
    def slow(self, images: Tensor, state: Tensor, tokens: Tensor) -> Tensor:
        """System 2: ``images [B, T, N, C, H, W]``, ``state [B, T, S]``, tokens -> latent."""
        b = images.shape[0]
        extra = torch.cat(
            [self.slow_state(state[:, -1])[:, None], self.latent_query.expand(b, -1, -1)], dim=1
        )
        hidden, _ = self.vlm_backbone(images[:, -1], tokens, extra=extra, causal=True)
        return self.projector(hidden[:, -1])

    def fast(self, latent: Tensor, images: Tensor, state: Tensor) -> Tensor:
        """System 1: latent + newest images and state -> actions ``[B, H, D]``."""
        obs_tokens = encode_cameras(self.vision_backbone, images[:, -1])
        return self.vla_head(latent, obs_tokens, state[:, -1])

    def export_slow(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The slow graph: ``{"latent": [B, latent_dim]}``."""
        return {"latent": self.slow(obs["images"], obs["state"], obs["tokens"])}

    def export_fast(self, prefix: Mapping[str, Tensor], obs: Mapping[str, Tensor]) -> Tensor:
        """The fast graph: ``prefix["latent"]`` + newest ``obs`` -> actions."""
        return self.fast(prefix["latent"], obs["images"], obs["state"])

    # ------------------------------------------------------------------ contract
    def predict_action(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        self.check_obs(obs)
        return self.export_fast(self.export_slow(obs), obs)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        self.check_obs(batch)
        a = require_actions(batch, "hierarchical", self.io.horizon, self.io.action_dim)
        latent = self.slow(
            batch.get("slow_images", batch["images"]),
            batch.get("slow_state", batch["state"]),
            batch.get("slow_tokens", batch["tokens"]),
        )
        pred = self.fast(latent, batch["images"], batch["state"])
        loss = masked_loss(pred, a, action_weights(batch, a), "l1")
        return {"loss": loss, "l1": loss.detach()}
