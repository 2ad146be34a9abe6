"""LeRobot SmolVLA folder -> the spine model (:class:`.lerobot_smolvla.LeRobotSmolVLA`).

Reads the checkpoint's config (and its VLM's ``config.json``, found like the tokenizer, or the
built-in SmolVLM2-500M numbers), refuses what vla_ros does not run (naming the field, its value
and what is supported), and loads the weights strictly through
:data:`~vla_ros.spine.families.lerobot_smolvla.NAME_MAPPING`. Registered as the LeRobot builder
of ``type: smolvla``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from vla_ros.spine.checkpoints.build import build_and_load, camera_features, camera_name
from vla_ros.spine.checkpoints.lerobot import (
    LeRobotCheckpoint,
    LeRobotCheckpointError,
    processor_file,
    register_lerobot_builder,
)
from vla_ros.spine.components.smolvla_text import (
    TokenizerNotFoundError,
    find_tokenizer_file,
    find_vlm_file,
)
from vla_ros.spine.families.lerobot_smolvla import (
    DEFAULT_FPS,
    NAME_MAPPING,
    SMOLVLM2_500M,
    SMOLVLM2_500M_NAME,
    UNUSED_PREFIXES,
    LeRobotSmolVLA,
)


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
    cams = camera_features(ckpt, "SmolVLA")
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
    res = _tower_input(c.get("resize_imgs_with_padding"), ckpt.input_features[cams[0]].shape, vc, vlm, where)
    tok_cfg = _tokenizer_step(ckpt)
    max_len = int(tok_cfg.get("max_length", c.get("tokenizer_max_length", 48)))
    tok_name = str(tok_cfg.get("tokenizer_name", c.get("vlm_model_name", SMOLVLM2_500M_NAME)))
    try:
        tok_file: str | None = str(find_tokenizer_file(tok_name, near=ckpt.path, explicit=tokenizer))
        tok_note = None
    except TokenizerNotFoundError as e:
        tok_file, tok_note = None, str(e)
    fps = float(fps or c.get("fps") or DEFAULT_FPS)
    ch, h, w = ckpt.input_features[cams[0]].shape
    chunk = int(c.get("chunk_size", 50))
    lerobot = {
        "type": "smolvla",
        "source": str(ckpt.path),
        "n_action_steps": int(c.get("n_action_steps", chunk)),
        "cameras": {camera_name(k): k for k in cams},
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
            "camera_names": [camera_name(k) for k in cams],
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
    """The LeRobot feature of the card camera ``camera`` (inverse of
    :func:`~vla_ros.spine.checkpoints.build.camera_name`)."""
    return next(k for k in ckpt.image_features if camera_name(k) == camera)


@register_lerobot_builder("smolvla")
def build_from_lerobot(
    ckpt: LeRobotCheckpoint,
    fps: float | None = None,
    tokenizer: str | Path | None = None,
    vlm_dir: str | Path | None = None,
) -> LeRobotSmolVLA:
    """The spine SmolVLA for ``ckpt`` with its weights loaded strictly through :data:`NAME_MAPPING`."""
    cfg = smolvla_model_config(ckpt, fps, tokenizer, vlm_dir)
    model = build_and_load(
        ckpt,
        cfg,
        lambda m: lerobot_weights(ckpt, m),
        NAME_MAPPING,
        label="SmolVLA",
        config_desc=f" and its VLM config ({cfg['lerobot']['vlm_config']})",
        sources="The weights, the config and the VLM config",
    )
    assert isinstance(model, LeRobotSmolVLA)
    return model
