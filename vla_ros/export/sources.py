"""What the user handed over -> a model: foreign checkpoint folders for ``vla-ros export``.

A LeRobot ``pretrained_model`` folder (``config.json`` + ``model.safetensors`` + processor files,
or the pre-0.4 layout) is read by :mod:`vla_ros.spine.checkpoints` (no LeRobot import), built as
the spine model of its family with the weights loaded strictly, and exported like any spine
model. The card gets:

- cameras: ``observation.images.<cam>`` -> camera ``<cam>`` at the feature's ``H x W``;
- joints: ``observation.state`` / ``action`` -> ``state_joints`` / ``action_joints``, named from
  the feature's ``names`` in config.json when present, else ``joint_0..``;
- normalization: state and action as the card's ``(mean, std)`` pair reproducing LeRobot's mode
  (:func:`~vla_ros.spine.checkpoints.normalize.card_affine`); images are normalized inside the
  model graph with their ``[3, 1, 1]`` statistics;
- ``io.horizon`` = ``chunk_size``, ``io.dt`` = 1 / ``fps`` (LeRobot configs do not record the
  dataset's rate: pass ``--fps``, default 30), ``io.extra.lerobot`` = ``n_action_steps``,
  ``temporal_ensemble_coeff``, the modes per feature and the source folder.

SmolVLA (``type: smolvla``) also needs its VLM's ``tokenizer.json`` (LeRobot saves only the
tokenizer's name): ``--tokenizer PATH`` (the file, or a folder holding it), else it is looked
up under the config's ``vlm_model_name`` / the preprocessor's ``tokenizer_name`` as a local
folder and in the Hugging Face cache
(:func:`~vla_ros.spine.components.smolvla_text.find_tokenizer_file`). The file (and its
``tokenizer_config.json`` when present, which may set the truncation side) is copied into the
card (roles ``tokenizer`` / ``tokenizer_config``, hashed, part of the policy id) and the card
names it ``io.tokenizer: smolvla:tokenizer.json``, so the robot needs no hub. The card's
layout is ``split`` (prefix graph -> KV cache, step graph -> one Euler step, the loop in the
runtime on noise ``[horizon, max_action_dim]``); ``--layout monolithic`` is kept as an option.

pi0 / pi0.5 (``type: pi0`` / ``pi05``) need PaliGemma's ``tokenizer.json`` the same way (the
preprocessor's ``tokenizer_name``, ``google/paligemma-3b-pt-224`` by default, looked up as a local
folder near the checkpoint and in the Hugging Face cache, or ``--tokenizer PATH``); it is copied
into the card the same way and named ``io.tokenizer: pi0:tokenizer.json`` (the newline-terminated
task) or ``pi05:tokenizer.json`` (the prompt ``"Task: ..., State: ...;\nAction: "`` with the
normalized state in 256 bins, tokenized by the runtime once per observation from the card's
state normalization: LeRobot's QUANTILES ``q01`` / ``q99`` as the card's affine pair). The
layout is ``split`` (pi0's state reaches the step graph as the prefix output ``prefix_state``;
pi0.5's prefix graph reads the state only through the tokens); ``--layout monolithic`` is kept.

Bad input (not a LeRobot folder, unsupported type, config/weights mismatch, a feature the card
cannot map, a tokenizer that is not found or is not a tokenizers file, ``--tokenizer`` for a
type without instructions) raises :class:`SourceError` before anything is written; the CLI
exits 2 on it.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vla_ros.contract.card import CARD_FILE, Normalization, PolicyCard, Stats, sha256_file
from vla_ros.contract.errors import ExportError, ModelFileError
from vla_ros.runtime.checkpoint import apply_state_dict, load_state_dict

DEFAULT_FPS = 30.0
#: file names of a SmolVLA / pi0 / pi0.5 card's tokenizer copy (card roles ``tokenizer`` /
#: ``tokenizer_config``)
CARD_TOKENIZER = "tokenizer.json"
CARD_TOKENIZER_CONFIG = "tokenizer_config.json"
#: LeRobot type -> (tokenizer kind of the card's spec, the VLM whose tokenizer it is)
TOKENIZER_KINDS: dict[str, tuple[str, str]] = {
    "smolvla": ("smolvla", "SmolVLA needs its VLM's tokenizer.json"),
    "pi0": ("pi0", "pi0 needs PaliGemma's tokenizer.json"),
    "pi05": ("pi05", "pi0.5 needs PaliGemma's tokenizer.json"),
}


class SourceError(ExportError):
    """The model source the user handed over cannot become a policy (bad input; CLI exit 2)."""


def is_foreign_folder(path: str | Path) -> bool:
    """True for a folder ``vla-ros export`` reads as a LeRobot checkpoint: it (or its
    ``pretrained_model`` child) holds a ``config.json`` and no ``card.yaml``."""
    p = Path(path)
    if not p.is_dir() or (p / "card.yaml").is_file():
        return False
    return (p / "config.json").is_file() or (p / "pretrained_model" / "config.json").is_file()


def lerobot_card_name(folder: Path) -> str:
    """The card name for a LeRobot checkpoint folder (``--name`` overrides it): the training run
    for ``outputs/train/<run>/checkpoints/<step or last>[/pretrained_model]`` (what
    ``lerobot-train`` writes; the step folder would name every card ``last``), else the parent
    of a ``pretrained_model`` folder, else the folder's own name."""
    folder = Path(folder)
    if folder.name == "pretrained_model":
        folder = folder.parent
    if folder.parent.name == "checkpoints" and folder.parent.parent.name:
        return folder.parent.parent.name
    return folder.name


