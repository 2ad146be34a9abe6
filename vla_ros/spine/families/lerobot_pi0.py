"""LeRobot's pi0 and pi0.5, weight-compatible, decomposed onto the spine's slots (inference only).

Follows ``lerobot/policies/pi0/`` and ``pi05/`` of LeRobot 0.6.1 (openpi's ``PI0Pytorch``)::

    vision_backbone  SiglipVisionTower   [B*N, 3, 224, 224] in [-1, 1] -> [B*N, 256, 1152] (fp32)
    projector        PaliGemmaProjector  Linear -> [B*N, 256, 2048] (not scaled)
    llm_backbone     GemmaPrefix         Gemma 2B over the prefix [images, language] -> KV cache
    vla_head         Pi0Expert / Pi05Expert   Gemma 300M action expert: velocity of the flow

Preprocessing as LeRobot's preprocessor and ``_preprocess_images``: each camera normalized with
its VISUAL mode and statistics (``image_norm``; IDENTITY by default), then, when its size is not
the model's, resized keeping its aspect ratio
to fit ``image_resolution`` (bilinear, align_corners False), clamped to [0, 1], zero-padded
**centred** (openpi's ``resize_with_pad_torch``; SmolVLA pads left/top), scaled to [-1, 1].
LeRobot's empty-camera slots (-1 images, mask 0) are masked out of every attention and take no
position, so vla_ros does not compute them. The prefix is bidirectional; positions are the
running count of valid tokens minus one; language embeddings are scaled by ``sqrt(width)``.

pi0: the state (normalized, zero-padded to ``max_state_dim``) is the expert's first token; the
split layout hands it to the step graph as ``prefix_state``. pi0.5: the state is in the prompt
(:mod:`~vla_ros.spine.components.pi_text`), so :meth:`LeRobotPi05.tokenize` needs the normalized
state; time conditions the expert through AdaRMS. Both: ``num_steps`` Euler steps from ``t = 1``
to ``0`` (``x <- x + dt v``, ``dt = -1 / num_steps``) from noise ``[B, chunk, max_action_dim]``,
truncated to the action dimension.

Inputs: ``images [B, 1, N, 3, H, W]`` in [0, 1], ``state [B, 1, D]`` normalized (pi0: MEAN_STD,
pi0.5: QUANTILES by default), ``tokens [B, tokenizer_max_length]`` (``-1`` = padding),
``noise [B, chunk, max_action_dim]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vla_ros.spine.base_vla import BaseVLA
from vla_ros.spine.components import gemma, paligemma, pi_expert  # noqa: F401  (registers the slots)
from vla_ros.spine.components.pi_text import PromptTokenizer, pi05_prompt, pi05_tokens, state_bins
from vla_ros.spine.components.smolvla_text import SmolVLATokenizer, TokenizerNotFoundError
from vla_ros.spine.families.lerobot_flow import LeRobotFlowVLA
from vla_ros.spine.registry import VLAS


def bilinear_matrix(n_in: int, n_out: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``[n_out, n_in]`` weights of PyTorch's 1-D bilinear resize (``align_corners=False``, no
    antialias): source ``(o + 0.5) n_in / n_out - 0.5`` clamped at 0, linear between its two
    neighbours (the upper one clamped to ``n_in - 1``). ``A @ x`` equals ``F.interpolate`` up to
    float rounding and exports to ONNX as a MatMul with a constant (the legacy exporter's Resize
    for a size-given bilinear interpolate does not reproduce PyTorch's)."""
    # float32 as PyTorch's CPU kernel (area_pixel_compute_source_index), so the weights round alike
    scale = torch.tensor(n_in / n_out, dtype=torch.float32)
    src = ((torch.arange(n_out, dtype=torch.float32) + 0.5) * scale - 0.5).clamp(min=0.0)
    i0 = src.floor().to(torch.long).clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    w1 = src - i0.to(torch.float32)
    m = torch.zeros(n_out, n_in, dtype=torch.float32)
    rows = torch.arange(n_out)
    m.index_put_((rows, i0), 1.0 - w1, accumulate=True)
    m.index_put_((rows, i1), w1, accumulate=True)
    return m.to(dtype)


