"""LeRobot's Diffusion Policy on the spine, weight-compatible with its checkpoints.

Decomposition (LeRobot 0.6.1 ``DiffusionPolicy``; Chi et al. 2023, https://arxiv.org/abs/2303.04137):

- ``vision_backbone``: :class:`DiffusionRgbEncoder` (one shared by all cameras) or
  :class:`DiffusionRgbEncoderPerCamera` (``use_separate_rgb_encoder_per_camera``): ResNet trunk ->
  spatial softmax -> Linear -> ReLU, ``2 * num_kp`` features per camera. Checkpoint
  ``diffusion.rgb_encoder``.
- ``vla_head``: :class:`LeRobotConditionalUnet1d` (checkpoint ``diffusion.unet``).
- the family: per-camera image normalization (the checkpoint's image statistics; inputs stay
  ``[0, 1]`` as the spine's contract says), the global condition
  ``flatten_t([state_t, cam_0 feats_t, cam_1 feats_t, ...])`` over the ``n_obs_steps`` history,
  and the sampler (:mod:`vla_ros.spine.components.noise_schedulers`: DDIM or DDPM, diffusers'
  formulas, written here).

Shapes: ``io.horizon`` is the diffusion horizon (the sampled sequence, the noise and the split
layout's ``x``); LeRobot executes only ``action_window = [n_obs_steps - 1, n_obs_steps - 1 +
n_action_steps)`` of it (``io.extra["action_window"]``; :meth:`predict_action_chunk`).

Export: split layout. ``export_prefix(obs) -> {"global_cond": [B, cond_dim]}`` (the encoders,
once per observation) and ``export_step(prefix, x, i)`` (one U-Net call + one sampler step,
``i`` indexes the step tables): the U-Net graph stays one step big, the runtime runs the loop.
DDPM's per-step noise is drawn inside the step (``randn_like``) unless given to
:meth:`sample`, so only DDIM is deterministic given the initial noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vla_ros.spine.base_vla import BaseVLA, step_tensor
from vla_ros.spine.checkpoints.lerobot import (
    LeRobotCheckpoint,
    LeRobotCheckpointError,
    register_lerobot_builder,
)
from vla_ros.spine.checkpoints.normalize import card_affine
from vla_ros.spine.components.lerobot_vision import DiffusionRgbEncoder
from vla_ros.spine.components.noise_schedulers import (
    PREDICTION_TYPES,
    make_betas,
    predicted_x0_eps,
    sampler_tables,
)
from vla_ros.spine.components.unet1d import LeRobotConditionalUnet1d  # noqa: F401  (registers)
from vla_ros.spine.families.common import DiffusionNoise, action_weights, masked_loss, require_actions
from vla_ros.spine.registry import VISION_BACKBONES, VLAS
from vla_ros.spine.weights import WeightLoadError, load_weights

#: seconds between actions when the caller gives none (LeRobot's config has no rate; 10 Hz is
#: the rate of its Diffusion Policy datasets, PushT)
DEFAULT_DT = 0.1


@VISION_BACKBONES.register()
class DiffusionRgbEncoderPerCamera(nn.ModuleList):
    """One :class:`DiffusionRgbEncoder` per camera (keys ``<i>.backbone...``), same arguments.

    ``forward(x [N, B, 3, H, W]) -> [N, B, F]``: camera ``i`` through encoder ``i``.
    """

    def __init__(self, num_cameras: int = 1, **encoder_kwargs: Any) -> None:
        if num_cameras < 1:
            raise ValueError(f"DiffusionRgbEncoderPerCamera needs num_cameras >= 1, got {num_cameras}")
        super().__init__(DiffusionRgbEncoder(**encoder_kwargs) for _ in range(int(num_cameras)))
        self.out_dim = self[0].out_dim
        self.image_size = self[0].image_size

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.stack([enc(x[i]) for i, enc in enumerate(self)])


@VLAS.register(name="lerobot_diffusion")
class LeRobotDiffusion(DiffusionNoise, BaseVLA):
    """Diffusion Policy as LeRobot runs it (see the module docstring).

    Args:
        io: the IO spec; ``obs_history`` = ``n_obs_steps``, ``horizon`` = the diffusion horizon.
        n_action_steps: actions LeRobot executes per chunk (the window's length).
        noise_scheduler_type: ``"DDIM"`` or ``"DDPM"``.
        num_train_timesteps, beta_schedule, beta_start, beta_end: the noise schedule.
        num_inference_steps: sampler steps ``K`` (``None``: ``num_train_timesteps``).
        prediction_type: ``"epsilon"`` or ``"sample"``.
        clip_sample, clip_sample_range: clip the predicted clean sample each step.
        image_norm: per camera ``{"mean": [C], "std": [C]}``: images enter as ``(x - mean) / std``
            (LeRobot's VISUAL normalization; identity when None).
    """

    FAMILY = "lerobot_diffusion"
    REQUIRED_SLOTS = ("vision_backbone", "vla_head")
    OPTIONAL_SLOTS = ()
    NEEDS_NOISE = True
    USES_TEXT = False
    EXPORT_LAYOUT = "split"

    def __init__(
        self,
        io: Mapping[str, Any],
        *,
        n_action_steps: int | None = None,
        noise_scheduler_type: str = "DDIM",
        num_train_timesteps: int = 100,
        num_inference_steps: int | None = 10,
        beta_schedule: str = "squaredcos_cap_v2",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        prediction_type: str = "epsilon",
        clip_sample: bool = True,
        clip_sample_range: float = 1.0,
        image_norm: Sequence[Mapping[str, Sequence[float]]] | None = None,
        freeze: Any = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        io_ = self.io
        n_obs = io_.obs_history
        self.n_action_steps = int(n_action_steps if n_action_steps is not None else io_.horizon - n_obs + 1)
        if not 1 <= self.n_action_steps <= io_.horizon - n_obs + 1:
            raise ValueError(
                f"lerobot_diffusion: n_action_steps={self.n_action_steps} must be between 1 and "
                f"horizon - n_obs_steps + 1 = {io_.horizon - n_obs + 1}"
            )
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"lerobot_diffusion: prediction_type {prediction_type!r} is not supported; "
                f"use one of {PREDICTION_TYPES}"
            )
        self.prediction_type = prediction_type
        self.clip_range = float(clip_sample_range) if clip_sample else None
        self.sampler = noise_scheduler_type
        self.num_train_timesteps = int(num_train_timesteps)
        self.num_inference_steps = int(num_inference_steps or num_train_timesteps)
        tables = sampler_tables(
            noise_scheduler_type,
            self.num_train_timesteps,
            self.num_inference_steps,
            beta_schedule,
            beta_start,
            beta_end,
        )
        ab = torch.cumprod(1.0 - make_betas(self.num_train_timesteps, beta_schedule, beta_start, beta_end), 0)
        self.register_buffer("alphas_cumprod", ab, persistent=False)
        for name in ("timesteps", "sqrt_a", "sqrt_1ma", "coef_x0", "coef_x", "coef_eps", "sigma"):
            self.register_buffer(f"sched_{name}", getattr(tables, name), persistent=False)
        n_cam = len(io_.camera_names)
        # (x - image_sub) / image_div per camera and channel; set from the checkpoint's stats
        self.register_buffer("image_sub", torch.zeros(n_cam, io_.image_channels, 1, 1), persistent=False)
        self.register_buffer("image_div", torch.ones(n_cam, io_.image_channels, 1, 1), persistent=False)
        if image_norm is not None:
            if len(image_norm) != n_cam:
                raise ValueError(
                    f"lerobot_diffusion: image_norm has {len(image_norm)} entries for {n_cam} cameras"
                )
            self.set_image_normalization(
                torch.tensor([list(m["mean"]) for m in image_norm]).view(n_cam, -1, 1, 1),
                torch.tensor([list(m["std"]) for m in image_norm]).view(n_cam, -1, 1, 1),
            )
        self.build_slots()
        self.per_camera = isinstance(self.vision_backbone, nn.ModuleList)
        if self.per_camera and len(self.vision_backbone) != n_cam:
            raise ValueError(
                f"lerobot_diffusion: {len(self.vision_backbone)} per-camera encoders for {n_cam} cameras"
            )

    # ------------------------------------------------------------------ building
    def _global_cond_dim(self) -> int:
        per_step = self.io.state_dim + len(self.io.camera_names) * self.vision_backbone.out_dim
        return self.io.obs_history * per_step

    def slot_defaults(self, slot: str) -> dict[str, Any]:
        io = self.io
        if slot == "vision_backbone":
            return {
                "image_size": io.image_size,
                "in_channels": io.image_channels,
                "num_cameras": len(io.camera_names),
            }
        if slot == "vla_head":
            return {"action_dim": io.action_dim, "global_cond_dim": self._global_cond_dim()}
        return {}

    def set_image_normalization(self, sub: Tensor, div: Tensor) -> None:
        """Per-camera ``(x - sub) / div``; ``sub``/``div`` broadcast to ``[N, C, 1, 1]``.

        Raises ``ValueError`` for a zero divisor (the caller applies LeRobot's eps rule first).
        """
        shape = self.image_sub.shape
        sub = torch.as_tensor(sub, dtype=torch.float32).broadcast_to(shape).clone()
        div = torch.as_tensor(div, dtype=torch.float32).broadcast_to(shape).clone()
        if not torch.all(div != 0):
            raise ValueError("lerobot_diffusion: an image normalization divisor is 0")
        self.image_sub.copy_(sub)
        self.image_div.copy_(div)

    def name_mapping(self) -> dict[str, str]:
        """Model prefix -> LeRobot checkpoint prefix (for :func:`vla_ros.spine.weights.load_weights`)."""
        return {"vision_backbone": "diffusion.rgb_encoder", "vla_head": "diffusion.unet"}

    @property
    def action_window(self) -> tuple[int, int]:
        """``[start, stop)`` of the sampled horizon that LeRobot returns and executes."""
        start = self.io.obs_history - 1
        return start, start + self.n_action_steps

    @property
    def num_export_steps(self) -> int:
        return self.num_inference_steps

    def io_extra(self) -> dict[str, Any]:
        return {
            "action_window": list(self.action_window),
            "noise_scheduler_type": self.sampler,
            "num_inference_steps": self.num_inference_steps,
            "num_train_timesteps": self.num_train_timesteps,
        }

    # ------------------------------------------------------------------ split layout
    def export_prefix(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Observation -> ``{"global_cond": [B, n_obs_steps * (state_dim + N * F)]}``."""
        images, state = obs["images"], obs["state"]
        b, t, n = images.shape[:3]
        x = (images - self.image_sub) / self.image_div  # [B, T, N, C, H, W]
        if self.per_camera:
            cams = x.permute(2, 0, 1, 3, 4, 5).reshape(n, b * t, *x.shape[3:])
            feats = self.vision_backbone(cams).reshape(n, b, t, -1).permute(1, 2, 0, 3)
        else:
            feats = self.vision_backbone(x.reshape(b * t * n, *x.shape[3:])).reshape(b, t, n, -1)
        cond = torch.cat([state, feats.reshape(b, t, -1)], dim=-1)
        return {"global_cond": cond.flatten(start_dim=1)}

    def export_step(
        self,
        prefix: Mapping[str, Tensor],
        x: Tensor,
        step_index: int | Tensor,
        step_noise: Tensor | None = None,
    ) -> Tensor:
        """Sampler step ``step_index``: ``x [B, horizon, action_dim]`` -> the next ``x``.

        DDPM adds ``sigma_k * step_noise`` (fresh ``randn_like`` when None; sigma is 0 at the
        last step); DDIM ignores ``step_noise``.
        """
        i = step_tensor(step_index, x).reshape(1)
        t = self.sched_timesteps.index_select(0, i).expand(x.shape[0])
        out = self.vla_head(x, t, prefix["global_cond"])
        x0, eps = predicted_x0_eps(
            out,
            x,
            self.sched_sqrt_a.index_select(0, i),
            self.sched_sqrt_1ma.index_select(0, i),
            self.prediction_type,
            self.clip_range,
        )
        if self.sampler == "DDIM":
            return self.sched_coef_x0.index_select(0, i) * x0 + self.sched_coef_eps.index_select(0, i) * eps
        nxt = self.sched_coef_x0.index_select(0, i) * x0 + self.sched_coef_x.index_select(0, i) * x
        z = torch.randn_like(x) if step_noise is None else step_noise
        return nxt + self.sched_sigma.index_select(0, i) * z

    # ------------------------------------------------------------------ contract
    def sample(
        self,
        obs: Mapping[str, Tensor],
        noise: Tensor | None = None,
        step_noise: Sequence[Tensor] | Tensor | None = None,
    ) -> Tensor:
        """The whole sampled sequence ``[B, horizon, action_dim]`` (normalized units).

        ``step_noise``: DDPM's noise of every step, ``[K, B, horizon, action_dim]`` (or a list of
        ``K`` or ``K - 1`` tensors; the last step draws none); ignored by DDIM.
        """
        self.check_obs(obs)
        x = self.get_noise(obs, noise)
        prefix = self.export_prefix(obs)
        if (
            step_noise is not None
            and self.sampler == "DDPM"
            and len(step_noise) < self.num_inference_steps - 1
        ):
            raise ValueError(
                f"step_noise holds {len(step_noise)} tensors; DDPM with {self.num_inference_steps} "
                f"steps needs {self.num_inference_steps - 1} (one per step but the last)"
            )
        for k in range(self.num_inference_steps):
            z = None
            if step_noise is not None and self.sampler == "DDPM":
                z = step_noise[k] if k < len(step_noise) else torch.zeros_like(x)
            x = self.export_step(prefix, x, k, z)
        return x

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """LeRobot's ``compute_loss``: MSE of the U-Net output against the noise (epsilon) or the
        actions (sample) at ``x_t = sqrt(a_t) actions + sqrt(1 - a_t) noise``; padded actions
        (``action_is_pad``) are masked. Images are center-cropped (LeRobot crops randomly in
        training when ``crop_is_random``)."""
        self.check_obs(batch)
        a = require_actions(batch, "lerobot_diffusion", self.io.horizon, self.io.action_dim)
        noise, t = self.noise_and_timestep(batch, a)
        ab = self.alphas_cumprod[t.long()][:, None, None]
        x_t = ab**0.5 * a + (1 - ab) ** 0.5 * noise
        pred = self.vla_head(x_t, t.long(), self.export_prefix(batch)["global_cond"])
        target = noise if self.prediction_type == "epsilon" else a
        loss = masked_loss(pred, target, action_weights(batch, a), "mse")
        return {"loss": loss, "mse": loss.detach()}

    def predict_action(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """Normalized ``[B, horizon, action_dim]`` (the split layout's final ``x``; see
        :meth:`predict_action_chunk` for the executed window)."""
        return self.sample(obs, noise)

    def predict_action_chunk(
        self,
        obs: Mapping[str, Tensor],
        noise: Tensor | None = None,
        step_noise: Sequence[Tensor] | Tensor | None = None,
    ) -> Tensor:
        """LeRobot's ``predict_action_chunk``: ``[B, n_action_steps, action_dim]``, normalized."""
        start, stop = self.action_window
        return self.sample(obs, noise, step_noise)[:, start:stop]


# ---------------------------------------------------------------------------- from a LeRobot config
STATE_KEY, ACTION_KEY, IMAGE_PREFIX = "observation.state", "action", "observation.images."


def _features(config: Mapping[str, Any], key: str) -> dict[str, dict[str, Any]]:
    feats = config.get(key)
    if not isinstance(feats, Mapping):
        raise ValueError(
            f"LeRobot diffusion config has no {key!r} mapping; is this a LeRobot >= 0.4 config.json?"
        )
    return {str(k): dict(v) for k, v in feats.items()}


def camera_name(feature: str) -> str:
    """``observation.images.top`` -> ``top`` (``observation.image`` -> ``image``)."""
    if feature.startswith(IMAGE_PREFIX):
        return feature[len(IMAGE_PREFIX) :]
    return feature.rsplit(".", 1)[-1]


def vla_config_from_lerobot(
    config: Mapping[str, Any],
    *,
    image_norm: Sequence[Mapping[str, Sequence[float]]] | None = None,
    dt: float = DEFAULT_DT,
    noise_scheduler_type: str | None = None,
    num_inference_steps: int | None = None,
) -> dict[str, Any]:
    """The ``build_vla`` config of a LeRobot ``config.json`` (``type: diffusion``).

    ``image_norm``: per camera (config order) ``{"mean": [C], "std": [C]}`` with which
    ``(x - mean) / std`` is LeRobot's image normalization (identity when None).
    ``noise_scheduler_type``/``num_inference_steps`` override the config's sampler (e.g. DDIM
    with 10 steps to deploy a DDPM-trained policy). ``dt`` (seconds between actions) is not in
    LeRobot's config. Raises ``ValueError`` naming the key for what the spine cannot express: no
    camera, an ``observation.environment_state`` input, images of different sizes, a missing
    state or action feature.
    """
    if config.get("type", "diffusion") != "diffusion":
        raise ValueError(f"config type {config.get('type')!r} is not 'diffusion'")
    inputs, outputs = _features(config, "input_features"), _features(config, "output_features")
    cams = {k: v for k, v in inputs.items() if str(v.get("type")).upper() == "VISUAL"}
    others = sorted(k for k in inputs if k not in cams and k != STATE_KEY)
    if others:
        raise ValueError(
            f"LeRobot diffusion input(s) {others} are not supported (only {STATE_KEY!r} and "
            f"'{IMAGE_PREFIX}<camera>' images); retrain without them"
        )
    if not cams:
        raise ValueError("LeRobot diffusion config has no image input; state-only policies are not supported")
    if STATE_KEY not in inputs or ACTION_KEY not in outputs:
        raise ValueError(
            f"LeRobot diffusion config needs {STATE_KEY!r} in input_features and {ACTION_KEY!r} "
            "in output_features"
        )
    shapes = {tuple(v["shape"]) for v in cams.values()}
    if len(shapes) != 1:
        raise ValueError(f"LeRobot diffusion cameras have different shapes {sorted(shapes)}; they must match")
    c, h, w = next(iter(shapes))
    io = {
        "camera_names": [camera_name(k) for k in cams],
        "image_size": [h, w],
        "image_channels": c,
        "state_dim": int(inputs[STATE_KEY]["shape"][0]),
        "action_dim": int(outputs[ACTION_KEY]["shape"][0]),
        "horizon": int(config.get("horizon", 64)),
        "obs_history": int(config.get("n_obs_steps", 2)),
        "dt": float(dt),
        "text_max_len": 0,
    }
    separate = bool(config.get("use_separate_rgb_encoder_per_camera", True))
    enc = {
        "type": "DiffusionRgbEncoderPerCamera" if separate else "DiffusionRgbEncoder",
        "vision_backbone": config.get("vision_backbone", "resnet18"),
        "use_group_norm": bool(config.get("use_group_norm", False)),
        "spatial_softmax_num_keypoints": int(config.get("spatial_softmax_num_keypoints", 32)),
        "resize_shape": config.get("resize_shape"),
        "crop_shape": config.get("crop_shape"),
    }
    unet = {
        "type": "LeRobotConditionalUnet1d",
        "down_dims": list(config.get("down_dims", (512, 1024, 2048))),
        "kernel_size": int(config.get("kernel_size", 5)),
        "n_groups": int(config.get("n_groups", 8)),
        "diffusion_step_embed_dim": int(config.get("diffusion_step_embed_dim", 128)),
        "use_film_scale_modulation": bool(config.get("use_film_scale_modulation", True)),
    }
    return {
        "type": "lerobot_diffusion",
        "io": io,
        "n_action_steps": int(config.get("n_action_steps", 32)),
        "noise_scheduler_type": noise_scheduler_type or str(config.get("noise_scheduler_type", "DDPM")),
        "num_train_timesteps": int(config.get("num_train_timesteps", 100)),
        "num_inference_steps": num_inference_steps or config.get("num_inference_steps"),
        "beta_schedule": str(config.get("beta_schedule", "squaredcos_cap_v2")),
        "beta_start": float(config.get("beta_start", 1e-4)),
        "beta_end": float(config.get("beta_end", 0.02)),
        "prediction_type": str(config.get("prediction_type", "epsilon")),
        "clip_sample": bool(config.get("clip_sample", True)),
        "clip_sample_range": float(config.get("clip_sample_range", 1.0)),
        "image_norm": [dict(n) for n in image_norm] if image_norm is not None else None,
        "vision_backbone": enc,
        "vla_head": unet,
    }


def check_exportable(ckpt: LeRobotCheckpoint, model: LeRobotDiffusion, sampler: str | None = None) -> None:
    """Refuse to export a DDPM sampler (:class:`LeRobotCheckpointError` naming the fix).

    DDPM draws fresh Gaussian noise inside every one of its steps (LeRobot 0.6.1 runs diffusers'
    ``DDPMScheduler.step`` with ``num_train_timesteps`` steps unless ``num_inference_steps`` is
    set), so no graph reproduces it and the export's parity gate cannot check it. The same
    trained weights deploy with DDIM (``--sampler DDIM --sampler-steps K``), deterministic given
    the initial noise and checked against the model like any card. ``sampler`` is the
    ``--sampler`` the user gave (None: the checkpoint's own).
    """
    if model.sampler != "DDPM":
        return
    steps = model.num_inference_steps
    source = (
        "--sampler DDPM"
        if sampler == "DDPM"
        else f"config.json has noise_scheduler_type {ckpt.config.get('noise_scheduler_type', 'DDPM')!r}"
    )
    raise LeRobotCheckpointError(
        f"{ckpt.path}: {source}: DDPM draws fresh noise in each of its {steps} steps, which an "
        "exported graph cannot reproduce nor the parity gate check; vla_ros deploys Diffusion "
        "Policy with DDIM (the same weights, deterministic given the initial noise): "
        f"vla-ros export {ckpt.path} --sampler DDIM --sampler-steps 10 (LeRobot runs the same "
        "with noise_scheduler_type DDIM, num_inference_steps 10)"
    )


@register_lerobot_builder("diffusion")
def build_lerobot_diffusion(
    ckpt: LeRobotCheckpoint,
    *,
    dt: float = DEFAULT_DT,
    noise_scheduler_type: str | None = None,
    num_inference_steps: int | None = None,
) -> LeRobotDiffusion:
    """The spine model of a LeRobot Diffusion Policy checkpoint, weights loaded strictly.

    Image normalization (LeRobot's mode for VISUAL features, per camera) goes into the model's
    config; state and action normalization stay with the card (``ckpt.normalizer``). Raises
    :class:`LeRobotCheckpointError` for a config the spine cannot express and for weights that do
    not fit it (naming the missing / unexpected / mis-shaped keys).
    """
    from vla_ros.spine.compose import build_vla

    norms = []
    for feat in ckpt.image_features:
        mode = ckpt.mode_of(feat)
        if mode == "IDENTITY":
            c = ckpt.feature(feat).shape[0]
            norms.append({"mean": [0.0] * c, "std": [1.0] * c})
            continue
        mean, std = card_affine(mode, ckpt.stats[feat], ckpt.eps)
        norms.append({"mean": mean, "std": std})
    try:
        cfg = vla_config_from_lerobot(
            ckpt.config,
            image_norm=norms,
            dt=dt,
            noise_scheduler_type=noise_scheduler_type,
            num_inference_steps=num_inference_steps,
        )
        model = build_vla(cfg)
    except (ValueError, TypeError) as e:
        raise LeRobotCheckpointError(f"{ckpt.path / 'config.json'}: {e}") from e
    try:
        load_weights(model, ckpt.state_dict, name_mapping=model.name_mapping(), strict=True)
    except WeightLoadError as e:
        raise LeRobotCheckpointError(
            f"{ckpt.path}: config.json does not describe model.safetensors: {e}"
        ) from e
    return model.eval()
