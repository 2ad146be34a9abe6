"""LeRobot's ACT, weight-compatible, decomposed onto the spine's slots (inference only).

Follows ``lerobot/policies/act/modeling_act.py`` of LeRobot 0.6.1 (Zhao et al. 2023, "Learning
Fine-Grained Bimanual Manipulation with Low-Cost Hardware"), with the VAE encoder dropped (at
inference the latent is zeros)::

    vision_backbone  TorchvisionResNet (frozen BN)      image [B,3,H,W] -> [B,512,h,w]
    projector        ACTFeatureProjector                1x1 conv 512 -> D, + 2D sine positions
    vla_head         LeRobotACTHead                     encoder over [latent, state, camera tokens],
                                                        decoder over chunk_size zero queries,
                                                        Linear(D, action_dim)

Images are normalized inside the model with each camera's LeRobot statistics (``image_norm``:
one :class:`~vla_ros.spine.checkpoints.normalize.FeatureNormalizer` per camera, ``[3, 1, 1]``);
``state`` arrives normalized and actions leave normalized (the card carries those two).

Weights: :data:`NAME_MAPPING` maps the spine's names onto LeRobot's ``model.*`` keys, and
:func:`build_from_lerobot` loads them strictly (the VAE encoder's keys are the only ones dropped,
and only when ``use_vae`` is set).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.base_vla import BaseVLA
from vla_ros.spine.checkpoints.lerobot import (
    LeRobotCheckpoint,
    LeRobotCheckpointError,
    register_lerobot_builder,
)
from vla_ros.spine.components import tv_resnet  # noqa: F401  (registers TorchvisionResNet)
from vla_ros.spine.families.common import action_weights, camera_normalizers, masked_loss, require_actions
from vla_ros.spine.registry import HEADS, PROJECTORS, VLAS

#: spine model prefix -> LeRobot checkpoint prefix (first match wins; see spine/weights.py)
NAME_MAPPING: dict[str, str] = {
    "vision_backbone": "model.backbone",
    "projector.conv": "model.encoder_img_feat_input_proj",
    "vla_head": "model",
}
#: LeRobot keys of the VAE encoder (training only), dropped when config.json has use_vae
VAE_PREFIX = "model.vae_encoder"
ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}
DEFAULT_FPS = 30.0


def sine_positions_2d(h: int, w: int, dim: int, device: torch.device | None = None) -> Tensor:
    """ACT's 2D sine positions ``[h * w, 1, 2 * dim]`` (row-major tokens, sequence first).

    As LeRobot's ``ACTSinusoidalPositionEmbedding2d(dim)``: row/column indices 1..h / 1..w divided
    by (last + 1e-6), times 2 pi, divided by ``10000 ** (2 (i // 2) / dim)``; sin on even, cos on
    odd channels, interleaved; the y half first, then x. Computed in float32 in the same order.
    """
    ones = torch.ones(1, h, w, device=device)
    y = ones.cumsum(1, dtype=torch.float32)
    x = ones.cumsum(2, dtype=torch.float32)
    y = y / (y[:, -1:, :] + 1e-6) * (2 * math.pi)
    x = x / (x[:, :, -1:] + 1e-6) * (2 * math.pi)
    inv = 10000 ** (2 * (torch.arange(dim, dtype=torch.float32, device=device) // 2) / dim)
    x = x.unsqueeze(-1) / inv
    y = y.unsqueeze(-1) / inv
    px = torch.stack((x[..., 0::2].sin(), x[..., 1::2].cos()), dim=-1).flatten(3)
    py = torch.stack((y[..., 0::2].sin(), y[..., 1::2].cos()), dim=-1).flatten(3)
    pos = torch.cat((py, px), dim=3)  # [1, h, w, 2 dim]
    return pos.reshape(1, h * w, 2 * dim).transpose(0, 1)


@PROJECTORS.register()
class ACTFeatureProjector(nn.Module):
    """Feature map ``[B, C, h, w]`` -> tokens ``[h*w, B, D]`` and positions ``[h*w, 1, D]``."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size=1)

    def forward(self, fmap: Tensor) -> tuple[Tensor, Tensor]:
        _, _, h, w = fmap.shape
        pos = sine_positions_2d(h, w, self.out_dim // 2, fmap.device).to(fmap.dtype)
        tokens = self.conv(fmap).flatten(2).permute(2, 0, 1)  # [h*w, B, D]
        return tokens, pos


def _sublayer(x: Tensor, norm: nn.Module, pre_norm: bool, f: Callable[[Tensor], Tensor]) -> Tensor:
    """LeRobot ACT's (DETR's) residual sublayer on ``x [L, B, D]``: pre-norm ``x + f(norm(x))``,
    post-norm ``norm(x + f(x))``."""
    return x + f(norm(x)) if pre_norm else norm(x + f(x))


def _self_attention(attn: nn.MultiheadAttention, pos: Tensor) -> Callable[[Tensor], Tensor]:
    """``h [L, B, D]`` -> self-attention with q = k = ``h + pos``, v = ``h``."""

    def run(h: Tensor) -> Tensor:
        q = h + pos
        return attn(q, q, value=h, need_weights=False)[0]

    return run


def _ffn(layer: nn.Module, h: Tensor) -> Tensor:
    """The layer's feed-forward block ``linear2(act(linear1(h)))``."""
    return layer.linear2(layer.act(layer.linear1(h)))


class EncoderLayer(nn.Module):
    """LeRobot's ``ACTEncoderLayer`` at inference: q = k = x + pos, v = x; post- or pre-norm."""

    def __init__(self, dim: int, heads: int, ff: int, activation: str, pre_norm: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads)
        self.linear1 = nn.Linear(dim, ff)
        self.linear2 = nn.Linear(ff, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.act = ACTIVATIONS[activation]
        self.pre_norm = pre_norm

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        x = _sublayer(x, self.norm1, self.pre_norm, _self_attention(self.self_attn, pos))
        return _sublayer(x, self.norm2, self.pre_norm, lambda h: _ffn(self, h))


class DecoderLayer(nn.Module):
    """LeRobot's ``ACTDecoderLayer`` at inference: self-attention, cross-attention, FFN."""

    def __init__(self, dim: int, heads: int, ff: int, activation: str, pre_norm: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads)
        self.multihead_attn = nn.MultiheadAttention(dim, heads)
        self.linear1 = nn.Linear(dim, ff)
        self.linear2 = nn.Linear(ff, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.act = ACTIVATIONS[activation]
        self.pre_norm = pre_norm

    def forward(self, x: Tensor, memory: Tensor, qpos: Tensor, kpos: Tensor) -> Tensor:
        x = _sublayer(x, self.norm1, self.pre_norm, _self_attention(self.self_attn, qpos))
        key = memory + kpos
        x = _sublayer(
            x,
            self.norm2,
            self.pre_norm,
            lambda h: self.multihead_attn(h + qpos, key, value=memory, need_weights=False)[0],
        )
        return _sublayer(x, self.norm3, self.pre_norm, lambda h: _ffn(self, h))


class Encoder(nn.Module):
    """Encoder layers, then a LayerNorm only with pre-norm (as LeRobot's ``ACTEncoder``)."""

    def __init__(self, n: int, pre_norm: bool, **kw: Any) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(pre_norm=pre_norm, **kw) for _ in range(n))
        self.norm = nn.LayerNorm(kw["dim"]) if pre_norm else nn.Identity()

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, pos)
        return self.norm(x)


class Decoder(nn.Module):
    """Decoder layers, then a LayerNorm (always; LeRobot's ``ACTDecoder``)."""

    def __init__(self, n: int, pre_norm: bool, **kw: Any) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(pre_norm=pre_norm, **kw) for _ in range(n))
        self.norm = nn.LayerNorm(kw["dim"])

    def forward(self, x: Tensor, memory: Tensor, qpos: Tensor, kpos: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, memory, qpos, kpos)
        return self.norm(x)


@HEADS.register()
class LeRobotACTHead(nn.Module):
    """Camera tokens ``[S, B, D]`` + positions ``[S, 1, D]`` + state ``[B, state_dim]`` -> actions
    ``[B, chunk_size, action_dim]`` (normalized). Names as LeRobot's ``ACT`` module."""

    def __init__(
        self,
        dim_model: int,
        state_dim: int,
        action_dim: int,
        chunk_size: int,
        n_heads: int = 8,
        dim_feedforward: int = 3200,
        n_encoder_layers: int = 4,
        n_decoder_layers: int = 1,
        latent_dim: int = 32,
        pre_norm: bool = False,
        feedforward_activation: str = "relu",
    ) -> None:
        super().__init__()
        if feedforward_activation not in ACTIVATIONS:
            raise ValueError(
                f"ACT feedforward_activation {feedforward_activation!r} is not supported; use one of "
                f"{sorted(ACTIVATIONS)}"
            )
        if dim_model % n_heads or dim_model % 2:
            raise ValueError(f"dim_model {dim_model} must be even and divisible by n_heads {n_heads}")
        kw = {"dim": dim_model, "heads": n_heads, "ff": dim_feedforward, "activation": feedforward_activation}
        self.latent_dim, self.chunk_size, self.dim_model = latent_dim, chunk_size, dim_model
        self.encoder = Encoder(n_encoder_layers, pre_norm, **kw)
        self.decoder = Decoder(n_decoder_layers, pre_norm, **kw)
        self.encoder_robot_state_input_proj = nn.Linear(state_dim, dim_model)
        self.encoder_latent_input_proj = nn.Linear(latent_dim, dim_model)
        self.encoder_1d_feature_pos_embed = nn.Embedding(2, dim_model)  # latent, state
        self.decoder_pos_embed = nn.Embedding(chunk_size, dim_model)
        self.action_head = nn.Linear(dim_model, action_dim)

    def forward(self, cam_tokens: Tensor, cam_pos: Tensor, state: Tensor) -> Tensor:
        b = state.shape[0]
        latent = state.new_zeros(b, self.latent_dim)  # the VAE's latent at inference
        one_d = torch.stack(
            [self.encoder_latent_input_proj(latent), self.encoder_robot_state_input_proj(state)]
        )  # [2, B, D]
        tokens = torch.cat([one_d, cam_tokens], dim=0)
        pos = torch.cat([self.encoder_1d_feature_pos_embed.weight.unsqueeze(1), cam_pos], dim=0)
        memory = self.encoder(tokens, pos)
        queries = state.new_zeros(self.chunk_size, b, self.dim_model)
        out = self.decoder(queries, memory, self.decoder_pos_embed.weight.unsqueeze(1), pos)
        return self.action_head(out.transpose(0, 1))


@VLAS.register(name="lerobot_act")
class LeRobotACT(BaseVLA):
    """LeRobot ACT on the spine; ``image_normalization`` lists ``{mode, eps}`` per camera."""

    FAMILY = "lerobot_act"
    REQUIRED_SLOTS = ("vision_backbone", "projector", "vla_head")
    OPTIONAL_SLOTS = ()
    USES_TEXT = False
    EXPORT_LAYOUT = "monolithic"

    def __init__(
        self,
        io: Mapping[str, Any],
        *,
        dim_model: int = 512,
        image_normalization: list[Mapping[str, Any]] | None = None,
        lerobot: Mapping[str, Any] | None = None,
        freeze: Any = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        self.dim_model = dim_model
        self.lerobot = dict(lerobot or {})
        if self.io.obs_history != 1:
            raise ValueError(
                "LeRobot ACT uses the newest observation only (n_obs_steps 1); set io.obs_history: 1"
            )
        self.image_norm = camera_normalizers(
            image_normalization, self.io.camera_names, self.io.image_channels
        )
        self.build_slots()
        # without the VAE encoder the latent is always zero: its projection's weight has no effect
        # (only the bias does), so it is not trained here
        self.vla_head.encoder_latent_input_proj.weight.requires_grad_(False)

    def slot_defaults(self, slot: str) -> dict[str, Any]:
        io = self.io
        if slot == "vision_backbone":
            return {"in_channels": io.image_channels, "image_size": io.image_size}
        if slot == "projector":
            return {"in_dim": self.vision_backbone.out_dim, "out_dim": self.dim_model}
        if slot == "vla_head":
            return {
                "dim_model": self.dim_model,
                "state_dim": io.state_dim,
                "action_dim": io.action_dim,
                "chunk_size": io.horizon,
            }
        return {}

    def io_extra(self) -> dict[str, Any]:
        return {"lerobot": dict(self.lerobot)} if self.lerobot else {}

    def encode_images(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``[B, N, 3, H, W]`` in [0, 1] -> camera tokens ``[N*h*w, B, D]`` and positions."""
        tokens, pos = [], []
        for n, norm in enumerate(self.image_norm):
            t, p = self.projector(self.vision_backbone(norm.normalize(images[:, n])))
            tokens.append(t)
            pos.append(p)
        return torch.cat(tokens, dim=0), torch.cat(pos, dim=0)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Fine-tuning loss without the VAE (LeRobot's ``use_vae=False`` objective): masked L1
        between the predicted and the normalized target chunk ``batch["actions"]``."""
        self.check_obs(batch)
        actions = require_actions(batch, self.FAMILY, self.io.horizon, self.io.action_dim)
        pred = self.predict_action(batch)
        l1 = masked_loss(pred, actions, action_weights(batch, actions), "l1")
        return {"loss": l1, "l1": l1}

    def predict_action(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """Normalized actions ``[B, chunk_size, action_dim]`` (deterministic; ``noise`` unused)."""
        self.check_obs(obs)
        tokens, pos = self.encode_images(obs["images"][:, -1])
        return self.vla_head(tokens, pos, obs["state"][:, -1])


# ----------------------------------------------------------------------------- LeRobot folder -> model
def _camera_name(feature: str) -> str:
    prefix = "observation.images."
    if feature.startswith(prefix):
        return feature[len(prefix) :]
    if feature == "observation.image":
        return "image"
    return feature.replace(".", "_")


def act_model_config(ckpt: LeRobotCheckpoint, fps: float | None = None) -> dict[str, Any]:
    """The ``build_vla`` config of the spine model for an ACT checkpoint (no weights).

    Raises :class:`LeRobotCheckpointError` for features the card cannot map: no camera, cameras of
    different sizes, no ``observation.state``, an environment-state input, a non-1-D action.
    """
    c = ckpt.config
    where = ckpt.path / "config.json"
    cams = ckpt.image_features
    if not cams:
        raise LeRobotCheckpointError(
            f"{where}: this ACT has no camera input (image_features is empty); vla_ros runs ACT "
            "policies with at least one observation.images.<camera>"
        )
    shapes = {k: ckpt.input_features[k].shape for k in cams}
    if len(set(shapes.values())) != 1:
        raise LeRobotCheckpointError(
            f"{where}: cameras have different sizes {shapes}; a policy card has one image size for "
            "all cameras. Retrain with equal camera resolutions"
        )
    ch, h, w = next(iter(shapes.values()))
    env = ckpt.features_of("ENV")
    if env:
        raise LeRobotCheckpointError(
            f"{where}: input {env} (environment state) has no source on a robot's ROS topics; "
            "vla_ros maps observation.images.* to cameras and observation.state to joint states"
        )
    if "observation.state" not in ckpt.input_features:
        raise LeRobotCheckpointError(
            f"{where}: no 'observation.state' input (inputs: {sorted(ckpt.input_features)}); the "
            "card's state joints come from it"
        )
    state_shape = ckpt.input_features["observation.state"].shape
    action_shape = ckpt.feature("action").shape
    for name, shape in (("observation.state", state_shape), ("action", action_shape)):
        if len(shape) != 1:
            raise LeRobotCheckpointError(f"{where}: {name} has shape {list(shape)}; expected a vector [D]")
    if int(c.get("n_obs_steps", 1)) != 1:
        raise LeRobotCheckpointError(f"{where}: n_obs_steps {c.get('n_obs_steps')} != 1; LeRobot ACT uses 1")
    fps = float(fps or c.get("fps") or DEFAULT_FPS)
    chunk = int(c.get("chunk_size", 100))
    lerobot = {
        "type": "act",
        "source": str(ckpt.path),
        "layout": ckpt.layout,
        "n_action_steps": int(c.get("n_action_steps", chunk)),
        "temporal_ensemble_coeff": c.get("temporal_ensemble_coeff"),
        "cameras": {_camera_name(k): k for k in cams},
        "normalization": {k: ckpt.mode_of(k) for k in (*cams, "observation.state", "action")},
        "fps": fps,
    }
    return {
        "type": "lerobot_act",
        "name": f"lerobot_act_{ckpt.path.parent.name or 'policy'}",
        "io": {
            "camera_names": [_camera_name(k) for k in cams],
            "image_size": [h, w],
            "image_channels": ch,
            "state_dim": int(state_shape[0]),
            "action_dim": int(action_shape[0]),
            "horizon": chunk,
            "dt": 1.0 / fps,
        },
        "dim_model": int(c.get("dim_model", 512)),
        "image_normalization": [{"mode": ckpt.mode_of(k), "eps": ckpt.eps} for k in cams],
        "lerobot": lerobot,
        "vision_backbone": {
            "type": "TorchvisionResNet",
            "variant": str(c.get("vision_backbone", "resnet18")),
            "norm": "frozen_bn",
            "dilation": bool(c.get("replace_final_stride_with_dilation", False)),
        },
        "projector": {"type": "ACTFeatureProjector"},
        "vla_head": {
            "type": "LeRobotACTHead",
            "n_heads": int(c.get("n_heads", 8)),
            "dim_feedforward": int(c.get("dim_feedforward", 3200)),
            "n_encoder_layers": int(c.get("n_encoder_layers", 4)),
            "n_decoder_layers": int(c.get("n_decoder_layers", 1)),
            "latent_dim": int(c.get("latent_dim", 32)),
            "pre_norm": bool(c.get("pre_norm", False)),
            "feedforward_activation": str(c.get("feedforward_activation", "relu")),
        },
    }


def lerobot_weights(ckpt: LeRobotCheckpoint, model: LeRobotACT) -> dict[str, Tensor]:
    """The checkpoint tensors the model loads: LeRobot's weights (VAE encoder dropped when
    ``use_vae``) plus each camera's image statistics as ``image_norm.<i>.<stat>``."""
    use_vae = bool(ckpt.config.get("use_vae", True))
    src = {k: v for k, v in ckpt.state_dict.items() if not (use_vae and k.startswith(VAE_PREFIX))}
    for i, feat in enumerate(ckpt.image_features):
        norm = model.image_norm[i]
        for stat in norm.stat_names:
            src[f"image_norm.{i}.{stat}"] = ckpt.stats[feat][stat].reshape(norm.shape)
    return src


@register_lerobot_builder("act")
def build_from_lerobot(ckpt: LeRobotCheckpoint, fps: float | None = None) -> LeRobotACT:
    """The spine ACT for ``ckpt`` with its weights loaded strictly through :data:`NAME_MAPPING`."""
    from vla_ros.spine.compose import build_vla
    from vla_ros.spine.weights import WeightLoadError, load_weights

    cfg = act_model_config(ckpt, fps)
    try:
        model = build_vla(cfg)
    except (TypeError, ValueError, KeyError) as e:
        raise LeRobotCheckpointError(f"{ckpt.path / 'config.json'}: cannot build the ACT model: {e}") from e
    try:
        load_weights(model, lerobot_weights(ckpt, model), name_mapping=NAME_MAPPING, strict=True)
    except WeightLoadError as e:
        raise LeRobotCheckpointError(
            f"{ckpt.path / 'model.safetensors'} does not fit {ckpt.path / 'config.json'}: "
            f"{e.report.summary(8)}. The weights and the config come from different runs; copy "
            "the whole pretrained_model folder that save_pretrained wrote"
        ) from e
    return model.eval()
