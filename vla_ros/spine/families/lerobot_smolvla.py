"""LeRobot's SmolVLA, weight-compatible, decomposed onto the spine's slots (inference only).

Follows ``lerobot/policies/smolvla/`` of LeRobot 0.6.1 (Shukor et al. 2025, "SmolVLA: A
Vision-Language-Action Model for Affordable and Efficient Robotics")::

    vision_backbone  SmolVLMVisionTower     [B*N, 3, S, S] in [-1, 1] -> [B*N, (S/16)^2, 768]
    projector        PixelShuffleConnector  pixel shuffle x4 + Linear -> [B*N, 64, 960]
    llm_backbone     SmolLMPrefix           the first num_vlm_layers SmolLM layers over the
                                            prefix [images, language, state] -> KV cache
    vla_head         SmolVLAExpert          the action expert: velocity of the flow
    state_proj       (family)               Linear(max_state_dim, 960): the state token

Preprocessing as LeRobot's ``SmolVLAPolicy.prepare_images`` / ``prepare_state``: each camera
resized keeping its aspect ratio to fit ``resize_imgs_with_padding`` (bilinear, align_corners
False), padded on the left and top with 0, scaled to [-1, 1]; the state zero-padded to
``max_state_dim``. LeRobot's empty-camera slots (``empty_cameras``: -1 images with mask 0) are
masked out of every attention and take no position, so they change nothing: vla_ros does not
compute them. Image and language embeddings are multiplied by ``sqrt(width)``; images and
language attend to each other, the state token attends to everything; positions are the running
count of valid tokens minus one.

Sampling: the prefix cache once, then ``num_steps`` Euler steps from ``t = 1`` to ``0``
(``x <- x + dt * v``, ``dt = -1 / num_steps``) from noise ``[B, chunk, max_action_dim]``
(LeRobot's shape: the padded action dimensions carry noise too), truncated to the action
dimension at the end. Split layout: ``export_prefix`` -> ``prefix_k``/``prefix_v``
``[L, B, P, G, D]`` and ``prefix_mask [B, P]``; ``export_step`` is one Euler step.

Inputs: ``images [B, 1, N, 3, H, W]`` in [0, 1], ``state [B, 1, D]`` normalized (the card
carries LeRobot's MEAN_STD), ``tokens [B, tokenizer_max_length]`` from :meth:`tokenize` (the
task with a newline, ``-1`` = padding), ``noise [B, chunk, max_action_dim]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vla_ros.spine.checkpoints.lerobot import (
    LeRobotCheckpoint,
    LeRobotCheckpointError,
    processor_file,
    register_lerobot_builder,
)
from vla_ros.spine.checkpoints.normalize import FeatureNormalizer
from vla_ros.spine.components import siglip, smollm, smolvla_expert  # noqa: F401  (registers the slots)
from vla_ros.spine.components.smolvla_text import (
    SmolVLATokenizer,
    TokenizerNotFoundError,
    find_tokenizer_file,
    find_vlm_file,
)
from vla_ros.spine.families.lerobot_flow import LeRobotFlowVLA
from vla_ros.spine.registry import VLAS

#: spine model prefix -> LeRobot checkpoint prefix (first match wins; see spine/weights.py)
NAME_MAPPING: dict[str, str] = {
    "vision_backbone": "model.vlm_with_expert.vlm.model.vision_model",
    "projector": "model.vlm_with_expert.vlm.model.connector",
    "llm_backbone": "model.vlm_with_expert.vlm.model.text_model",
    "vla_head.lm_expert": "model.vlm_with_expert.lm_expert",
    "vla_head": "model",
    "state_proj": "model.state_proj",
}
#: LeRobot keys SmolVLA never uses at inference (the VLM's next-token head), dropped by name
UNUSED_PREFIXES = ("model.vlm_with_expert.vlm.lm_head.",)
SMOLVLM2_500M_NAME = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
#: SmolVLM2-500M-Video-Instruct's architecture (used when its config.json is not at hand; the
#: shapes are checked against the weights): see shared/LEROBOT_FACTS.md
SMOLVLM2_500M: dict[str, Any] = {
    "text_config": {
        "hidden_size": 960,
        "intermediate_size": 2560,
        "num_attention_heads": 15,
        "num_key_value_heads": 5,
        "head_dim": 64,
        "rms_norm_eps": 1e-5,
        "vocab_size": 49280,
    },
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 512,
        "patch_size": 16,
        "layer_norm_eps": 1e-6,
    },
    "scale_factor": 4,
}
DEFAULT_FPS = 30.0


def resize_with_pad(images: Tensor, height: int, width: int) -> Tensor:
    """LeRobot's ``resize_with_pad`` (SmolVLA): ``[B, C, h, w]`` -> ``[B, C, height, width]``.

    Scaled by ``1 / max(w / width, h / height)`` (sizes truncated to int), bilinear with
    ``align_corners=False`` and no antialiasing, then zero-padded on the left and top.
    """
    h, w = images.shape[-2:]
    if (h, w) == (height, width):
        return images
    ratio = max(w / width, h / height)
    rh, rw = int(h / ratio), int(w / ratio)
    out = F.interpolate(images, size=(rh, rw), mode="bilinear", align_corners=False)
    return F.pad(out, (max(0, width - rw), 0, max(0, height - rh), 0), value=0.0)


@VLAS.register(name="lerobot_smolvla")
class LeRobotSmolVLA(LeRobotFlowVLA):
    """LeRobot SmolVLA on the spine; see the module docstring."""

    FAMILY = "lerobot_smolvla"
    REQUIRED_SLOTS = ("vision_backbone", "projector", "llm_backbone", "vla_head")
    OPTIONAL_SLOTS = ()
    NEEDS_NOISE = True
    USES_TEXT = True
    EXPORT_LAYOUT = "split"

    def __init__(
        self,
        io: Mapping[str, Any],
        *,
        resize: tuple[int, int] = (512, 512),
        num_steps: int = 10,
        max_state_dim: int = 32,
        max_action_dim: int = 32,
        tokenizer_file: str | None = None,
        image_normalization: list[Mapping[str, Any]] | None = None,
        lerobot: Mapping[str, Any] | None = None,
        freeze: Any = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        super().__init__(io, freeze=freeze, export_layout=export_layout, **slots)
        self.setup_flow(
            "SmolVLA",
            resize=resize,
            num_steps=num_steps,
            max_state_dim=max_state_dim,
            max_action_dim=max_action_dim,
            tokenizer_file=tokenizer_file,
            lerobot=lerobot,
        )
        self._tokenizer: SmolVLATokenizer | None = None
        cams = self.io.camera_names
        norms = list(image_normalization or [{"mode": "IDENTITY"}] * len(cams))
        if len(norms) != len(cams):
            raise ValueError(
                f"image_normalization has {len(norms)} entries for {len(cams)} cameras {list(cams)}"
            )
        # LeRobot's preprocessor normalizes each camera (its VISUAL mode) before SmolVLA resizes
        self.image_norm = nn.ModuleList(
            FeatureNormalizer(str(n["mode"]), (self.io.image_channels, 1, 1), eps=float(n.get("eps", 1e-8)))
            for n in norms
        )
        self.build_slots()
        llm, head = self.llm_backbone, self.vla_head
        if head.depth != llm.depth or head.kv_heads != llm.kv_heads or head.head_dim != llm.head_dim:
            raise ValueError(
                f"SmolVLA expert (depth {head.depth}, kv_heads {head.kv_heads}, head_dim {head.head_dim}) "
                f"must match the VLM layers it reads (depth {llm.depth}, {llm.kv_heads}, {llm.head_dim})"
            )
        self.state_proj = nn.Linear(max_state_dim, llm.dim)
        self.register_times()

    # ------------------------------------------------------------------ text
    def tokenize(self, instructions: str | list[str]) -> Tensor:
        """Tasks -> ``int64 [B, tokenizer_max_length]`` as LeRobot's preprocessor (see
        :class:`~vla_ros.spine.components.smolvla_text.SmolVLATokenizer`); ``FileNotFoundError``
        when a model built from a checkpoint has no tokenizer file. A model built from a spine
        config (random weights, no checkpoint, no ``smolvla:`` tokenizer in its IO spec)
        tokenizes with the IO spec's tokenizer like every spine family."""
        if self._tokenizer is None:
            if not self.tokenizer_file and not self.io.tokenizer.startswith("smolvla:"):
                return super().tokenize(instructions)
            if not self.tokenizer_file or not Path(self.tokenizer_file).is_file():
                raise TokenizerNotFoundError(
                    f"SmolVLA tokenizer file {self.tokenizer_file!r} does not exist; pass the VLM's "
                    "tokenizer.json (vla-ros export --tokenizer PATH)"
                )
            self._tokenizer = SmolVLATokenizer(self.tokenizer_file, self.io.text_max_len)
        return self._tokenizer(instructions)

    # ------------------------------------------------------------------ prefix
    def preprocess_images(self, images: Tensor) -> Tensor:
        """``[B, N, 3, H, W]`` in [0, 1] -> ``[B * N, 3, S_h, S_w]`` (each camera normalized with
        its VISUAL statistics when the checkpoint has them, then resized, padded, scaled to [-1, 1]
        when in [0, 1], as LeRobot's preprocessor and ``prepare_images`` do)."""
        if any(norm.mode != "IDENTITY" for norm in self.image_norm):
            images = torch.stack([norm.normalize(images[:, i]) for i, norm in enumerate(self.image_norm)], 1)
        x = resize_with_pad(images.flatten(0, 1), *self.resize)
        return x * 2.0 - 1.0

    def embed_prefix(self, obs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Prefix embeddings ``[B, P, dim]``, valid mask ``[B, P]`` bool and attention blocks
        ``[P]`` int (0 image/language, 1 state), as LeRobot's ``embed_prefix``."""
        images = obs["images"][:, -1]
        b, n = images.shape[:2]
        llm = self.llm_backbone
        img = self.projector(self.vision_backbone(self.preprocess_images(images)))  # [B*N, T, dim]
        img = img.reshape(b, n * img.shape[1], img.shape[2]) * torch.tensor(
            img.shape[-1] ** 0.5, dtype=img.dtype, device=img.device
        )
        tokens = obs["tokens"]
        lang = llm.embed(tokens) * math.sqrt(llm.dim)
        state = F.pad(obs["state"][:, -1], (0, self.max_state_dim - self.io.state_dim))
        st = self.state_proj(state)[:, None, :]
        embeds = torch.cat([img, lang, st], dim=1)
        ones = torch.ones(b, img.shape[1], dtype=torch.bool, device=img.device)
        mask = torch.cat([ones, tokens >= 0, ones[:, :1]], dim=1)
        blocks = torch.zeros(embeds.shape[1], dtype=torch.long, device=img.device)
        blocks[-1] = 1
        return embeds, mask, blocks

    def export_prefix(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        embeds, mask, blocks = self.embed_prefix(obs)
        cum = torch.cumsum(blocks, dim=0)
        att = (cum[None, :] <= cum[:, None])[None] & mask[:, None, :] & mask[:, :, None]
        positions = torch.cumsum(mask.to(torch.long), dim=1) - 1
        k, v = self.llm_backbone(embeds, positions, att)
        return {"prefix_k": k, "prefix_v": v, "prefix_mask": mask.to(k.dtype)}

    # ------------------------------------------------------------------ steps
    def velocity(self, prefix: Mapping[str, Tensor], x: Tensor, t: Tensor) -> Tensor:
        """The expert's velocity ``[B, chunk, max_action_dim]`` at ``x`` and time ``t [B]``."""
        return self.vla_head(prefix["prefix_k"], prefix["prefix_v"], prefix["prefix_mask"] > 0.5, x, t)

    def noise_name(self) -> str:
        return "SmolVLA"

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Training is LeRobot's job; vla_ros runs SmolVLA for inference only."""
        raise NotImplementedError("lerobot_smolvla is inference-only: fine-tune SmolVLA in LeRobot")


# ----------------------------------------------------------------------------- LeRobot folder -> model
def _camera_name(feature: str) -> str:
    prefix = "observation.images."
    return feature[len(prefix) :] if feature.startswith(prefix) else feature.replace(".", "_")


def _tokenizer_step(ckpt: LeRobotCheckpoint) -> dict[str, Any]:
    path = processor_file(ckpt.path, "policy_preprocessor.json")
    if path is None:
        return {}
    steps = json.loads(path.read_text()).get("steps") or []
    for step in steps:
        if isinstance(step, dict) and step.get("registry_name") == "tokenizer_processor":
            return dict(step.get("config") or {})
    return {}


def vlm_config(ckpt: LeRobotCheckpoint, vlm_dir: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """The SmolVLM config (``text_config``, ``vision_config``, ``scale_factor``) and where it came
    from: ``vlm_dir``/config.json, the ``vlm_model_name`` folder or HF cache, else the built-in
    SmolVLM2-500M numbers for that model name. :class:`LeRobotCheckpointError` otherwise."""
    name = str(ckpt.config.get("vlm_model_name", SMOLVLM2_500M_NAME))
    try:
        f = find_vlm_file(name, "config.json", near=ckpt.path, explicit=Path(vlm_dir) if vlm_dir else None)
        return json.loads(f.read_text()), str(f)
    except TokenizerNotFoundError as e:
        if name == SMOLVLM2_500M_NAME:
            return SMOLVLM2_500M, "built-in SmolVLM2-500M numbers"
        raise LeRobotCheckpointError(f"{ckpt.path / 'config.json'}: SmolVLA's VLM config: {e}") from e


def _option_checks(c: Mapping[str, Any]) -> list[tuple[str, bool, str]]:
    """``(config key, supported, what is)`` for the SmolVLA options vla_ros refuses."""
    vlm_layers = int(c.get("num_vlm_layers", 16))
    expert_layers = int(c.get("num_expert_layers", -1))
    return [
        (
            "adapt_to_pi_aloha",
            not c.get("adapt_to_pi_aloha", False),
            "supported: false; the pi-ALOHA joint flips and gripper transforms are not run",
        ),
        (
            "use_delta_joint_actions_aloha",
            not c.get("use_delta_joint_actions_aloha", False),
            "supported: false; LeRobot 0.6.1 refuses it too (not ported)",
        ),
        (
            "add_image_special_tokens",
            not c.get("add_image_special_tokens", False),
            "supported: false",
        ),
        (
            "attention_mode",
            str(c.get("attention_mode", "cross_attn")) == "cross_attn",
            "supported: 'cross_attn'",
        ),
        ("prefix_length", int(c.get("prefix_length", -1)) <= 0, "supported: <= 0 (no fixed prefix)"),
        (
            "num_expert_layers",
            expert_layers <= 0 or expert_layers == vlm_layers,
            f"supported: -1 or num_vlm_layers ({vlm_layers})",
        ),
    ]


def _tower_input(
    res: Any, camera: tuple[int, ...], vc: Mapping[str, Any], vlm: Mapping[str, Any], where: Path
) -> list[int]:
    """The images' size at the vision tower, LeRobot's ``(width, height)``: ``resize_imgs_with_padding``,
    or the cameras' own size when it is null (LeRobot then feeds them unresized). It must be a
    square multiple of ``patch_size * scale_factor`` (the connector's pixel shuffle takes a square
    grid of patches; LeRobot fails on anything else): :class:`LeRobotCheckpointError` otherwise."""
    if res is None:
        res, what = [int(camera[2]), int(camera[1])], f"null (the cameras' own size {camera[1]}x{camera[2]})"
    else:
        what = str(list(res))
    cell = int(vc.get("patch_size", 16)) * int(vlm.get("scale_factor", 4))
    if len(res) != 2 or int(res[0]) != int(res[1]) or int(res[0]) % cell or int(res[0]) <= 0:
        raise LeRobotCheckpointError(
            f"{where}: resize_imgs_with_padding is {what}; SmolVLA's vision tower and pixel shuffle take "
            f"square images whose side is a multiple of {cell} (patch {vc.get('patch_size', 16)} x "
            f"scale {vlm.get('scale_factor', 4)}), e.g. [{vc.get('image_size', 512)}, "
            f"{vc.get('image_size', 512)}] (LeRobot's default)"
        )
    return [int(res[0]), int(res[1])]


def smolvla_model_config(
    ckpt: LeRobotCheckpoint,
    fps: float | None = None,
    tokenizer: str | Path | None = None,
    vlm_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The ``build_vla`` config of the spine model for a SmolVLA checkpoint (no weights).

    Raises :class:`LeRobotCheckpointError` for what the card cannot map or vla_ros does not run:
    no camera, cameras of different sizes, no state, an environment state, ``adapt_to_pi_aloha``,
    an attention mode other than ``cross_attn``, fewer expert layers than VLM layers, image
    special tokens, a fixed ``prefix_length``.
    """
    c = ckpt.config
    where = ckpt.path / "config.json"
    n_empty = int(c.get("empty_cameras", 0))
    empty = [f"observation.images.empty_camera_{i}" for i in range(n_empty)]
    cams = [k for k in ckpt.image_features if k not in empty]
    if not cams:
        raise LeRobotCheckpointError(f"{where}: this SmolVLA has no camera input; it needs at least one")
    shapes = {k: ckpt.input_features[k].shape for k in cams}
    if len(set(shapes.values())) != 1:
        raise LeRobotCheckpointError(
            f"{where}: cameras have different sizes {shapes}; a policy card has one image size for all"
        )
    if ckpt.features_of("ENV"):
        raise LeRobotCheckpointError(f"{where}: environment-state inputs have no ROS source in vla_ros")
    if "observation.state" not in ckpt.input_features:
        raise LeRobotCheckpointError(f"{where}: no 'observation.state' input; the card's joints come from it")
    bad = [
        f"{key} = {json.dumps(c.get(key))} ({supported})"
        for key, ok, supported in _option_checks(c)
        if not ok
    ]
    if bad:
        raise LeRobotCheckpointError(
            f"{where}: SmolVLA options vla_ros does not run: {'; '.join(bad)}. Export a checkpoint "
            "trained without them"
        )
    vlm, vlm_src = vlm_config(ckpt, vlm_dir)
    tc, vc = vlm["text_config"], vlm["vision_config"]
    text_layers = int(c.get("num_vlm_layers", 16))
    width = int(tc["hidden_size"])
    expert_width = int(width * float(c.get("expert_width_multiplier", 0.75)))
    head_dim = int(tc.get("head_dim") or width // int(tc["num_attention_heads"]))
    size = int(vc.get("image_size", 512))
    res = _tower_input(c.get("resize_imgs_with_padding"), next(iter(shapes.values())), vc, vlm, where)
    tok_cfg = _tokenizer_step(ckpt)
    max_len = int(tok_cfg.get("max_length", c.get("tokenizer_max_length", 48)))
    tok_name = str(tok_cfg.get("tokenizer_name", c.get("vlm_model_name", SMOLVLM2_500M_NAME)))
    try:
        tok_file: str | None = str(find_tokenizer_file(tok_name, near=ckpt.path, explicit=tokenizer))
        tok_note = None
    except TokenizerNotFoundError as e:
        tok_file, tok_note = None, str(e)
    fps = float(fps or c.get("fps") or DEFAULT_FPS)
    ch, h, w = next(iter(shapes.values()))
    chunk = int(c.get("chunk_size", 50))
    lerobot = {
        "type": "smolvla",
        "source": str(ckpt.path),
        "n_action_steps": int(c.get("n_action_steps", chunk)),
        "cameras": {_camera_name(k): k for k in cams},
        "empty_cameras": n_empty,
        "normalization": {k: ckpt.mode_of(k) for k in (*cams, "observation.state", "action")},
        "vlm_model_name": str(c.get("vlm_model_name")),
        "vlm_config": vlm_src,
        "tokenizer_name": tok_name,
        "tokenizer_missing": tok_note,
        "fps": fps,
    }
    return {
        "type": "lerobot_smolvla",
        "name": f"lerobot_smolvla_{ckpt.path.parent.name or 'policy'}",
        "io": {
            "camera_names": [_camera_name(k) for k in cams],
            "image_size": [h, w],
            "image_channels": ch,
            "state_dim": int(ckpt.input_features["observation.state"].shape[0]),
            "action_dim": int(ckpt.feature("action").shape[0]),
            "horizon": chunk,
            "dt": 1.0 / fps,
            "text_max_len": max_len,
            "tokenizer": f"smolvla:{tok_file}",
        },
        "resize": [int(res[1]), int(res[0])],  # LeRobot's (width, height) -> (height, width)
        "num_steps": int(c.get("num_steps", 10)),
        "max_state_dim": int(c.get("max_state_dim", 32)),
        "max_action_dim": int(c.get("max_action_dim", 32)),
        "tokenizer_file": tok_file,
        "image_normalization": [{"mode": ckpt.mode_of(k), "eps": ckpt.eps} for k in cams],
        "lerobot": lerobot,
        "vision_backbone": {
            "type": "SmolVLMVisionTower",
            "image_size": size,
            "patch_size": int(vc.get("patch_size", 16)),
            "dim": int(vc["hidden_size"]),
            "depth": int(vc.get("num_hidden_layers", 12)),
            "heads": int(vc.get("num_attention_heads", 12)),
            "mlp_hidden": int(vc.get("intermediate_size", 3072)),
            "eps": float(vc.get("layer_norm_eps", 1e-6)),
        },
        "projector": {"type": "PixelShuffleConnector", "scale_factor": int(vlm.get("scale_factor", 4))},
        "llm_backbone": {
            "type": "SmolLMPrefix",
            "vocab_size": int(tc["vocab_size"]),
            "dim": width,
            "num_layers": text_layers,
            "heads": int(tc["num_attention_heads"]),
            "kv_heads": int(tc.get("num_key_value_heads", tc["num_attention_heads"])),
            "head_dim": head_dim,
            "mlp_hidden": int(tc["intermediate_size"]),
            "eps": float(tc.get("rms_norm_eps", 1e-5)),
        },
        "vla_head": {
            "type": "SmolVLAExpert",
            "dim": expert_width,
            "eps": float(tc.get("rms_norm_eps", 1e-5)),
            "self_attn_every_n_layers": int(c.get("self_attn_every_n_layers", 2)),
            "min_period": float(c.get("min_period", 4e-3)),
            "max_period": float(c.get("max_period", 4.0)),
        },
    }


def lerobot_weights(ckpt: LeRobotCheckpoint, model: LeRobotSmolVLA) -> dict[str, Tensor]:
    """The checkpoint tensors the model loads (the unused LM head dropped by name) plus each
    camera's image statistics as ``image_norm.<i>.<stat>`` (none for IDENTITY)."""
    src = {k: v for k, v in ckpt.state_dict.items() if not k.startswith(UNUSED_PREFIXES)}
    cams = [_feature_of(ckpt, c) for c in model.io.camera_names]
    for i, feat in enumerate(cams):
        norm = model.image_norm[i]
        for stat in norm.stat_names:
            src[f"image_norm.{i}.{stat}"] = ckpt.stats[feat][stat].reshape(norm.shape)
    return src


def _feature_of(ckpt: LeRobotCheckpoint, camera: str) -> str:
    """The LeRobot feature of the card camera ``camera`` (inverse of :func:`_camera_name`)."""
    return next(k for k in ckpt.image_features if _camera_name(k) == camera)


@register_lerobot_builder("smolvla")
def build_from_lerobot(
    ckpt: LeRobotCheckpoint,
    fps: float | None = None,
    tokenizer: str | Path | None = None,
    vlm_dir: str | Path | None = None,
) -> LeRobotSmolVLA:
    """The spine SmolVLA for ``ckpt`` with its weights loaded strictly through :data:`NAME_MAPPING`."""
    from vla_ros.spine.compose import build_vla
    from vla_ros.spine.weights import WeightLoadError, load_weights

    cfg = smolvla_model_config(ckpt, fps, tokenizer, vlm_dir)
    try:
        model = build_vla(cfg)
    except (TypeError, ValueError, KeyError) as e:
        raise LeRobotCheckpointError(
            f"{ckpt.path / 'config.json'}: cannot build the SmolVLA model: {e}"
        ) from e
    try:
        load_weights(model, lerobot_weights(ckpt, model), name_mapping=NAME_MAPPING, strict=True)
    except WeightLoadError as e:
        raise LeRobotCheckpointError(
            f"{ckpt.path / 'model.safetensors'} does not fit {ckpt.path / 'config.json'} and its VLM "
            f"config ({cfg['lerobot']['vlm_config']}): {e.report.summary(8)}. The weights, the config "
            "and the VLM config come from different models; copy the whole pretrained_model folder"
        ) from e
    return model.eval()
