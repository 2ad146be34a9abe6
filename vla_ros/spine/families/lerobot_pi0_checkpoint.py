"""LeRobot pi0 / pi0.5 checkpoint folders -> the spine models of :mod:`.lerobot_pi0`.

Architecture from the config's variant names with LeRobot 0.6.1's numbers (``get_gemma_config``:
:data:`GEMMA_VARIANTS`; the SigLIP so400m tower it hard-codes: :data:`SIGLIP_SO400M`; PaliGemma's
vocabulary 257152). A reduced model with variant names LeRobot does not ship describes them in
``gemma_variants.json`` next to config.json (``{"variants": {name: {width, depth, mlp_dim,
num_heads, num_kv_heads, head_dim}}, "vision": {...}, "vocab_size": N}``; written by
``scripts/lerobot_goldens_pi0.py``); another unknown name is a :class:`LeRobotCheckpointError`.

Weights as LeRobot's ``_fix_pytorch_state_dict_keys`` + ``from_pretrained`` load them
(:func:`lerobot_weights`): openpi-style keys without the ``model.`` prefix get it; pi0 renames
``time_mlp_*`` to ``action_time_mlp_*``, pi0.5 the reverse and drops ``state_proj``; pi0.5 drops
plain expert norm weights (AdaRMS has none); PaliGemma's ``lm_head`` fills ``embed_tokens`` when
the checkpoint has no ``embed_tokens`` (tied weights); both ``lm_head``s are then dropped (never
used at inference). Everything else loads strictly through :data:`NAME_MAPPING`.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from torch import Tensor

from vla_ros.spine.checkpoints.build import build_and_load, camera_features, camera_name
from vla_ros.spine.checkpoints.lerobot import (
    LeRobotCheckpoint,
    LeRobotCheckpointError,
    register_lerobot_builder,
)
from vla_ros.spine.components.smolvla_text import TokenizerNotFoundError, find_tokenizer_file
from vla_ros.spine.families.lerobot_flow import image_norm_weights
from vla_ros.spine.families.lerobot_pi0 import LeRobotPi0

PALI = "model.paligemma_with_expert.paligemma"
EXPERT = "model.paligemma_with_expert.gemma_expert"
#: spine model prefix -> LeRobot checkpoint prefix (first match wins; see spine/weights.py)
NAME_MAPPING: dict[str, str] = {
    "vision_backbone": f"{PALI}.model.vision_tower.vision_model",
    "projector": f"{PALI}.model.multi_modal_projector",
    "llm_backbone": f"{PALI}.model.language_model",
    "vla_head.gemma_expert": f"{EXPERT}.model",
    "vla_head": "model",
}
EMBED_KEY = f"{PALI}.model.language_model.embed_tokens.weight"
LM_HEAD_KEY = f"{PALI}.lm_head.weight"
#: keys never used at inference, dropped by name after the lm_head -> embed_tokens tie
UNUSED_PREFIXES = (f"{PALI}.lm_head.", f"{EXPERT}.lm_head.")
VARIANTS_FILE = "gemma_variants.json"
TOKENIZER_NAME = "google/paligemma-3b-pt-224"
#: the layout of :data:`VARIANTS_FILE` (fields of LeRobot's GemmaConfig, transformers' SiglipVisionConfig)
VARIANTS_FORMAT = (
    '{"variants": {<name>: {"width", "depth", "mlp_dim", "num_heads", "num_kv_heads", "head_dim"}}, '
    '"vision": {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", '
    '"patch_size", "layer_norm_eps"}, "vocab_size": <int>}'
)
PALIGEMMA_VOCAB = 257_152
#: LeRobot 0.6.1 ``get_gemma_config`` (openpi's ``gemma.get_config``)
GEMMA_VARIANTS: dict[str, dict[str, int]] = {
    "gemma_300m": {
        "width": 1024,
        "depth": 18,
        "mlp_dim": 4096,
        "num_heads": 8,
        "num_kv_heads": 1,
        "head_dim": 256,
    },
    "gemma_2b": {
        "width": 2048,
        "depth": 18,
        "mlp_dim": 16_384,
        "num_heads": 8,
        "num_kv_heads": 1,
        "head_dim": 256,
    },
}
#: the SigLIP tower LeRobot builds (transformers' PaliGemma default vision config, MLP set to 4304)
SIGLIP_SO400M: dict[str, Any] = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "patch_size": 14,
    "layer_norm_eps": 1e-6,
}
DEFAULT_FPS = 30.0
LOG = logging.getLogger(__name__)
_NORM_KEY = re.compile(
    r"paligemma_with_expert\.gemma_expert\.model\.(layers\.\d+\.(input|post_attention)_layernorm|norm)\.weight"
)


def _tokenizer_step(ckpt: LeRobotCheckpoint) -> dict[str, Any]:
    path = ckpt.path / "policy_preprocessor.json"
    if not path.is_file():
        return {}
    for step in json.loads(path.read_text()).get("steps") or []:
        if isinstance(step, dict) and step.get("registry_name") == "tokenizer_processor":
            return dict(step.get("config") or {})
    return {}


def architecture(ckpt: LeRobotCheckpoint) -> tuple[dict[str, int], dict[str, int], dict[str, Any], int, str]:
    """(vlm variant, expert variant, vision config, vocabulary size, where they came from)."""
    c, where = ckpt.config, ckpt.path / "config.json"
    extra: dict[str, Any] = {}
    f = ckpt.path / VARIANTS_FILE
    if f.is_file():
        try:
            extra = json.loads(f.read_text())
        except ValueError as e:
            raise LeRobotCheckpointError(f"{f} is not valid JSON ({e})") from e
    table = {**GEMMA_VARIANTS, **(extra.get("variants") or {})}
    out = []
    for key in ("paligemma_variant", "action_expert_variant"):
        name = str(c.get(key, "gemma_2b" if key.startswith("pali") else "gemma_300m"))
        if name not in table:
            raise LeRobotCheckpointError(
                f"{where}: {key} {name!r} is not a variant vla_ros knows "
                f"({sorted(GEMMA_VARIANTS)}, LeRobot's); a reduced model describes its variants in {f}: "
                f"{VARIANTS_FORMAT} (docs/lerobot.md)"
            )
        out.append(dict(table[name]))
    vision = {**SIGLIP_SO400M, **(extra.get("vision") or {})}
    vocab = int(extra.get("vocab_size", PALIGEMMA_VOCAB))
    src = f"{f}" if extra else "LeRobot's gemma_2b / gemma_300m / SigLIP so400m numbers"
    return out[0], out[1], vision, vocab, src


def pi_model_config(
    ckpt: LeRobotCheckpoint, fps: float | None = None, tokenizer: str | Path | None = None
) -> dict[str, Any]:
    """The ``build_vla`` config of the spine model for a pi0 / pi0.5 checkpoint (no weights).

    Raises :class:`LeRobotCheckpointError` for what the card cannot map or vla_ros does not run:
    no camera, cameras of different sizes, no state, an environment state, relative actions,
    a non-square ``image_resolution``, unknown variants.
    """
    c, kind = ckpt.config, ckpt.policy_type
    where = ckpt.path / "config.json"
    n_empty = int(c.get("empty_cameras", 0))
    cams = camera_features(ckpt, kind)
    if c.get("use_relative_actions"):
        raise LeRobotCheckpointError(
            f"{where}: use_relative_actions is true; vla_ros does not run relative-action processing yet "
            "(actions would be offsets from the state, not targets); export a checkpoint trained with "
            "use_relative_actions false"
        )
    res = [int(r) for r in c.get("image_resolution") or (224, 224)]
    if res[0] != res[1]:
        raise LeRobotCheckpointError(
            f"{where}: image_resolution {res} is not square; PaliGemma needs square images"
        )
    vlm, exp, vision, vocab, arch_src = architecture(ckpt)
    if (exp["depth"], exp["num_kv_heads"], exp["head_dim"]) != (
        vlm["depth"],
        vlm["num_kv_heads"],
        vlm["head_dim"],
    ):
        raise LeRobotCheckpointError(
            f"{where}: the action expert variant (depth {exp['depth']}, kv heads {exp['num_kv_heads']}, "
            f"head size {exp['head_dim']}) does not fit the PaliGemma variant ({vlm['depth']}, "
            f"{vlm['num_kv_heads']}, {vlm['head_dim']}); they share one KV cache"
        )
    tok_cfg = _tokenizer_step(ckpt)
    max_len = int(tok_cfg.get("max_length", c.get("tokenizer_max_length", 48 if kind == "pi0" else 200)))
    tok_name = str(tok_cfg.get("tokenizer_name", TOKENIZER_NAME))
    try:
        tok_file: str | None = str(find_tokenizer_file(tok_name, near=ckpt.path, explicit=tokenizer))
        tok_note = None
    except TokenizerNotFoundError as e:
        tok_file, tok_note = None, str(e)
    fps = float(fps or c.get("fps") or DEFAULT_FPS)
    ch, h, w = ckpt.input_features[cams[0]].shape
    chunk = int(c.get("chunk_size", 50))
    family = "lerobot_pi0" if kind == "pi0" else "lerobot_pi05"
    lerobot = {
        "type": kind,
        "source": str(ckpt.path),
        "n_action_steps": int(c.get("n_action_steps", chunk)),
        "cameras": {camera_name(k): k for k in cams},
        "empty_cameras": n_empty,
        "normalization": {k: ckpt.mode_of(k) for k in (*cams, "observation.state", "action")},
        "variants": [str(c.get("paligemma_variant")), str(c.get("action_expert_variant"))],
        "architecture": arch_src,
        "dtype": str(c.get("dtype", "float32")),
        "tokenizer_name": tok_name,
        "tokenizer_missing": tok_note,
        "fps": fps,
    }
    head = LeRobotPi0.HEAD_TYPE if kind == "pi0" else "Pi05Expert"
    return {
        "type": family,
        "name": f"{family}_{ckpt.path.parent.name or 'policy'}",
        "io": {
            "camera_names": [camera_name(k) for k in cams],
            "image_size": [h, w],
            "image_channels": ch,
            "state_dim": int(ckpt.input_features["observation.state"].shape[0]),
            "action_dim": int(ckpt.feature("action").shape[0]),
            "horizon": chunk,
            "dt": 1.0 / fps,
            "text_max_len": max_len,
            "tokenizer": f"{kind}:{tok_file}",  # pi0: / pi05: (vla_ros.spine.components.text)
        },
        "resize": res,
        "num_steps": int(c.get("num_inference_steps", 10)),
        "max_state_dim": int(c.get("max_state_dim", 32)),
        "max_action_dim": int(c.get("max_action_dim", 32)),
        "tokenizer_file": tok_file,
        # LeRobot's preprocessor normalizes each camera with its VISUAL mode before the model
        "image_normalization": [{"mode": ckpt.mode_of(k), "eps": ckpt.eps} for k in cams],
        "lerobot": lerobot,
        "vision_backbone": {
            "type": "SiglipVisionTower",
            "image_size": res[0],
            "patch_size": int(vision["patch_size"]),
            "dim": int(vision["hidden_size"]),
            "depth": int(vision["num_hidden_layers"]),
            "heads": int(vision["num_attention_heads"]),
            "mlp_hidden": int(vision["intermediate_size"]),
            "eps": float(vision.get("layer_norm_eps", 1e-6)),
        },
        "projector": {"type": "PaliGemmaProjector"},
        "llm_backbone": {
            "type": "GemmaPrefix",
            "vocab_size": vocab,
            "dim": vlm["width"],
            "num_layers": vlm["depth"],
            "heads": vlm["num_heads"],
            "kv_heads": vlm["num_kv_heads"],
            "head_dim": vlm["head_dim"],
            "mlp_hidden": vlm["mlp_dim"],
        },
        "vla_head": {
            "type": head,
            "dim": exp["width"],
            "mlp_hidden": exp["mlp_dim"],
            "min_period": float(c.get("min_period", 4e-3)),
            "heads": exp["num_heads"],
            "max_period": float(c.get("max_period", 4.0)),
        },
    }


def lerobot_weights(ckpt: LeRobotCheckpoint, model: LeRobotPi0 | None = None) -> dict[str, Tensor]:
    """The checkpoint tensors as LeRobot loads them (see the module docstring), plus, given the
    ``model``, each camera's image statistics as ``image_norm.<i>.<stat>`` (none for IDENTITY;
    :func:`~vla_ros.spine.families.lerobot_flow.image_norm_weights`)."""
    pi05 = ckpt.policy_type == "pi05"
    out: dict[str, Tensor] = {}
    for key, value in ckpt.state_dict.items():
        if not key.startswith("model."):  # openpi-style names (LeRobot's _fix_pytorch_state_dict_keys)
            if pi05 and (key.startswith("state_proj.") or _NORM_KEY.fullmatch(key)):
                continue
            if not pi05 and key.startswith("time_mlp_"):
                key = "action_" + key
            elif pi05 and key.startswith("action_time_mlp_"):
                key = key[len("action_") :]
            key = "model." + key
        out[key] = value
    if EMBED_KEY not in out and LM_HEAD_KEY in out:
        out[EMBED_KEY] = out[LM_HEAD_KEY]
    out = {k: v for k, v in out.items() if not k.startswith(UNUSED_PREFIXES)}
    if model is not None:
        features = [model.lerobot["cameras"][c] for c in model.io.camera_names]
        try:
            out.update(image_norm_weights(model.image_norm, ckpt.stats, features, str(ckpt.path)))
        except ValueError as e:
            raise LeRobotCheckpointError(str(e)) from e
    return out


def check_tokenizer_fits(ckpt: LeRobotCheckpoint, tok_file: str | Path, vocab: int) -> None:
    """:class:`LeRobotCheckpointError` when the tokenizer's ids (its vocabulary, added tokens
    included) do not all have a row in the model's ``vocab``-row embedding table: the tokenizer
    of another model (an id past the table would fail inside the graph, or read a wrong row).
    One warning (also in ``ckpt.warnings``) when it fits but lacks Gemma's layout (``<bos>`` at
    id 2, as PaliGemma's): likely another model's, whose ids would silently differ from LeRobot's.
    A file the ``tokenizers`` library cannot read is left to the tokenizer's own error."""
    try:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tok_file))
        n = tok.get_vocab_size(with_added_tokens=True)
    except Exception:  # not a tokenizers file: reported where it is parsed
        return
    if n <= vocab and tok.token_to_id("<bos>") != 2:
        note = (
            f"tokenizer {tok_file} has no Gemma <bos> at id 2 (it has {tok.token_to_id('<bos>')}): it does "
            f"not look like PaliGemma's ({TOKENIZER_NAME}); with another model's tokenizer the token ids, "
            "and so the actions, differ from LeRobot's. Pass the tokenizer the checkpoint was trained with"
        )
        LOG.warning(note)
        ckpt.warnings.append(note)
    if n > vocab:
        raise LeRobotCheckpointError(
            f"tokenizer {tok_file} has {n} tokens but the {ckpt.policy_type} checkpoint "
            f"{ckpt.path} embeds {vocab} (its embed_tokens rows): it is another model's tokenizer; "
            f"pass PaliGemma's tokenizer.json ({TOKENIZER_NAME}) with --tokenizer"
        )


