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

Real-time chunking (RTC; Black, Galliker, Levine 2025, arXiv 2506.07339), config ``rtc:``:

- ``rtc: {max_delay: k}`` (or ``rtc: true``: ``k = horizon // 2``): **training-time action
  conditioning** (Black et al. 2025, arXiv 2512.05964). ``forward`` draws a delay ``d``
  uniformly in ``[0, k]`` per sample (``batch["rtc_delay"] [B]`` int fixes it); the first
  ``d`` action tokens get the clean actions and flow time 0 (clean; the paper's time 1), the
  rest follow the schedule, and the loss is masked to the non-prefix steps; ``d = 0`` is the
  unconditioned loss. The exported step graph then takes two more inputs, ``rtc_actions``
  ``[B, H, A]`` (normalized, model space, zero past the prefix) and ``rtc_mask [B, H]`` (1 for
  the committed steps); the prefix rows of ``x`` are set to ``rtc_actions`` every step, so
  the chunk's first ``d`` actions are the committed ones. No new weights.
- ``rtc: {guidance: β}`` (β > 0, the maximum guidance weight): **inference-time RTC** for a
  policy trained without conditioning (guided inpainting: :mod:`vla_ros.control.rtc_guidance`).
  Exact in torch (``torch.func.vjp`` through the velocity network). The ONNX export is exact
  too: a second step graph ``step_rtc.onnx`` (inputs: the step's, ``rtc_actions``, ``rtc_mask``
  as soft-mask weights in ``[0, 1]``, ``rtc_max_guidance`` scalar) whose output already
  contains the guidance term: the vector-Jacobian product is traced into plain forward and
  backward ops with ``make_fx(torch.func.vjp)`` and exported with the dynamo exporter
  (:func:`vla_ros.export.onnx_export.export_onnx`). The plain step graph stays for calls with
  nothing committed.

The card states it in ``io.extra["rtc"]``: ``{"mode": "conditioned", "max_delay": k}`` or
``{"mode": "guided", "max_guidance": β}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from vla_ros.control.rtc_guidance import DEFAULT_MAX_GUIDANCE
from vla_ros.spine.base_vla import BaseVLA, step_tensor
from vla_ros.spine.components.layers import masked_mean
from vla_ros.spine.components.text import get_tokenizer
from vla_ros.spine.families.common import (
    action_weights,
    encode_cameras,
    masked_loss,
    require_actions,
)
from vla_ros.spine.families.rtc_step import guided_euler_step
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
        rtc: bool | Mapping[str, Any] | None = None,
        **slots: Any,
    ) -> None:
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        if num_steps < 1:
            raise ValueError(f"flow_matching num_steps must be >= 1, got {num_steps}")
        self.num_steps = int(num_steps)
        self.rtc_max_delay, self.rtc_guidance = parse_rtc(rtc, self.io.horizon)
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
        extra: dict[str, Any] = {"num_steps": self.num_steps}
        if self.rtc_mode is not None:
            extra["rtc"] = self.rtc_spec()
        return extra

    # ------------------------------------------------------------------ real-time chunking
    @property
    def rtc_mode(self) -> str | None:
        """``"conditioned"`` (trained with action conditioning), ``"guided"`` (inference-time
        guidance configured) or None (committed actions are not used)."""
        if self.rtc_max_delay is not None:
            return "conditioned"
        return "guided" if self.rtc_guidance is not None else None

    def rtc_spec(self) -> dict[str, Any]:
        """The card's ``io.extra["rtc"]`` entry (see the module docstring)."""
        if self.rtc_max_delay is not None:
            return {"mode": "conditioned", "max_delay": int(self.rtc_max_delay)}
        if self.rtc_guidance is not None:
            return {"mode": "guided", "max_guidance": float(self.rtc_guidance)}
        return {}

    def export_step_rtc(
        self,
        prefix: Mapping[str, Tensor],
        x: Tensor,
        step_index: int | Tensor,
        rtc_actions: Tensor,
        rtc_mask: Tensor,
        max_guidance: Tensor | float | None = None,
    ) -> Tensor:
        """Euler step ``step_index`` that continues the committed actions.

        ``x``, ``rtc_actions``: ``[B, H, A]`` normalized (model space); ``rtc_mask``: ``[B, H]``
        (conditioned: 1 for the committed steps, 0 after; guided: the soft-mask weights in
        ``[0, 1]``); ``max_guidance``: the guidance clip β (guided only; default the
        configured one). Conditioned: the trained conditioning (prefix rows clean at flow time
        0, then set to ``rtc_actions``). Guided: ``x - v / N + w(t) g / N`` with ``g`` the
        vector-Jacobian product ``((Y - Â) ⊙ W)ᵀ ∂Â/∂x``, ``Â = x - t v`` (arXiv 2506.07339,
        Algorithm 1 in this time convention; ``w`` as
        :func:`vla_ros.control.rtc_guidance.guidance_weight`). A mask of zeros is the plain
        :meth:`export_step` (exactly for conditioned; guided adds a zero term).

        Raises:
            ValueError: the model has no RTC configured (``rtc:`` in its config).
        """
        i = step_tensor(step_index, x).to(x.dtype)
        t = 1.0 - i / self.num_steps
        mask = rtc_mask.to(x.dtype)
        if self.rtc_max_delay is not None:
            m = (mask > 0.5).to(x.dtype)[..., None]
            y = rtc_actions.to(x.dtype)
            x_in = m * y + (1.0 - m) * x
            t_tok = (1.0 - m[..., 0]) * t
            v = self._velocity(prefix, x_in, t_tok)
            return m * y + (1.0 - m) * (x_in - v / self.num_steps)
        if self.rtc_guidance is None:
            raise ValueError(
                "flow_matching: export_step_rtc needs RTC configured: set rtc: {max_delay: k} "
                "(training-time conditioning) or rtc: {guidance: beta} (inference-time guidance)"
            )
        beta = self.rtc_guidance if max_guidance is None else max_guidance
        return guided_euler_step(self._velocity, prefix, x, t, rtc_actions, mask, beta, self.num_steps)

    def predict_action_rtc(
        self,
        obs: Mapping[str, Tensor],
        rtc_actions: Tensor,
        rtc_mask: Tensor,
        noise: Tensor | None = None,
        max_guidance: float | None = None,
    ) -> Tensor:
        """``predict_action`` continuing committed actions: the prefix graph, then
        :meth:`export_step_rtc` for every Euler step. Shapes as there; returns ``[B, H, A]``."""
        self.check_obs(obs)
        x = self.get_noise(obs, noise)
        prefix = self.export_prefix(obs)
        for i in range(self.num_steps):
            x = self.export_step_rtc(prefix, x, i, rtc_actions, rtc_mask, max_guidance)
        return x

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
        weights = action_weights(batch, a)
        t_in = t.to(a.dtype)
        if self.rtc_max_delay is not None:
            # training-time action conditioning (arXiv 2512.05964): a committed prefix of d
            # steps is clean (flow time 0) and out of the loss; d uniform in [0, max_delay]
            d = batch.get("rtc_delay")
            if d is None:
                d = torch.randint(0, self.rtc_max_delay + 1, (a.shape[0],), device=a.device)
            m = (torch.arange(a.shape[1], device=a.device)[None] < d.to(a.device)[:, None]).to(a.dtype)
            x_t = m[..., None] * a + (1.0 - m[..., None]) * x_t
            t_in = (1.0 - m) * t_in[:, None]
            weights = weights * (1.0 - m[..., None])
        v = self._velocity(self.export_prefix(batch), x_t, t_in)
        loss = masked_loss(v, noise - a, weights, "mse")
        return {"loss": loss, "mse": loss.detach()}


def parse_rtc(rtc: bool | Mapping[str, Any] | None, horizon: int) -> tuple[int | None, float | None]:
    """``rtc`` config -> ``(max_delay or None, max guidance weight or None)``.

    ``None``/``False``: no RTC; ``True``: conditioning with ``max_delay = horizon // 2``;
    ``{max_delay: k}`` with ``0 < k < horizon``; ``{guidance: β}`` (β > 0, or ``true`` for
    :data:`~vla_ros.control.rtc_guidance.DEFAULT_MAX_GUIDANCE`). Raises ``ValueError`` naming
    the bad value (both keys, unknown keys, out-of-range numbers).
    """
    if rtc is None or rtc is False:
        return None, None
    if rtc is True:
        return max(1, horizon // 2), None
    if not isinstance(rtc, Mapping):
        raise ValueError(
            f"flow_matching rtc={rtc!r}: use true, {{max_delay: k}} (training-time conditioning) "
            "or {guidance: beta} (inference-time guidance)"
        )
    unknown = sorted(set(rtc) - {"max_delay", "guidance"})
    if unknown or ("max_delay" in rtc) == ("guidance" in rtc):
        raise ValueError(
            f"flow_matching rtc={dict(rtc)!r}: give exactly one of max_delay (training-time action "
            "conditioning) or guidance (inference-time guidance, the max guidance weight)"
        )
    if "max_delay" in rtc:
        k = int(rtc["max_delay"])
        if not 0 < k < horizon:
            raise ValueError(f"flow_matching rtc.max_delay={k} must be in [1, horizon - 1 = {horizon - 1}]")
        return k, None
    g = rtc["guidance"]
    beta = DEFAULT_MAX_GUIDANCE if g is True else float(g)
    if not beta > 0:
        raise ValueError(f"flow_matching rtc.guidance={g!r} (max guidance weight) must be > 0")
    return None, beta