def _names(cfg: dict[str, Any], feature: str, dim: int) -> list[str] | None:
    spec = {**(cfg.get("input_features") or {}), **(cfg.get("output_features") or {})}.get(feature) or {}
    names = spec.get("names")
    if isinstance(names, dict):  # LeRobot dataset style {"motors": [...]}
        names = next(iter(names.values()), None)
    if isinstance(names, list) and len(names) == dim and all(isinstance(n, str) for n in names):
        return list(names)
    return None


def _stats(ckpt: Any, feature: str, dim: int, inverse: bool) -> Stats:
    from vla_ros.spine.checkpoints import card_affine

    mode = ckpt.mode_of(feature)
    if mode == "IDENTITY":
        return Stats.identity(dim)
    mean, std = card_affine(mode, ckpt.stats[feature], ckpt.eps, inverse=inverse)
    return Stats(mean=mean, std=std)


@dataclasses.dataclass
class LeRobotSource:
    """A LeRobot folder turned into a spine model plus what its card needs."""

    model: Any
    model_config: dict[str, Any]
    name: str
    state_joints: list[str]
    action_joints: list[str]
    normalization: Normalization
    provenance: dict[str, Any]
    #: SmolVLA / pi0 / pi0.5: the tokenizer.json the card gets a copy of (absolute), else None
    tokenizer_file: Path | None = None
    #: the card's tokenizer kind (``smolvla`` / ``pi0`` / ``pi05``) when it has a tokenizer file
    tokenizer_kind: str | None = None


def _check_tokenizer_arg(tokenizer: str | Path | None, policy_type: str) -> Path | None:
    """``--tokenizer``: SmolVLA / pi0 / pi0.5 only, and it must exist (a file, or a folder with
    tokenizer.json)."""
    if tokenizer is None:
        return None
    if policy_type not in TOKENIZER_KINDS:
        raise SourceError(
            f"--tokenizer {str(tokenizer)!r} applies to SmolVLA checkpoints (and pi0 / pi0.5); "
            f"this one is {policy_type!r}, which takes no instruction: drop --tokenizer"
        )
    p = Path(tokenizer).expanduser()
    f = p / CARD_TOKENIZER if p.is_dir() else p
    if not f.is_file():
        raise SourceError(
            f"--tokenizer {str(tokenizer)!r}: no such file ({f} does not exist); give the VLM's "
            "tokenizer.json, or a folder holding it"
        )
    return f.resolve()