def _build(
    ckpt: LeRobotCheckpoint, fps: float | None = None, tokenizer: str | Path | None = None
) -> LeRobotPi0:
    cfg = pi_model_config(ckpt, fps, tokenizer)
    if cfg["tokenizer_file"]:
        check_tokenizer_fits(ckpt, cfg["tokenizer_file"], int(cfg["llm_backbone"]["vocab_size"]))
    model = build_and_load(
        ckpt,
        cfg,
        lambda m: lerobot_weights(ckpt, m),
        NAME_MAPPING,
        label=ckpt.policy_type,
        config_desc=f" ({cfg['lerobot']['architecture']})",
        sources="The weights and the config",
    )
    assert isinstance(model, LeRobotPi0)
    dtype = cfg["lerobot"]["dtype"]
    if dtype != "float32":
        note = (
            f"{ckpt.path / 'config.json'}: dtype {dtype!r}: vla_ros runs this {ckpt.policy_type} in float32 "
            f"(its {dtype} weights widen exactly); LeRobot runs it in {dtype} (vision tower, projector and "
            "norms in float32), so their actions differ by that rounding (~1e-2 on the live lane's "
            "reduced models). LeRobot loaded with dtype float32 is the parity reference"
        )
        LOG.warning(note)
        ckpt.warnings.append(note)
    return model


