"""Action-token VLA (RT-2 / OpenVLA style).

Each action dimension is discretized into ``n_bins`` (256) uniform bins between the action
bounds (``io.extra.action_low`` / ``action_high``, scalars or per-dimension lists); bin ``k`` of
the LLM's vocabulary is token ``vocab_size - n_bins + k`` (the last ``n_bins`` rows, as OpenVLA
overwrites its least used tokens). The LLM reads ``[image tokens, state token, instruction]``
and writes ``horizon * action_dim`` action tokens (time-major), trained with cross-entropy under
teacher forcing and decoded greedily (argmax over the action bins) with the KV cache. A decoded
bin becomes its centre value.

Export: ``predict_action`` (the default, monolithic) is the KV-cached loop, a fixed
``horizon * action_dim`` steps. The split layout is available too: ``export_prefix(obs)`` gives
the prefix KV cache ``prefix_k``/``prefix_v``, ``prefix_mask`` and ``prefix_last`` (the last
prefix hidden state); ``export_step(prefix, x, i)`` re-encodes the actions decoded so far (``x``,
``[B, H, D]``, starting from zeros) against the cached prefix and writes token ``i``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.base_vla import BaseVLA, step_tensor
from vla_ros.spine.components.text import get_tokenizer
from vla_ros.spine.families.common import encode_cameras, require_actions
from vla_ros.spine.registry import VLAS


def _bound(value: Any, dim: int, name: str) -> Tensor:
    if value is None:
        raise ValueError(f"tokens: set io.extra.{name} (a number or a list of {dim}) in the config")
    t = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
    if t.numel() == 1:
        t = t.expand(dim).clone()
    if t.numel() != dim:
        raise ValueError(f"tokens: io.extra.{name} has {t.numel()} values; expected 1 or {dim}")
    return t


@VLAS.register(name="tokens")
class TokensVLA(BaseVLA):
    """RT-2 / OpenVLA: vision -> projector -> decoder LM with an action-bin vocabulary."""

    FAMILY = "tokens"
    REQUIRED_SLOTS = ("vision_backbone", "projector", "llm_backbone")
    OPTIONAL_SLOTS = ()
    USES_TEXT = True
    EXPORT_LAYOUT = "monolithic"

    def __init__(
        self,
        io: Mapping[str, Any],
        *,
        n_bins: int = 256,
        use_state: bool = True,
        freeze: Any = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        if n_bins < 2:
            raise ValueError(f"tokens: n_bins must be >= 2, got {n_bins}")
        self.n_bins = int(n_bins)
        self.text_vocab = get_tokenizer(self.io.tokenizer).vocab_size
        d = self.io.action_dim
        low = _bound(self.io.extra.get("action_low"), d, "action_low")
        high = _bound(self.io.extra.get("action_high"), d, "action_high")
        if not bool((high > low).all()):
            raise ValueError(f"tokens: action_high {high.tolist()} must exceed action_low {low.tolist()}")
        self.build_slots()
        llm = self.llm_backbone
        if llm.lm_head is None or llm.vocab_size < self.text_vocab + self.n_bins:
            raise ValueError(
                f"tokens: llm_backbone needs lm_head: true and vocab_size >= {self.text_vocab} "
                f"(tokenizer) + {self.n_bins} (bins); got vocab_size={llm.vocab_size}"
            )
        self.action_offset = llm.vocab_size - self.n_bins
        self.state_proj = nn.Linear(self.io.state_dim, llm.dim) if use_state else None
        self.register_buffer("action_low", low, persistent=False)
        self.register_buffer("action_high", high, persistent=False)
        if self.io.obs_history != 1:
            raise ValueError("tokens uses the newest observation only; set io.obs_history: 1")

    def slot_defaults(self, slot: str) -> dict[str, Any]:
        io = self.io
        if slot == "vision_backbone":
            return {"image_size": io.image_size, "in_channels": io.image_channels}
        if slot == "llm_backbone":
            return {"vocab_size": self.text_vocab + self.n_bins, "lm_head": True}
        if slot == "projector":
            return {"in_dim": self.vision_backbone.out_dim, "out_dim": self.llm_backbone.dim}
        return {}

    @property
    def num_tokens(self) -> int:
        """Action tokens per chunk: ``horizon * action_dim``."""
        return self.io.horizon * self.io.action_dim

    @property
    def num_export_steps(self) -> int:
        return self.num_tokens

    def io_extra(self) -> dict[str, Any]:
        return {"n_bins": self.n_bins, "action_token_offset": self.action_offset}

    # ------------------------------------------------------------------ binning
    def actions_to_bins(self, actions: Tensor) -> Tensor:
        """``[B, H, D]`` -> bin ids ``int64 [B, H * D]`` (values outside the bounds clamp)."""
        u = (actions - self.action_low) / (self.action_high - self.action_low) * self.n_bins
        bins = torch.floor(u).clamp(0, self.n_bins - 1).to(torch.long)
        return bins.reshape(actions.shape[0], -1)

    def bins_to_actions(self, bins: Tensor) -> Tensor:
        """Bin ids ``[B, H * D]`` -> bin centres ``[B, H, D]``."""
        b = bins.reshape(bins.shape[0], self.io.horizon, self.io.action_dim).to(self.action_low.dtype)
        return self.action_low + (b + 0.5) * (self.action_high - self.action_low) / self.n_bins

    def _argmax_bin(self, hidden: Tensor) -> Tensor:
        """Greedy action bin from hidden states ``[..., dim]`` (argmax over the bin rows)."""
        rows = self.llm_backbone.lm_head.weight[self.action_offset : self.action_offset + self.n_bins]
        return F.linear(hidden, rows).argmax(dim=-1)

    # ------------------------------------------------------------------ prefix
    def _prefix(self, obs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        img = self.projector(encode_cameras(self.vision_backbone, obs["images"][:, -1]))
        parts = [img]
        if self.state_proj is not None:
            parts.append(self.state_proj(obs["state"][:, -1])[:, None])
        tokens = obs["tokens"]
        parts.append(self.llm_backbone.embed(tokens))
        ones = img.new_ones(img.shape[0], sum(p.shape[1] for p in parts[:-1]))
        mask = torch.cat([ones, (tokens != 0).to(img.dtype)], dim=1)
        return torch.cat(parts, dim=1), mask

    def export_prefix(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        x, mask = self._prefix(obs)
        hidden, (k, v) = self.llm_backbone(x, key_mask=mask, causal=True)
        return {"prefix_k": k, "prefix_v": v, "prefix_mask": mask, "prefix_last": hidden[:, -1]}

    def export_step(self, prefix: Mapping[str, Tensor], x: Tensor, step_index: int | Tensor) -> Tensor:
        i = step_tensor(step_index, x)
        bins = self.actions_to_bins(x)
        b, n = bins.shape
        inp = self.llm_backbone.embed(bins[:, :-1] + self.action_offset)
        mask = torch.cat([prefix["prefix_mask"], x.new_ones(b, n - 1)], dim=1)
        h, _ = self.llm_backbone(
            inp, key_mask=mask, causal=True, past_kv=(prefix["prefix_k"], prefix["prefix_v"])
        )
        new = self._argmax_bin(torch.cat([prefix["prefix_last"][:, None], h], dim=1))
        pick = torch.arange(n, device=x.device) == i
        return self.bins_to_actions(torch.where(pick, new, bins))

    # ------------------------------------------------------------------ contract
    def predict_action(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        self.check_obs(obs)
        p = self.export_prefix(obs)
        cache = (p["prefix_k"], p["prefix_v"])
        mask = p["prefix_mask"]
        tok = self._argmax_bin(p["prefix_last"])
        out = [tok]
        one = mask.new_ones(mask.shape[0], 1)
        for _ in range(1, self.num_tokens):
            emb = self.llm_backbone.embed(tok + self.action_offset)[:, None]
            mask = torch.cat([mask, one], dim=1)
            h, cache = self.llm_backbone(emb, key_mask=mask, causal=True, past_kv=cache)
            tok = self._argmax_bin(h[:, -1])
            out.append(tok)
        return self.bins_to_actions(torch.stack(out, dim=1))

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        self.check_obs(batch)
        a = require_actions(batch, "tokens", self.io.horizon, self.io.action_dim)
        bins = self.actions_to_bins(a)
        x, mask = self._prefix(batch)
        p = x.shape[1]
        inp = torch.cat([x, self.llm_backbone.embed(bins[:, :-1] + self.action_offset)], dim=1)
        mask = torch.cat([mask, mask.new_ones(bins.shape[0], bins.shape[1] - 1)], 1)
        hidden, _ = self.llm_backbone(inp, key_mask=mask, causal=True)
        logits = self.llm_backbone.logits(hidden[:, p - 1 :])
        target = bins + self.action_offset
        ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # [B, H*D]
        pad = batch.get("action_is_pad")
        w = torch.ones_like(ce)
        if pad is not None:
            w = (~pad.bool()).to(ce.dtype).repeat_interleave(self.io.action_dim, dim=1)
        loss = (ce * w).sum() / w.sum().clamp_min(1.0)
        acc = ((logits.argmax(-1) == target).to(ce.dtype) * w).sum() / w.sum().clamp_min(1.0)
        return {"loss": loss, "token_accuracy": acc.detach()}
