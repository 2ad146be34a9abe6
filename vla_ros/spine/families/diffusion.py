"""Diffusion Policy (Chi et al. 2023) / GR00T-style denoising head.

Observation encoder: every camera of every history step through one vision backbone (average
pooled), concatenated with the state history (and, optionally, a pooled instruction) into one
condition vector. Head: a FiLM-conditioned 1-D U-Net predicting the noise. Training: DDPM
(``num_train_timesteps``, squared-cosine schedule, epsilon prediction, MSE). Inference: DDIM
(eta = 0, deterministic) in ``num_inference_steps`` steps from the given noise.

Split export layout: ``export_prefix(obs) -> {"cond": [B, cond_dim]}``; ``export_step(prefix,
x, i)`` is DDIM step ``i`` of ``num_export_steps = num_inference_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from vla_ros.spine.base_vla import BaseVLA, step_tensor
from vla_ros.spine.components.layers import masked_mean
from vla_ros.spine.components.text import get_tokenizer
from vla_ros.spine.families.common import DiffusionNoise, action_weights, masked_loss, require_actions
from vla_ros.spine.registry import VLAS


def cosine_alphas_cumprod(steps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Squared-cosine (``squaredcos_cap_v2``) schedule: cumulative alpha products ``[steps]``."""

    def f(t: float) -> float:
        return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f((i + 1) / steps) / f(i / steps), max_beta) for i in range(steps)]
    return torch.cumprod(1.0 - torch.tensor(betas, dtype=torch.float64), dim=0)


@VLAS.register(name="diffusion")
class DiffusionVLA(DiffusionNoise, BaseVLA):
    """Diffusion Policy: pooled visual features + state history -> FiLM U-Net, DDPM / DDIM."""

    FAMILY = "diffusion"
    REQUIRED_SLOTS = ("vision_backbone", "vla_head")
    OPTIONAL_SLOTS = ("projector", "text_encoder")
    NEEDS_NOISE = True
    EXPORT_LAYOUT = "split"

    def __init__(
        self,
        io: Mapping[str, Any],
        *,
        num_train_timesteps: int = 100,
        num_inference_steps: int = 10,
        clip_sample: float | None = None,
        freeze: Any = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        if not 1 <= num_inference_steps <= num_train_timesteps:
            raise ValueError(
                f"diffusion: need 1 <= num_inference_steps ({num_inference_steps}) <= "
                f"num_train_timesteps ({num_train_timesteps})"
            )
        self.num_train_timesteps = int(num_train_timesteps)
        self.num_inference_steps = int(num_inference_steps)
        self.clip_sample = clip_sample
        if self.text_encoder_configured() and self.io.text_max_len <= 0:
            raise ValueError("diffusion: a text_encoder needs io.text_max_len > 0")
        if not self.text_encoder_configured() and self.io.text_max_len > 0:
            raise ValueError("diffusion: io.text_max_len > 0 needs a text_encoder slot")
        self.build_slots()
        ab = cosine_alphas_cumprod(self.num_train_timesteps)
        # DDIM "leading" spacing: t_k = k * (T // K), run from the largest down
        stride = self.num_train_timesteps // self.num_inference_steps
        ts = torch.arange(self.num_inference_steps - 1, -1, -1, dtype=torch.long) * stride
        prev = ts - stride
        ab_prev = torch.where(prev >= 0, ab[prev.clamp_min(0)], torch.ones_like(ab[ts]))
        self.register_buffer("alphas_cumprod", ab.float(), persistent=False)
        self.register_buffer("ddim_t", ts, persistent=False)
        self.register_buffer("ddim_ab", ab[ts].float(), persistent=False)
        self.register_buffer("ddim_ab_prev", ab_prev.float(), persistent=False)

    def text_encoder_configured(self) -> bool:
        return "text_encoder" in self._slot_cfgs

    def _raw_cond_dim(self) -> int:
        io = self.io
        d = io.obs_history * (len(io.camera_names) * self.vision_backbone.out_dim + io.state_dim)
        if self.text_encoder is not None:
            d += self.text_encoder.out_dim
        return d

    def slot_defaults(self, slot: str) -> dict[str, Any]:
        io = self.io
        if slot == "vision_backbone":
            return {"image_size": io.image_size, "in_channels": io.image_channels, "pool": "avg"}
        if slot == "text_encoder":
            return {"vocab_size": get_tokenizer(io.tokenizer).vocab_size, "max_len": io.text_max_len}
        if slot == "projector":
            return {"in_dim": self._raw_cond_dim()}
        if slot == "vla_head":
            cond = self.projector.out_dim if self.projector is not None else self._raw_cond_dim()
            return {"action_dim": io.action_dim, "cond_dim": cond, "horizon": io.horizon}
        return {}

    @property
    def num_export_steps(self) -> int:
        return self.num_inference_steps

    def io_extra(self) -> dict[str, Any]:
        return {
            "num_inference_steps": self.num_inference_steps,
            "num_train_timesteps": self.num_train_timesteps,
        }

    # ------------------------------------------------------------------ split layout
    def export_prefix(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        images, state = obs["images"], obs["state"]
        b, t, n = images.shape[:3]
        feats = self.vision_backbone(images.reshape(b * t * n, *images.shape[3:]))
        parts = [feats.mean(dim=1).reshape(b, -1), state.reshape(b, -1)]
        if self.text_encoder is not None:
            tf, tm = self.text_encoder(obs["tokens"])
            parts.append(masked_mean(tf, tm))
        cond = torch.cat(parts, dim=-1)
        if self.projector is not None:
            cond = self.projector(cond)
        return {"cond": cond}

    def export_step(self, prefix: Mapping[str, Tensor], x: Tensor, step_index: int | Tensor) -> Tensor:
        i = step_tensor(step_index, x).reshape(1)
        # index_select, not t[i]: no host sync (CUDA graphs) and one Gather in ONNX
        t = self.ddim_t.index_select(0, i).expand(x.shape[0])
        ab, ab_prev = self.ddim_ab.index_select(0, i), self.ddim_ab_prev.index_select(0, i)
        eps = self.vla_head(x, t, prefix["cond"])
        x0 = (x - torch.sqrt(1.0 - ab) * eps) / torch.sqrt(ab)
        if self.clip_sample is not None:
            x0 = x0.clamp(-self.clip_sample, self.clip_sample)
        return torch.sqrt(ab_prev) * x0 + torch.sqrt(1.0 - ab_prev) * eps

    # ------------------------------------------------------------------ contract
    def predict_action(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        self.check_obs(obs)
        x = self.get_noise(obs, noise)
        prefix = self.export_prefix(obs)
        for i in range(self.num_inference_steps):
            x = self.export_step(prefix, x, i)
        return x

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        self.check_obs(batch)
        a = require_actions(batch, "diffusion", self.io.horizon, self.io.action_dim)
        noise, t = self.noise_and_timestep(batch, a)
        ab = self.alphas_cumprod[t.long()][:, None, None]
        x_t = torch.sqrt(ab) * a + torch.sqrt(1.0 - ab) * noise
        pred = self.vla_head(x_t, t, self.export_prefix(batch)["cond"])
        loss = masked_loss(pred, noise, action_weights(batch, a), "mse")
        return {"loss": loss, "mse": loss.detach()}