def _sampler_overrides(policy_type: str, sampler: str | None, steps: int | None) -> dict[str, Any]:
    """``--sampler`` / ``--sampler-steps`` as builder overrides (Diffusion Policy only)."""
    if sampler is None and steps is None:
        return {}
    if policy_type != "diffusion":
        raise SourceError(
            f"--sampler/--sampler-steps apply to Diffusion Policy checkpoints; this one is "
            f"{policy_type!r}: drop them"
        )
    if sampler is not None and sampler not in ("DDIM", "DDPM"):
        raise SourceError(f"--sampler {sampler!r} is not DDIM or DDPM")
    if steps is not None and steps < 1:
        raise SourceError(f"--sampler-steps {steps} must be >= 1")
    out: dict[str, Any] = {}
    if sampler is not None:
        out["noise_scheduler_type"] = sampler
    if steps is not None:
        out["num_inference_steps"] = int(steps)
    return out


def _build(ckpt: Any, tokenizer: Path | None, overrides: dict[str, Any] | None = None) -> Any:
    from vla_ros.spine.checkpoints import build_lerobot_policy

    kind = ckpt.policy_type
    if kind not in TOKENIZER_KINDS:
        return build_lerobot_policy(ckpt, **(overrides or {}))
    if kind == "smolvla":
        from vla_ros.spine.families.lerobot_smolvla_checkpoint import build_from_lerobot

        model = build_from_lerobot(ckpt, tokenizer=tokenizer).eval()
    else:
        from vla_ros.spine.families.lerobot_pi0_checkpoint import build_pi0

        model = build_pi0(ckpt, tokenizer=tokenizer)  # pi0 and pi0.5 alike
    if not model.tokenizer_file:
        raise SourceError(
            f"{ckpt.path}: {TOKENIZER_KINDS[kind][1]} and it was not found: "
            f"{model.lerobot.get('tokenizer_missing')}\nOr pass it: vla-ros export {ckpt.path} "
            "--tokenizer PATH/tokenizer.json"
        )
    return model


def _check_tokenizer_file(kind: str, path: Path) -> None:
    """:class:`SourceError` when ``path`` is not a tokenizers file (before anything is written)."""
    from vla_ros.spine.components.text import get_tokenizer

    try:
        get_tokenizer(f"{kind}:{path}")
    except (ValueError, OSError) as e:
        raise SourceError(
            f"tokenizer {path}: {e}; give the VLM's tokenizer.json (the tokenizers library's "
            "JSON file, not tokenizer.model or tokenizer_config.json)"
        ) from e