def resize_with_pad_centered(images: Tensor, height: int, width: int) -> Tensor:
    """openpi's ``resize_with_pad_torch`` for float images: ``[B, C, h, w]`` in [0, 1] ->
    ``[B, C, height, width]``: scaled by ``1 / max(w / width, h / height)`` (sizes truncated to
    int), bilinear (align_corners False, no antialias; :func:`bilinear_matrix`), clamped to
    [0, 1], zero-padded with the odd pixel at the bottom / right."""
    h, w = int(images.shape[-2]), int(images.shape[-1])  # static per card: constants in a graph
    ratio = max(w / width, h / height)
    rh, rw = int(h / ratio), int(w / ratio)
    out = images
    if (rh, rw) != (h, w):  # the same size is the identity in F.interpolate too
        a_h = bilinear_matrix(h, rh, images.dtype).to(images.device)
        a_w = bilinear_matrix(w, rw, images.dtype).to(images.device)
        out = torch.matmul(torch.matmul(a_h, images), a_w.transpose(0, 1))
    out = out.clamp(0.0, 1.0)
    top, left = (height - rh) // 2, (width - rw) // 2
    return F.pad(out, (left, width - rw - left, top, height - rh - top), value=0.0)


@VLAS.register(name="lerobot_pi0")
class LeRobotPi0(LeRobotFlowVLA):
    """LeRobot pi0 on the spine; see the module docstring."""

    FAMILY = "lerobot_pi0"
    HEAD_TYPE = "Pi0Expert"
    HEAD_TAKES_STATE = True

    _tokenizer: SmolVLATokenizer | PromptTokenizer | None

    def check_expert(self, llm: Any, head: Any) -> None:
        if (head.depth, head.kv_heads, head.head_dim) != (llm.depth, llm.kv_heads, llm.head_dim):
            raise ValueError(
                f"{type(self).__name__}: the action expert (depth {head.depth}, kv_heads {head.kv_heads}, "
                f"head_dim {head.head_dim}) must match the Gemma it reads "
                f"({llm.depth}, {llm.kv_heads}, {llm.head_dim})"
            )

    # ------------------------------------------------------------------ text
    def _tokenizer_path(self) -> str:
        """The tokenizer file; ``TokenizerNotFoundError`` naming it when it does not exist."""
        if not self.tokenizer_file or not Path(self.tokenizer_file).is_file():
            raise TokenizerNotFoundError(
                f"{type(self).__name__} tokenizer file {self.tokenizer_file!r} does not exist; pass "
                "PaliGemma's tokenizer.json (google/paligemma-3b-pt-224; vla-ros export --tokenizer PATH)"
            )
        return str(self.tokenizer_file)

    def from_checkpoint(self) -> bool:
        """True for a model built from a checkpoint (a ``pi0:`` / ``pi05:`` / ``smolvla:``
        tokenizer spec or a file); a model built from a spine config (random weights) tokenizes
        with its IO spec's tokenizer like every spine family."""
        return bool(self.tokenizer_file) or self.io.tokenizer.startswith(("pi0:", "pi05:", "smolvla:"))

    def tokenize(self, instructions: str | list[str]) -> Tensor:
        """Tasks -> ``int64 [B, tokenizer_max_length]``: newline-terminated, truncated, ``-1``
        padded (LeRobot's pi0 preprocessor); ``TokenizerNotFoundError`` when a model built from a
        checkpoint has no tokenizer file."""
        if not self.from_checkpoint():
            return super().tokenize(instructions)
        if not isinstance(self._tokenizer, SmolVLATokenizer):
            self._tokenizer = SmolVLATokenizer(self._tokenizer_path(), self.io.text_max_len)
        return self._tokenizer(instructions)

    # ------------------------------------------------------------------ prefix
    def preprocess_images(self, images: Tensor) -> Tensor:
        """``[B, N, 3, H, W]`` in [0, 1] -> ``[B * N, 3, S, S]``: each camera normalized with its
        VISUAL statistics when the checkpoint has them (LeRobot's preprocessor), resized, clamped
        to [0, 1] and padded unless already ``S x S`` (LeRobot 0.6.1 ``_preprocess_images``
        resizes only when the size differs: a normalized image at the model size is not
        clamped), then scaled ``x * 2 - 1`` ([-1, 1] for [0, 1] images)."""
        x = self.normalize_images(images).flatten(0, 1)
        if (int(x.shape[-2]), int(x.shape[-1])) != tuple(self.resize):
            x = resize_with_pad_centered(x, *self.resize)
        return x * 2.0 - 1.0

    def embed_prefix(self, obs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Prefix embeddings ``[B, P, dim]`` (images, then language) and valid mask ``[B, P]``."""
        images = obs["images"][:, -1]
        b, n = images.shape[:2]
        llm = self.llm_backbone
        img = self.projector(self.vision_backbone(self.preprocess_images(images)))
        img = img.reshape(b, n * img.shape[1], img.shape[2]).to(llm.embed_tokens.weight.dtype)
        tokens = obs["tokens"]
        embeds = torch.cat([img, llm.embed(tokens)], dim=1)
        ones = torch.ones(b, img.shape[1], dtype=torch.bool, device=img.device)
        return embeds, torch.cat([ones, tokens >= 0], dim=1)

    def padded_state(self, obs: Mapping[str, Tensor]) -> Tensor:
        """The newest normalized state zero-padded to ``[B, max_state_dim]``."""
        return F.pad(obs["state"][:, -1], (0, self.max_state_dim - self.io.state_dim))

    def export_prefix(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        embeds, mask = self.embed_prefix(obs)
        att = mask[:, None, :] & mask[:, :, None]
        positions = torch.cumsum(mask.to(torch.long), dim=1) - 1
        k, v = self.llm_backbone(embeds, positions, att)
        return {
            "prefix_k": k,
            "prefix_v": v,
            "prefix_mask": mask.to(k.dtype),
            "prefix_state": self.padded_state(obs),
        }

    # ------------------------------------------------------------------ steps
    def velocity(self, prefix: Mapping[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
        """The expert's velocity ``[B, chunk, max_action_dim]`` at ``x`` and time ``t [B]``."""
        k, v, m = prefix["prefix_k"], prefix["prefix_v"], prefix["prefix_mask"] > 0.5
        return self.vla_head(k, v, m, prefix["prefix_state"], x, t)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Training is LeRobot's job; vla_ros runs pi0 / pi0.5 for inference only."""
        raise NotImplementedError(f"{self.FAMILY} is inference-only: fine-tune it in LeRobot")


@VLAS.register(name="lerobot_pi05")
class LeRobotPi05(LeRobotPi0):
    """LeRobot pi0.5 on the spine: the state in the prompt, AdaRMS time conditioning."""

    FAMILY = "lerobot_pi05"
    HEAD_TYPE = "Pi05Expert"

    def tokenize(self, instructions: str | Sequence[str], state: Tensor | None = None) -> Tensor:
        """Tasks + normalized state ``[B, state_dim]`` (or ``[B, 1, state_dim]``) -> the ids of
        pi0.5's prompts ``[B, tokenizer_max_length]``; ``ValueError`` without the state (the
        prompt carries it: tokenize once per observation)."""
        if state is None:
            raise ValueError(
                "pi0.5's prompt carries the discretized state: call tokenize(tasks, state) with the "
                f"normalized state [B, {self.io.state_dim}] of the same observation"
            )
        state = state[:, -1] if state.ndim == 3 else state
        if not self.from_checkpoint():
            tasks = [instructions] if isinstance(instructions, str) else list(instructions)
            bins = state_bins(state).tolist()
            return BaseVLA.tokenize(self, [pi05_prompt(t, b) for t, b in zip(tasks, bins, strict=True)])
        if not isinstance(self._tokenizer, PromptTokenizer):
            self._tokenizer = PromptTokenizer(self._tokenizer_path(), self.io.text_max_len)
        return pi05_tokens(self._tokenizer, instructions, state)

    def example_inputs(self, batch_size: int = 1, seed: int = 0) -> dict[str, Tensor]:
        """Valid inputs whose tokens carry the example state, as pi0.5's preprocessor makes them."""
        g = torch.Generator().manual_seed(seed)
        shapes = self.io.input_shapes(batch_size)
        images = torch.rand(shapes["images"], generator=g)
        state = torch.randn(shapes["state"], generator=g).clamp(-1.0, 1.0)
        texts = ["pick up the red cube", "open the top drawer", "stack the blocks"]
        tokens = self.tokenize([texts[i % len(texts)] for i in range(batch_size)], state)
        g2 = torch.Generator().manual_seed(seed + 1)
        noise = torch.randn(batch_size, self.io.horizon, self.max_action_dim, generator=g2)
        out = {"images": images, "state": state, "tokens": tokens, "noise": noise}
        return {k: out[k] for k in self.io.input_names}

    def export_prefix(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = super().export_prefix(obs)
        out.pop("prefix_state")  # pi0.5 reads the state from the prompt only
        return out

    def velocity(self, prefix: Mapping[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
        return self.vla_head(prefix["prefix_k"], prefix["prefix_v"], prefix["prefix_mask"] > 0.5, x, t)
