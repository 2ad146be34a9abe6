"""Flow-matching VLA (pi0 / pi0.5 / SmolVLA / GR00T style).

Prefix: image tokens (vision backbone -> projector) and instruction tokens, run once through
the LLM bidirectionally; its per-layer KV cache is kept. Suffix: an action expert (its own
weights, same depth / KV heads / head size) reads [state token, noisy action tokens] and attends
to the prefix cache. Training regresses the velocity ``u = noise - actions`` at
``x_t = t * noise + (1 - t) * actions``; inference integrates ``N`` Euler steps from ``t = 1``
(noise) to ``t = 0``: ``x <- x - v(x, t) / N``.

Split export layout: ``export_prefix(obs)`` returns the KV cache ``prefix_k``/``prefix_v``
``[depth, B, kv_heads, P, head_dim]``, ``prefix_mask [B, P]``, ``prefix_ctx [B, expert_dim]``
and ``prefix_state [B, state_dim]``; ``export_step(prefix, x, i)`` is Euler step ``i`` of
``num_export_steps = num_steps``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from vla_ros.spine.base_vla import BaseVLA, step_tensor
from vla_ros.spine.components.layers import masked_mean
from vla_ros.spine.components.text import get_tokenizer
from vla_ros.spine.families.common import (
    action_weights,
    encode_cameras,
    masked_loss,
    require_actions,
)
from vla_ros.spine.registry import VLAS


@VLAS.register(name="flow_matching")
class FlowMatchingVLA(BaseVLA):
    """pi0-style prefix VLM + flow-matching action expert with N Euler steps."""

    FAMILY = "flow_matching"
    REQUIRED_SLOTS = ("vision_backbone", "projector", "llm_backbone", "vla_head")
    OPTIONAL_SLOTS = ("text_encoder",)
    NEEDS_NOISE = True
    EXPORT_LAYOUT = "split"

    def __init__(
        self,
        io: Mapping[str, Any],
        *,
        num_steps: int = 10,
        time_beta: tuple[float, float] = (1.5, 1.0),
        freeze: Any = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        if num_steps < 1:
            raise ValueError(f"flow_matching num_steps must be >= 1, got {num_steps}")
        self.num_steps = int(num_steps)
        self.time_beta = (float(time_beta[0]), float(time_beta[1]))
        self.build_slots()
        llm, head = self.llm_backbone, self.vla_head
        for attr in ("depth", "kv_heads", "head_dim"):
            if getattr(head, attr) != getattr(llm, attr):
                raise ValueError(
                    f"flow_matching: vla_head.{attr}={getattr(head, attr)} must equal "
                    f"llm_backbone.{attr}={getattr(llm, attr)} (the expert attends to its KV "
                    "cache); remove it from the vla_head config to inherit it"
                )
        self.text_proj = (
            nn.Linear(self.text_encoder.out_dim, llm.dim) if self.text_encoder is not None else None
        )
        self.ctx_proj = nn.Linear(llm.dim, head.dim)
        if self.io.obs_history != 1:
            raise ValueError("flow_matching uses the newest observation only; set io.obs_history: 1")

    def slot_defaults(self, slot: str) -> dict[str, Any]:
        io = self.io
        text = io.text_max_len > 0
        if slot == "vision_backbone":
            return {"image_size": io.image_size, "in_channels": io.image_channels}
        if slot == "text_encoder":
            return {"vocab_size": get_tokenizer(io.tokenizer).vocab_size, "max_len": io.text_max_len}
        if slot == "llm_backbone":
            own_text = text and "text_encoder" not in self._slot_cfgs
            return {"vocab_size": get_tokenizer(io.tokenizer).vocab_size if own_text else 0}
        if slot == "projector":
            return {"in_dim": self.vision_backbone.out_dim, "out_dim": self.llm_backbone.dim}
        if slot == "vla_head":
            llm = self.llm_backbone
            return {
                "depth": llm.depth,
                "kv_heads": llm.kv_heads,
                "head_dim": llm.head_dim,
                "max_len": llm.max_len,
                "rope_theta": llm.rope_theta,
                "action_dim": io.action_dim,
                "state_dim": io.state_dim,
                "horizon": io.horizon,
            }
        return {}

    @property
    def num_export_steps(self) -> int:
        return self.num_steps

    def io_extra(self) -> dict[str, Any]:
        return {"num_steps": self.num_steps}

    # ------------------------------------------------------------------ split layout
    def export_prefix(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        img = self.projector(encode_cameras(self.vision_backbone, obs["images"][:, -1]))
        parts = [img]
        masks = [torch.ones(img.shape[:2], dtype=img.dtype, device=img.device)]
        if self.io.text_max_len > 0:
            tokens = obs["tokens"]
            if self.text_encoder is not None:
                feats, m = self.text_encoder(tokens)
                parts.append(self.text_proj(feats))
                masks.append(m.to(img.dtype))
            else:
                parts.append(self.llm_backbone.embed(tokens))
                masks.append((tokens != 0).to(img.dtype))
        x, mask = torch.cat(parts, dim=1), torch.cat(masks, dim=1)
        hidden, (k, v) = self.llm_backbone(x, key_mask=mask, causal=False)
        return {
            "prefix_k": k,
            "prefix_v": v,
            "prefix_mask": mask,
            "prefix_ctx": self.ctx_proj(masked_mean(hidden, mask)),
            "prefix_state": obs["state"][:, -1],
        }

    def _velocity(self, prefix: Mapping[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
        return self.vla_head(
            prefix["prefix_k"],
            prefix["prefix_v"],
            prefix["prefix_mask"],
            prefix["prefix_state"],
            x,
            t,
            context=prefix["prefix_ctx"],
        )

    def export_step(self, prefix: Mapping[str, Tensor], x: Tensor, step_index: int | Tensor) -> Tensor:
        i = step_tensor(step_index, x).to(x.dtype)
        t = (1.0 - i / self.num_steps).reshape(1).expand(x.shape[0])
        return x - self._velocity(prefix, x, t) / self.num_steps

    def training_noise(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        g = torch.Generator().manual_seed(seed)
        shape = (batch_size, self.io.horizon, self.io.action_dim)
        return {
            "noise": torch.randn(shape, generator=g),
            "timestep": torch.rand(batch_size, generator=g) * 0.999 + 0.001,
        }

    # ------------------------------------------------------------------ contract
    def predict_action(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        self.check_obs(obs)
        x = self.get_noise(obs, noise)
        prefix = self.export_prefix(obs)
        for i in range(self.num_steps):
            x = self.export_step(prefix, x, i)
        return x

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        self.check_obs(batch)
        a = require_actions(batch, "flow_matching", self.io.horizon, self.io.action_dim)
        noise = batch.get("noise")
        noise = torch.randn_like(a) if noise is None else noise
        t = batch.get("timestep")
        if t is None:
            beta = torch.distributions.Beta(*self.time_beta)
            t = beta.sample((a.shape[0],)).to(a) * 0.999 + 0.001
        tt = t.to(a.dtype)[:, None, None]
        x_t = tt * noise + (1.0 - tt) * a
        v = self._velocity(self.export_prefix(batch), x_t, t.to(a.dtype))
        loss = masked_loss(v, noise - a, action_weights(batch, a), "mse")
        return {"loss": loss, "mse": loss.detach()}