def load_lerobot_source(
    path: str | Path,
    fps: float | None = None,
    name: str | None = None,
    tokenizer: str | Path | None = None,
    sampler: str | None = None,
    sampler_steps: int | None = None,
) -> LeRobotSource:
    """Read and build a LeRobot checkpoint folder; :class:`SourceError` on any bad input.

    ``tokenizer`` (SmolVLA, pi0, pi0.5): the VLM's ``tokenizer.json`` or a folder holding it;
    by default it is looked up by name (see the module docstring). ``sampler`` (``DDIM`` |
    ``DDPM``) and ``sampler_steps`` (Diffusion Policy): the deployed sampler, default the
    checkpoint's own (DDPM draws fresh noise at every step, so only DDIM is parity-checkable).
    """
    from vla_ros.spine.checkpoints import LeRobotCheckpointError, read_lerobot_folder

    if fps is not None and not fps > 0:
        raise SourceError(f"--fps {fps} must be > 0 (the rate the policy's dataset was recorded at)")
    try:
        ckpt = read_lerobot_folder(path)
        tok_arg = _check_tokenizer_arg(tokenizer, ckpt.policy_type)
        model = _build(ckpt, tok_arg, _sampler_overrides(ckpt.policy_type, sampler, sampler_steps))
        if ckpt.policy_type == "diffusion":  # DDPM draws noise inside its steps: DDIM only
            from vla_ros.spine.families.lerobot_diffusion import check_exportable

            check_exportable(ckpt, model, sampler)
    except LeRobotCheckpointError as e:
        raise SourceError(str(e)) from e
    # LeRobot configs do not record the dataset's rate; the card's dt comes from --fps
    dt = 1.0 / float(fps or ckpt.config.get("fps") or DEFAULT_FPS)
    model.io = dataclasses.replace(model.io, dt=dt)
    cfg = dict(model.config)
    cfg["io"] = {**cfg["io"], "dt": dt}
    cfg.pop("name", None)
    tok_file = None
    tok_kind = TOKENIZER_KINDS[ckpt.policy_type][0] if ckpt.policy_type in TOKENIZER_KINDS else None
    if tok_kind is not None:
        # the found file, absolute (the export's parity gate tokenizes through it); the card
        # names its own copy once written (export_lerobot)
        tok_file = Path(model.tokenizer_file).resolve()
        _check_tokenizer_file(tok_kind, tok_file)
        model.tokenizer_file = str(tok_file)
        model._tokenizer = None
        model.io = dataclasses.replace(model.io, tokenizer=f"{tok_kind}:{tok_file}")
        cfg["io"] = {**cfg["io"], "tokenizer": f"{tok_kind}:{tok_file}"}
        cfg["tokenizer_file"] = str(tok_file)
    io = model.io
    state_names = _names(ckpt.config, "observation.state", io.state_dim)
    state_joints = state_names or [f"joint_{i}" for i in range(io.state_dim)]
    action_joints = _names(ckpt.config, "action", io.action_dim) or (
        state_joints if io.action_dim == io.state_dim else [f"joint_{i}" for i in range(io.action_dim)]
    )
    norm = Normalization(
        state=_stats(ckpt, "observation.state", io.state_dim, inverse=False),
        action=_stats(ckpt, "action", io.action_dim, inverse=True),
    )
    folder = ckpt.path
    default_name = lerobot_card_name(folder)
    prov = {
        "source": f"LeRobot {ckpt.policy_type} checkpoint ({ckpt.layout} layout)",
        "checkpoint": str(folder),
        "lerobot_config": {k: ckpt.config.get(k) for k in ("type", "chunk_size", "n_action_steps")},
        "warnings": list(ckpt.warnings),
    }
    if tok_file is not None:
        prov["tokenizer"] = {"source": str(tok_file), "name": model.lerobot.get("tokenizer_name")}
    return LeRobotSource(
        model,
        cfg,
        name or default_name or ckpt.policy_type,
        state_joints,
        action_joints,
        norm,
        prov,
        tok_file,
        tok_kind,
    )


def attach_tokenizer(card: PolicyCard, src: Path, kind: str = "smolvla") -> None:
    """Copy ``src`` (and its ``tokenizer_config.json``) into the card; the card names the copy
    with tokenizer kind ``kind`` (``smolvla`` / ``pi0`` / ``pi05``).

    On failure the card.yaml the export wrote is removed (no card that needs the source
    machine's files is left), and :class:`ExportError` says what could not be written.
    """

    root = Path(card.root)  # type: ignore[arg-type]
    try:
        shutil.copyfile(src, root / CARD_TOKENIZER)
        card.add_file("tokenizer", CARD_TOKENIZER)
        cfg_src = src.with_name(CARD_TOKENIZER_CONFIG)
        if cfg_src.is_file():
            shutil.copyfile(cfg_src, root / CARD_TOKENIZER_CONFIG)
            card.add_file("tokenizer_config", CARD_TOKENIZER_CONFIG)
    except OSError as e:
        (root / CARD_FILE).unlink(missing_ok=True)
        raise ExportError(f"cannot copy the tokenizer {src} into the card {root}: {e}") from e
    spec = f"{kind}:{CARD_TOKENIZER}"  # relative: the runtime looks it up in the card folder
    card.io = dataclasses.replace(card.io, tokenizer=spec)
    if card.model_config:
        card.model_config["io"] = {**card.model_config["io"], "tokenizer": spec}
        card.model_config["tokenizer_file"] = None  # the model file needs none; the runtime tokenizes


CONFIG_SUFFIXES = (".yaml", ".yml")
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")