def build_in_place(
    ckpt: LeRobotCheckpoint, fps: float | None = None, tokenizer: str | Path | None = None
) -> LeRobotPi0:
    """The spine model for ``ckpt`` built on the meta device with the checkpoint's own tensors
    assigned: no second copy of the weights (peak memory about the checkpoint's size, ~8.3 GB
    for a bf16 pi0 / pi0.5 at full size instead of 16 GB fp32 plus the file), and their dtypes
    kept: a ``dtype: bfloat16`` checkpoint runs in LeRobot's mixed precision (bf16 Gemmas and
    projections, fp32 SigLIP, projector and RMSNorm weights). The tensors are shared with
    ``ckpt.state_dict``. Names and shapes are checked as :func:`build_pi0` does;
    :class:`LeRobotCheckpointError` on a mismatch.
    """
    import torch

    from vla_ros.spine.compose import build_vla
    from vla_ros.spine.weights import WeightLoadError, _check_mapping, load_weights, map_name

    cfg = pi_model_config(ckpt, fps, tokenizer)
    with torch.device("meta"):
        model = build_vla(cfg)
    weights = lerobot_weights(ckpt, model)
    try:
        load_weights(model, weights, name_mapping=NAME_MAPPING, strict=True)  # checks only (meta)
    except WeightLoadError as e:
        raise LeRobotCheckpointError(f"{ckpt.path / 'model.safetensors'}: {e.report.summary(8)}") from e
    pairs = _check_mapping(NAME_MAPPING)
    model.load_state_dict({k: weights[map_name(k, pairs)] for k in model.state_dict()}, assign=True)
    model.register_times()  # the one buffer that is not a weight
    assert isinstance(model, LeRobotPi0)
    return model.eval()


@register_lerobot_builder("pi0")
def build_pi0(
    ckpt: LeRobotCheckpoint, fps: float | None = None, tokenizer: str | Path | None = None
) -> LeRobotPi0:
    """The spine pi0 for ``ckpt``, weights loaded strictly through :data:`NAME_MAPPING`."""
    return _build(ckpt, fps, tokenizer)


@register_lerobot_builder("pi05")
def build_pi05(
    ckpt: LeRobotCheckpoint, fps: float | None = None, tokenizer: str | Path | None = None
) -> LeRobotPi0:
    """The spine pi0.5 for ``ckpt``, weights loaded strictly through :data:`NAME_MAPPING`."""
    return _build(ckpt, fps, tokenizer)
