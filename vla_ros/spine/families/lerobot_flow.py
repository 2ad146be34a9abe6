"""The flow-matching sampler LeRobot's pi0, pi0.5 and SmolVLA share (inference only).

All three cache a prefix once, then take ``num_steps`` Euler steps from ``t = 1`` to ``0``
(``x <- x + dt v(x, t)``, ``dt = -1 / num_steps``) from noise ``[B, chunk, max_action_dim]``
(LeRobot's shape: the padded action dimensions carry noise too) and truncate to the action
dimension at the end (LeRobot 0.6.1 ``PI0Pytorch.sample_actions`` / ``VLAFlowMatching``).
A family subclasses :class:`LeRobotFlowVLA` and supplies ``export_prefix`` and ``velocity``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from vla_ros.control.rtc_guidance import DEFAULT_MAX_GUIDANCE
from vla_ros.spine.base_vla import BaseVLA, step_tensor
from vla_ros.spine.checkpoints.normalize import FeatureNormalizer
from vla_ros.spine.families.common import camera_normalizers
from vla_ros.spine.families.rtc_step import check_guidance, guided_euler_step


def image_norm_weights(
    norms: Sequence[FeatureNormalizer],
    stats: Mapping[str, Mapping[str, Tensor]],
    features: Sequence[str],
    where: str = "checkpoint",
) -> dict[str, Tensor]:
    """Each camera's image statistics as the weights ``image_norm.<i>.<stat>`` (shape
    ``[C, 1, 1]``; none for IDENTITY): ``features[i]`` is camera ``i``'s LeRobot feature and
    ``stats`` the checkpoint's statistics (a flat ``[C]`` is reshaped as LeRobot does).
    ``ValueError`` naming ``where``, the feature and the statistic when one is missing."""
    out: dict[str, Tensor] = {}
    for i, (norm, feat) in enumerate(zip(norms, features, strict=True)):
        for stat in norm.stat_names:
            if stat not in stats.get(feat, {}):
                raise ValueError(
                    f"{where}: camera feature {feat!r} is normalized {norm.mode} but has no {stat!r} "
                    f"statistic (it has {sorted(stats.get(feat, {}))}); copy the checkpoint's "
                    "policy_preprocessor files with it"
                )
            out[f"image_norm.{i}.{stat}"] = stats[feat][stat].reshape(norm.shape)
    return out


class LeRobotFlowVLA(BaseVLA):
    """Split-layout flow-matching sampling over a prefix cache; subclasses define
    ``export_prefix(obs) -> dict`` and ``velocity(prefix, x, t) -> [B, chunk, max_action_dim]``."""

    num_steps: int
    max_state_dim: int
    max_action_dim: int
    times: Tensor
    resize: tuple[int, int]
    tokenizer_file: str | None
    # every LeRobot flow family: a vision tower, a projector, a language model and an action
    # expert; noise and text are inputs; exported as a prefix graph and a denoising-step graph
    REQUIRED_SLOTS = ("vision_backbone", "projector", "llm_backbone", "vla_head")
    OPTIONAL_SLOTS = ()
    NEEDS_NOISE = True
    USES_TEXT = True
    EXPORT_LAYOUT = "split"
    #: whether the action expert reads the padded state (pi0's state token): ``max_state_dim``
    HEAD_TAKES_STATE = False
    lerobot: dict[str, Any]

    #: the family's name in configuration errors (None: the class name)
    FLOW_NAME: str | None = None
    #: (height, width) pixels the cameras are resized to when the config gives no ``resize``
    DEFAULT_RESIZE: tuple[int, int] = (224, 224)

    def __init__(
        self,
        io: Mapping[str, Any],
        *,
        resize: tuple[int, int] | None = None,
        num_steps: int = 10,
        max_state_dim: int = 32,
        max_action_dim: int = 32,
        tokenizer_file: str | None = None,
        image_normalization: Sequence[Mapping[str, Any]] | None = None,
        lerobot: Mapping[str, Any] | None = None,
        freeze: Any = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        """The family on ``io``: :meth:`setup_flow` (``resize`` None: ``DEFAULT_RESIZE``),
        :meth:`setup_image_norm`, the slots, :meth:`check_expert`, :meth:`setup_family` and the
        Euler times. ``ValueError`` when a check fails."""
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        self.setup_flow(
            self.FLOW_NAME or type(self).__name__,
            resize=self.DEFAULT_RESIZE if resize is None else resize,
            num_steps=num_steps,
            max_state_dim=max_state_dim,
            max_action_dim=max_action_dim,
            tokenizer_file=tokenizer_file,
            lerobot=lerobot,
        )
        self._tokenizer = None
        self.setup_image_norm(image_normalization)
        self.build_slots()
        self.check_expert(self.llm_backbone, self.vla_head)
        self.setup_family()
        self.register_times()

    def check_expert(self, llm: Any, head: Any) -> None:
        """``ValueError`` unless the action expert ``head`` has the depth, KV heads and head_dim
        of the language model ``llm`` whose KV cache it reads (each family words it)."""
        raise NotImplementedError(f"{type(self).__name__} defines no check_expert()")

    def setup_family(self) -> None:
        """The modules a family adds after its slots (none here)."""

    def check_flow_config(self, name: str, num_steps: int, max_state_dim: int, max_action_dim: int) -> None:
        """``ValueError`` naming ``name`` unless ``obs_history`` is 1, ``num_steps >= 1`` and the
        state / action dimensions fit ``max_state_dim`` / ``max_action_dim``."""
        if self.io.obs_history != 1:
            raise ValueError(
                f"{name} uses the newest observation only (n_obs_steps 1); set io.obs_history: 1"
            )
        if num_steps < 1:
            raise ValueError(f"{name} num_steps must be >= 1, got {num_steps}")
        for what, have, cap in (
            ("state", self.io.state_dim, max_state_dim),
            ("action", self.io.action_dim, max_action_dim),
        ):
            if have > cap:
                raise ValueError(
                    f"{what} dim {have} > max_{what}_dim {cap}; {name} pads to, never beyond, it"
                )

    def setup_flow(
        self,
        name: str,
        *,
        resize: tuple[int, int],
        num_steps: int,
        max_state_dim: int,
        max_action_dim: int,
        tokenizer_file: str | None,
        lerobot: Mapping[str, Any] | None,
    ) -> None:
        """:meth:`check_flow_config`, then keep the family's settings: ``resize`` (height, width)
        pixels, ``num_steps``, the padded dimensions, the tokenizer file and LeRobot's config."""
        self.check_flow_config(name, num_steps, max_state_dim, max_action_dim)
        self.resize = (int(resize[0]), int(resize[1]))  # (height, width)
        self.num_steps, self.max_state_dim, self.max_action_dim = (
            int(num_steps),
            max_state_dim,
            max_action_dim,
        )
        self.tokenizer_file = tokenizer_file
        self.lerobot = dict(lerobot or {})

    def setup_image_norm(self, image_normalization: Sequence[Mapping[str, Any]] | None) -> None:
        """One :class:`FeatureNormalizer` per camera as ``image_norm`` (``image_norm.<i>.<stat>``
        buffers ``[C, 1, 1]``, filled by the weight load; see :func:`image_norm_weights`) from
        ``[{"mode", "eps"}]`` in camera order (None: IDENTITY for every camera). LeRobot's
        preprocessor normalizes each camera with its VISUAL mode before the model resizes it
        (LeRobot 0.6.1 ``NormalizerProcessorStep``). ``ValueError`` when the count differs from
        the cameras' or a mode is unknown."""
        self.image_norm = camera_normalizers(
            image_normalization, self.io.camera_names, self.io.image_channels
        )

    def normalize_images(self, images: Tensor) -> Tensor:
        """``[B, N, C, H, W]`` in [0, 1] -> each camera ``i`` normalized by ``image_norm[i]``
        (the same tensor when every camera is IDENTITY)."""
        norms = getattr(self, "image_norm", None)
        if norms is None or all(n.mode == "IDENTITY" for n in norms):
            return images
        return torch.stack([n.normalize(images[:, i]) for i, n in enumerate(norms)], 1)

    def slot_defaults(self, slot: str) -> dict[str, Any]:
        if slot == "projector":
            return {"in_dim": self.vision_backbone.out_dim, "out_dim": self.llm_backbone.dim}
        if slot == "vla_head":
            llm = self.llm_backbone
            out = {
                "num_layers": llm.depth,
                "heads": llm.heads,
                "kv_heads": llm.kv_heads,
                "head_dim": llm.head_dim,
                "max_action_dim": self.max_action_dim,
            }
            if self.HEAD_TAKES_STATE:
                out["max_state_dim"] = self.max_state_dim
            out["chunk_size"] = self.io.horizon
            return out
        return {}

    def register_times(self) -> None:
        """The Euler times ``t_i = 1 + i dt``, ``dt = -1 / num_steps``, as the non-persistent
        buffer ``times [num_steps]`` (float32)."""
        dt = -1.0 / self.num_steps
        times = torch.tensor([1.0 + i * dt for i in range(self.num_steps)], dtype=torch.float32)
        self.register_buffer("times", times, persistent=False)

    @property
    def num_export_steps(self) -> int:
        return self.num_steps

    def io_extra(self) -> dict[str, Any]:
        extra = {"num_steps": self.num_steps, "noise_dim": self.max_action_dim, "lerobot": dict(self.lerobot)}
        if self.rtc_guidance is not None:  # inference-time real-time chunking (enable_rtc_guidance)
            extra["rtc"] = {"mode": "guided", "max_guidance": float(self.rtc_guidance)}
        return extra

    def velocity(self, prefix: Mapping[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
        """The expert's velocity ``[B, chunk, max_action_dim]`` at ``x`` and time ``t [B]``.

        Each LeRobot flow family (SmolVLA, pi0, pi0.5) defines it; this base has no expert.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no velocity(): a LeRobot flow family must")

    def noise_name(self) -> str:
        """The model's name in noise-shape errors."""
        return type(self).__name__

    def export_step(self, prefix: Mapping[str, Tensor], x: Tensor, step_index: int | Tensor) -> Tensor:
        """Euler step ``i``: ``x + dt * v(x, t_i)``, ``t_i = 1 + i dt``, ``dt = -1 / num_steps``."""
        # index_select, not times[i]: indexing with a 0-d tensor syncs (.item()) on CUDA / meta
        t = self.times.index_select(0, step_tensor(step_index, x).reshape(1)).expand(x.shape[0])
        return x + (-1.0 / self.num_steps) * self.velocity(prefix, x, t)

    def get_noise(self, obs: Mapping[str, Tensor], noise: Tensor | None) -> Tensor:
        """Initial sample ``[B, chunk, max_action_dim]`` (LeRobot's shape): ``noise``,
        ``obs["noise"]`` or fresh Gaussian; another shape raises ``ValueError`` naming both."""
        if noise is None:
            noise = obs.get("noise")
        state = obs["state"]
        shape = (state.shape[0], self.io.horizon, self.max_action_dim)
        if noise is None:
            return torch.randn(shape, dtype=state.dtype, device=state.device)
        if tuple(noise.shape) != shape:
            raise ValueError(
                f"{self.noise_name()} noise has shape {tuple(noise.shape)}; expected {shape} "
                f"(chunk, max_action_dim={self.max_action_dim}: the padded dimensions are sampled too)"
            )
        return noise

    def example_inputs(self, batch_size: int = 1, seed: int = 0) -> dict[str, Tensor]:
        """Valid inputs for export/parity; ``noise`` has LeRobot's ``[B, chunk, max_action_dim]``."""
        out = super().example_inputs(batch_size, seed)
        g = torch.Generator().manual_seed(seed + 1)
        out["noise"] = torch.randn(batch_size, self.io.horizon, self.max_action_dim, generator=g)
        return out

    def run_split(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """The split layout's runtime loop; actions ``[B, chunk, action_dim]`` (truncated)."""
        prefix = self.export_prefix(obs)
        x = self.get_noise(obs, noise)
        for i in range(self.num_steps):
            x = self.export_step(prefix, x, i)
        return x[..., : self.io.action_dim]

    def predict_action(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """Normalized actions ``[B, chunk, action_dim]``; deterministic given ``noise``."""
        self.check_obs(obs)
        return self.run_split(obs, noise)

    # ------------------------------------------------------------------ real-time chunking
    #: inference-time RTC: the maximum guidance weight β, None while it is off
    #: (:meth:`enable_rtc_guidance`); these families are not trained with action conditioning
    rtc_guidance: float | None = None

    def enable_rtc_guidance(self, max_guidance: float = DEFAULT_MAX_GUIDANCE) -> None:
        """Turn on inference-time real-time chunking (guided inpainting, arXiv 2506.07339) with
        maximum guidance weight ``max_guidance`` (β > 0, else ``ValueError``): the card then
        says ``io.extra["rtc"] = {"mode": "guided", ...}`` and the export writes the guided
        ``step_rtc`` graph (:mod:`vla_ros.export.rtc_graphs`)."""
        self.rtc_guidance = check_guidance(max_guidance, f"{type(self).__name__} RTC")

    @property
    def rtc_mode(self) -> str | None:
        """``"guided"`` once :meth:`enable_rtc_guidance` was called, else None."""
        return "guided" if self.rtc_guidance is not None else None

    def export_step_rtc(
        self,
        prefix: Mapping[str, Tensor],
        x: Tensor,
        step_index: int | Tensor,
        rtc_actions: Tensor,
        rtc_mask: Tensor,
        max_guidance: Tensor | float | None = None,
    ) -> Tensor:
        """Guided Euler step ``i`` (:func:`~vla_ros.spine.families.rtc_step.guided_euler_step`)
        towards ``rtc_actions [B, chunk, max_action_dim]`` (normalized, zero-padded) with the
        per-step weights ``rtc_mask [B, chunk]``; only the first ``action_dim`` dimensions are
        guided (the padded ones are not actions). Raises ``ValueError`` while RTC is off."""
        if self.rtc_guidance is None and max_guidance is None:
            raise ValueError(
                f"{type(self).__name__}: inference-time RTC is off; call enable_rtc_guidance(beta)"
            )
        t = self.times.index_select(0, step_tensor(step_index, x).reshape(1)).reshape(())
        dims = (torch.arange(x.shape[-1], device=x.device) < self.io.action_dim).to(x.dtype)
        weights = rtc_mask.to(x.dtype)[..., None] * dims
        beta = self.rtc_guidance if max_guidance is None else max_guidance
        return guided_euler_step(self.velocity, prefix, x, t, rtc_actions, weights, beta, self.num_steps)

    def predict_action_rtc(
        self,
        obs: Mapping[str, Tensor],
        rtc_actions: Tensor,
        rtc_mask: Tensor,
        noise: Tensor | None = None,
        max_guidance: float | None = None,
    ) -> Tensor:
        """``predict_action`` guided towards committed actions (:meth:`export_step_rtc` every
        step); ``[B, chunk, action_dim]`` (truncated)."""
        self.check_obs(obs)
        prefix = self.export_prefix(obs)
        x = self.get_noise(obs, noise)
        for i in range(self.num_steps):
            x = self.export_step_rtc(prefix, x, i, rtc_actions, rtc_mask, max_guidance)
        return x[..., : self.io.action_dim]