def classify_sources(sources: Iterable[str | Path]) -> tuple[Path | None, Path | None, Path | None]:
    """Split CLI MODEL arguments into (config YAML, checkpoint, existing card folder)."""
    config = ckpt = card = None
    for s in sources:
        p = Path(s)
        if p.is_dir() and (p / CARD_FILE).is_file():
            card = p
        elif p.suffix.lower() in CONFIG_SUFFIXES or (not p.suffix and not p.exists()):
            config = p
        elif p.suffix.lower() in CHECKPOINT_SUFFIXES or p.is_dir():
            ckpt = p
        else:
            raise ExportError(
                f"cannot tell what MODEL {str(s)!r} is: give a family YAML (.yaml), a checkpoint "
                f"({', '.join(CHECKPOINT_SUFFIXES)}), or an existing policy card folder"
            )
    return config, ckpt, card


def _config_for_checkpoint(ckpt: Path) -> dict[str, Any]:
    """The model config that goes with a checkpoint given alone."""
    for cand in (ckpt.with_suffix(".yaml"), ckpt.parent / "config.yaml"):
        if cand.is_file() and cand != ckpt:
            from vla_ros.spine.config import load_config

            return load_config(cand)
    if ckpt.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(ckpt), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as e:  # safetensors raises its own error types
            raise ModelFileError(f"checkpoint {str(ckpt)!r} is not valid safetensors: {e}") from e
        if "config" in meta:
            return json.loads(meta["config"])
    raise ExportError(
        f"checkpoint {str(ckpt)!r} came without a model config: pass the family YAML too "
        f"(vla-ros export MODEL.yaml {ckpt}), or put it next to the checkpoint as "
        f"{ckpt.with_suffix('.yaml').name} or config.yaml"
    )


def build_model(
    config: str | Path | Mapping[str, Any] | None, checkpoint: str | Path | None, seed: int = 0
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Build the spine model (seeded init, then the checkpoint) -> (model, config, provenance)."""
    import torch

    from vla_ros.spine import build_vla
    from vla_ros.spine.config import load_config

    prov: dict[str, Any] = {}
    if config is None and checkpoint is None:
        raise ExportError("export needs a model: a family YAML and/or a checkpoint")
    if config is None:
        cfg = _config_for_checkpoint(Path(checkpoint))  # type: ignore[arg-type]
    elif isinstance(config, Mapping):
        cfg = dict(config)
    else:
        try:
            path = Path(config)
            cfg = load_config(path)
            prov["config"] = str(path)
        except FileNotFoundError as e:
            raise ExportError(str(e)) from e
    # ``pretrained`` weights are loaded here (safely, with vla_ros errors), not by build_vla,
    # and stay out of the card's model_config: the card's own safetensors replace them.
    pretrained = cfg.pop("pretrained", None)
    mapping, strict = None, True
    if pretrained is not None:
        if not isinstance(pretrained, Mapping) or "path" not in pretrained:
            raise ExportError(
                f"config 'pretrained' must be a mapping with 'path' (and optional name_mapping, "
                f"strict), got {pretrained!r}"
            )
        prov["pretrained"] = dict(pretrained)
        if checkpoint is None:
            checkpoint = pretrained["path"]
            mapping = pretrained.get("name_mapping")
            strict = bool(pretrained.get("strict", True))
    torch.manual_seed(seed)
    try:
        model = build_vla(cfg)
    except (TypeError, ValueError, KeyError) as e:
        raise ExportError(f"cannot build the model from its config: {e}") from e
    if checkpoint is not None:
        state = load_state_dict(checkpoint)
        apply_state_dict(model, state, str(checkpoint), mapping or cfg.get("name_mapping"), strict=strict)
        p = Path(checkpoint)
        prov["checkpoint"] = str(p)
        if p.is_file():
            prov["checkpoint_sha256"] = sha256_file(p)
    else:
        prov["checkpoint"] = None
        prov["weights"] = f"random initialization (torch.manual_seed({seed}))"
    return model.eval(), cfg, prov
