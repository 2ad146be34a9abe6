"""Reader of LeRobot ``pretrained_model`` folders (vla_ros's own code; LeRobot is never imported).

Interface (shared by every LeRobot family)::

    from vla_ros.spine.checkpoints import read_lerobot_folder, build_lerobot_policy, LEROBOT_BUILDERS

    ckpt = read_lerobot_folder("outputs/train/act/checkpoints/last/pretrained_model")
    ckpt.policy_type        # "act", "diffusion", ...  (config.json "type")
    ckpt.config             # config.json as a dict
    ckpt.state_dict         # model.safetensors, keys as stored ("model.encoder...", "diffusion....");
                            # pre-0.4 normalization buffers removed (they are in .stats)
    ckpt.stats              # {"observation.state": {"mean": T, "std": T, ...}, ...}; images [3, 1, 1]
    ckpt.norm_map           # {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"}
    ckpt.input_features     # {"observation.images.top": LeRobotFeature("VISUAL", (3, 480, 640)), ...}
    ckpt.output_features    # {"action": LeRobotFeature("ACTION", (14,))}
    ckpt.normalizer("observation.state")   # FeatureNormalizer with LeRobot's formula for it
    model = build_lerobot_policy(ckpt)     # the spine model of its family, weights loaded strictly

A family registers a builder ``Callable[[LeRobotCheckpoint], nn.Module]`` under the LeRobot
``type`` it reads::

    @register_lerobot_builder("diffusion")
    def build_diffusion(ckpt: LeRobotCheckpoint) -> BaseVLA: ...

The builder returns a :class:`~vla_ros.spine.base_vla.BaseVLA` whose ``config`` (a ``build_vla``
config dict) rebuilds it, with the weights loaded strictly (a missing, unexpected or mis-shaped
key raises naming it). Its ``predict_action`` takes the spine inputs (images ``[B, 1, N, 3, H, W]``
in [0, 1], state normalized with ``ckpt``'s state normalizer) and returns normalized actions; the
card carries the state/action normalization (:func:`~vla_ros.spine.checkpoints.normalize.card_affine`)
and the model carries the image normalization.

Folder layouts read:

- LeRobot 0.5-0.6: ``config.json``, ``model.safetensors``, ``policy_preprocessor.json`` (its
  ``normalizer_processor`` step: eps, features, norm_map, state_file) and
  ``policy_postprocessor.json`` (``unnormalizer_processor``), stats as flat ``"<feature>.<stat>"``.
- pre-0.4: no processor files; the stats are ``normalize_inputs.buffer_<feature, dots as
  underscores>.<stat>`` (and ``normalize_targets.`` / ``unnormalize_outputs.`` for the action) inside
  ``model.safetensors``; the modes come from ``config.json``'s ``normalization_mapping``.

A feature absent from the stats is passed through unchanged, as LeRobot does (recorded in
``ckpt.warnings``); a feature present but lacking its mode's statistics is an error.
Every failure is a :class:`LeRobotCheckpointError` naming the file, the value and the fix.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vla_ros.contract.errors import VlaRosError
from vla_ros.spine.checkpoints.normalize import DEFAULT_EPS, MODE_STATS, NORM_MODES, FeatureNormalizer

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PREPROCESSOR_FILE = "policy_preprocessor.json"
POSTPROCESSOR_FILE = "policy_postprocessor.json"
FEATURE_TYPES = ("VISUAL", "STATE", "ACTION", "ENV")
#: state-dict prefixes of the pre-0.4 normalization modules (LeRobot's migration script's list)
LEGACY_NORM_PREFIXES = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")
LAYOUT_HINT = (
    "a LeRobot pretrained_model folder holds config.json, model.safetensors and (LeRobot >= 0.4) "
    "policy_preprocessor.json / policy_postprocessor.json with their .safetensors; it is the folder "
    "save_pretrained wrote (outputs/train/<run>/checkpoints/last/pretrained_model, or a hub snapshot)"
)


class LeRobotCheckpointError(VlaRosError, ValueError):
    """A folder is not a readable LeRobot checkpoint, or one vla_ros cannot build."""


@dataclass(frozen=True)
class LeRobotFeature:
    """One entry of ``input_features`` / ``output_features``: type and per-sample shape."""

    type: str  # VISUAL | STATE | ACTION | ENV
    shape: tuple[int, ...]


@dataclass
class LeRobotCheckpoint:
    """What a LeRobot ``pretrained_model`` folder holds; see the module docstring."""

    path: Path
    policy_type: str
    config: dict[str, Any]
    state_dict: dict[str, Tensor]
    stats: dict[str, dict[str, Tensor]]
    norm_map: dict[str, str]
    input_features: dict[str, LeRobotFeature]
    output_features: dict[str, LeRobotFeature]
    layout: str = "processor"  # "processor" (LeRobot >= 0.4) or "legacy" (stats in the weights)
    eps: float = DEFAULT_EPS
    warnings: list[str] = field(default_factory=list)

    def features_of(self, ftype: str) -> list[str]:
        """Feature names of one type, inputs then outputs, in config order (LeRobot's order)."""
        feats = {**self.input_features, **self.output_features}
        return [k for k, f in feats.items() if f.type == ftype]

    @property
    def image_features(self) -> list[str]:
        """``observation.images.*`` features in config order (the order cameras are encoded in)."""
        return self.features_of("VISUAL")

    def feature(self, name: str) -> LeRobotFeature:
        """The feature ``name``; :class:`LeRobotCheckpointError` listing the features if absent."""
        feats = {**self.input_features, **self.output_features}
        if name not in feats:
            raise LeRobotCheckpointError(
                f"{self.path / CONFIG_FILE} has no feature {name!r}; it has {sorted(feats)}"
            )
        return feats[name]

    def mode_of(self, name: str) -> str:
        """The normalization mode LeRobot applies to feature ``name`` (IDENTITY without stats)."""
        mode = self.norm_map.get(self.feature(name).type, "IDENTITY")
        return mode if name in self.stats else "IDENTITY"

    def normalizer(self, name: str) -> FeatureNormalizer:
        """A :class:`FeatureNormalizer` computing LeRobot's (un)normalization of feature ``name``."""
        f = self.feature(name)
        shape = (f.shape[0], 1, 1) if f.type == "VISUAL" else tuple(f.shape)
        mode = self.mode_of(name)
        try:
            return FeatureNormalizer(
                mode, shape, self.stats.get(name) if mode != "IDENTITY" else None, self.eps
            )
        except ValueError as e:
            raise LeRobotCheckpointError(f"{self.path}: feature {name!r}: {e}") from e


# ----------------------------------------------------------------------------- builders
LEROBOT_BUILDERS: dict[str, Callable[[LeRobotCheckpoint], nn.Module]] = {}


def register_lerobot_builder(
    policy_type: str,
) -> Callable[[Callable[[LeRobotCheckpoint], nn.Module]], Callable[[LeRobotCheckpoint], nn.Module]]:
    """Decorator: register a builder for LeRobot policies of ``type == policy_type``."""

    def add(fn: Callable[[LeRobotCheckpoint], nn.Module]) -> Callable[[LeRobotCheckpoint], nn.Module]:
        old = LEROBOT_BUILDERS.get(policy_type)
        if old is not None and (old.__module__, old.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(
                f"a LeRobot builder for {policy_type!r} is already registered ({old.__module__})"
            )
        LEROBOT_BUILDERS[policy_type] = fn
        return fn

    return add


def supported_types() -> list[str]:
    """LeRobot policy types vla_ros can build (the families register on import)."""
    importlib.import_module("vla_ros.spine.families")
    return sorted(LEROBOT_BUILDERS)


def build_lerobot_policy(ckpt: LeRobotCheckpoint, **overrides: Any) -> nn.Module:
    """The spine model for ``ckpt`` with its weights loaded strictly (eval mode).

    ``overrides`` go to the family's builder (e.g. Diffusion Policy's ``noise_scheduler_type``
    and ``num_inference_steps``: deploy a DDPM-trained checkpoint with DDIM in K steps).
    """
    types = supported_types()
    if ckpt.policy_type not in LEROBOT_BUILDERS:
        raise LeRobotCheckpointError(
            f"{ckpt.path / CONFIG_FILE}: LeRobot policy type {ckpt.policy_type!r} is not supported; "
            f"vla_ros builds {types}"
        )
    return LEROBOT_BUILDERS[ckpt.policy_type](ckpt, **overrides).eval()


# ----------------------------------------------------------------------------- reading
def is_lerobot_folder(path: str | Path) -> bool:
    """True for a folder (or its ``pretrained_model`` child) holding a LeRobot config.json."""
    p = Path(path)
    if not p.is_dir():
        return False
    p = p / "pretrained_model" if (p / "pretrained_model" / CONFIG_FILE).is_file() else p
    cfg = p / CONFIG_FILE
    if not cfg.is_file():
        return False
    try:
        data = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict) and "type" in data and ("input_features" in data or "output_features" in data)
    )


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise LeRobotCheckpointError(f"cannot read {path}: {e}") from e
    except ValueError as e:
        raise LeRobotCheckpointError(f"{path} is not valid JSON ({e}); copy the checkpoint again") from e
    if not isinstance(data, dict):
        raise LeRobotCheckpointError(f"{path} holds a {type(data).__name__}, expected a JSON object")
    return data


def _safetensors(path: Path) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise LeRobotCheckpointError(f"{path} is missing; {LAYOUT_HINT}")
    try:
        return dict(load_file(str(path)))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise LeRobotCheckpointError(
            f"{path} is not readable safetensors ({str(e)[:200]}); it is truncated or corrupt, copy it again"
        ) from e


def _features(cfg: dict[str, Any], key: str, where: Path) -> dict[str, LeRobotFeature]:
    raw = cfg.get(key) or {}
    if not isinstance(raw, dict):
        raise LeRobotCheckpointError(f"{where}: {key!r} must be an object of features, got {raw!r}")
    out = {}
    for name, spec in raw.items():
        try:
            ftype = str(spec["type"]).upper()
            shape = tuple(int(s) for s in spec["shape"])
        except (KeyError, TypeError, ValueError) as e:
            raise LeRobotCheckpointError(
                f"{where}: {key}.{name} = {spec!r} is not a feature {{type, shape}} ({e})"
            ) from e
        if ftype not in FEATURE_TYPES:
            raise LeRobotCheckpointError(
                f"{where}: {key}.{name} has type {ftype!r}; LeRobot feature types are {list(FEATURE_TYPES)}"
            )
        out[name] = LeRobotFeature(ftype, shape)
    return out


def _norm_map(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise LeRobotCheckpointError(f"{where}: normalization map must be an object, got {raw!r}")
    out = {}
    for ftype, mode in raw.items():
        mode = str(mode).upper()
        if mode not in NORM_MODES:
            raise LeRobotCheckpointError(
                f"{where}: normalization mode {mode!r} for {ftype} is not one of {list(NORM_MODES)}"
            )
        out[str(ftype).upper()] = mode
    return out


def processor_file(folder: Path, file: str) -> Path | None:
    """``folder / file``, or the one ``*_<kind>.json`` that stands for it (kind ``preprocessor``
    / ``postprocessor``: early migrated hub folders name theirs ``robot_preprocessor.json``);
    None when there is none, or several (which one is meant is not known)."""
    path = folder / file
    if path.is_file():
        return path
    kind = file.rsplit("_", 1)[-1]
    found = sorted(folder.glob(f"*_{kind}"))
    return found[0] if len(found) == 1 else None


def _processor_step(folder: Path, file: str, registry_name: str) -> tuple[dict[str, Any], dict] | None:
    """(step config, flat stats) of the first ``registry_name`` step of a processor JSON
    (:func:`processor_file`)."""
    path = processor_file(folder, file)
    if path is None:
        return None
    data = _json(path)
    for step in data.get("steps") or []:
        if isinstance(step, dict) and step.get("registry_name") == registry_name:
            state_file = step.get("state_file")
            flat = _safetensors(folder / state_file) if state_file else {}
            return dict(step.get("config") or {}), flat
    return None


def _split_flat(flat: dict[str, Tensor], where: Path) -> dict[str, dict[str, Tensor]]:
    out: dict[str, dict[str, Tensor]] = {}
    for key, t in flat.items():
        if "." not in key:
            raise LeRobotCheckpointError(f"{where}: statistic key {key!r} is not '<feature>.<stat>'")
        feat, stat = key.rsplit(".", 1)
        out.setdefault(feat, {})[stat] = t.to(torch.float32)
    return out


def _legacy_stats(
    sd: dict[str, Tensor], features: dict[str, LeRobotFeature], where: Path
) -> dict[str, dict[str, Tensor]]:
    """Pop the pre-0.4 normalization buffers out of ``sd`` into ``{feature: {stat: tensor}}``."""
    by_buffer = {"buffer_" + name.replace(".", "_"): name for name in features}
    stats: dict[str, dict[str, Tensor]] = {}
    for key in [k for k in sd if k.startswith(LEGACY_NORM_PREFIXES)]:
        t = sd.pop(key)
        parts = key.split(".")
        if len(parts) != 3 or parts[1] not in by_buffer:
            raise LeRobotCheckpointError(
                f"{where}: normalization buffer {key!r} names no feature of config.json "
                f"(features: {sorted(features)}); the config does not belong to these weights"
            )
        if not torch.isfinite(t).all():
            raise LeRobotCheckpointError(
                f"{where}: normalization buffer {key!r} holds inf/nan: the policy was saved without "
                "dataset statistics; re-save it with stats (LeRobot's migrate_policy_normalization)"
            )
        stats.setdefault(by_buffer[parts[1]], {})[parts[2]] = t.to(torch.float32)
    return stats


def _check_stats(ckpt: LeRobotCheckpoint) -> None:
    feats = {**ckpt.input_features, **ckpt.output_features}
    for name, f in feats.items():
        mode = ckpt.norm_map.get(f.type, "IDENTITY")
        if mode == "IDENTITY":
            continue
        if name not in ckpt.stats:
            ckpt.warnings.append(
                f"feature {name!r} ({f.type}, mode {mode}) has no statistics in the checkpoint; "
                "LeRobot passes it through unnormalized, and so does vla_ros"
            )
            continue
        have = ckpt.stats[name]
        missing = [s for s in MODE_STATS[mode] if s not in have]
        if missing:
            raise LeRobotCheckpointError(
                f"{ckpt.path}: feature {name!r} is normalized {mode} (normalization_mapping[{f.type}]) "
                f"but its statistics lack {missing} (it has {sorted(have)}); add them to the dataset "
                "stats (LeRobot's augment_dataset_quantile_stats for quantiles) and re-save the processors"
            )
        want = f.shape[0] if f.type == "VISUAL" else int(torch.Size(f.shape).numel())
        for s in MODE_STATS[mode]:
            n = have[s].numel()
            if n != want:
                raise LeRobotCheckpointError(
                    f"{ckpt.path}: statistic {name}.{s} has {n} values ({tuple(have[s].shape)}) but the "
                    f"feature has shape {list(f.shape)}; the stats belong to another dataset"
                )
            if f.type == "VISUAL":
                have[s] = have[s].reshape(want, 1, 1)


def resolve_folder(path: str | Path) -> Path:
    """The ``pretrained_model`` folder for ``path`` (itself, or its ``pretrained_model`` child)."""
    p = Path(path)
    if not p.exists():
        raise LeRobotCheckpointError(f"{p} does not exist; pass a LeRobot pretrained_model folder")
    if not p.is_dir():
        raise LeRobotCheckpointError(f"{p} is a file; pass the folder that holds it ({LAYOUT_HINT})")
    if not (p / CONFIG_FILE).is_file() and (p / "pretrained_model" / CONFIG_FILE).is_file():
        p = p / "pretrained_model"
    if not (p / CONFIG_FILE).is_file():
        raise LeRobotCheckpointError(
            f"{p} is not a LeRobot checkpoint folder: it has no {CONFIG_FILE}; {LAYOUT_HINT}"
        )
    return p


def read_lerobot_folder(path: str | Path, check_type: bool = True) -> LeRobotCheckpoint:
    """Read a LeRobot ``pretrained_model`` folder; see the module docstring.

    ``check_type=False`` reads a folder of any policy type (for inspection); by default a type
    no family has registered a builder for is refused here, before the weights are read.

    Raises :class:`LeRobotCheckpointError` for a folder that is not a LeRobot checkpoint, an
    unsupported policy type (naming the supported ones), missing or unreadable files, unknown
    normalization modes and statistics that do not fit their features.
    """
    folder = resolve_folder(path)
    cfg_path = folder / CONFIG_FILE
    cfg = _json(cfg_path)
    ptype = cfg.get("type")
    if not isinstance(ptype, str) or not ("input_features" in cfg or "output_features" in cfg):
        raise LeRobotCheckpointError(
            f"{cfg_path} is not a LeRobot policy config (no 'type' and features; keys {sorted(cfg)[:12]}); "
            f"{LAYOUT_HINT}"
        )
    types = supported_types()
    if check_type and ptype not in types:
        raise LeRobotCheckpointError(
            f"{cfg_path}: LeRobot policy type {ptype!r} is not supported; vla_ros builds {types}"
        )
    inputs = _features(cfg, "input_features", cfg_path)
    outputs = _features(cfg, "output_features", cfg_path)
    sd = _safetensors(folder / WEIGHTS_FILE)
    pre = _processor_step(folder, PREPROCESSOR_FILE, "normalizer_processor")
    post = _processor_step(folder, POSTPROCESSOR_FILE, "unnormalizer_processor")
    legacy = any(k.startswith(LEGACY_NORM_PREFIXES) for k in sd)
    eps = DEFAULT_EPS
    stats: dict[str, dict[str, Tensor]] = {}
    norm_map = _norm_map(cfg.get("normalization_mapping"), str(cfg_path))
    if pre is not None or post is not None:
        layout = "processor"
        for step, file in ((pre, PREPROCESSOR_FILE), (post, POSTPROCESSOR_FILE)):
            if step is None:
                continue
            step_cfg, flat = step
            eps = float(step_cfg.get("eps", eps))
            norm_map.update(_norm_map(step_cfg.get("norm_map"), str(folder / file)))
            for feat, s in _split_flat(flat, folder / file).items():
                # LeRobot normalizes the inputs with the preprocessor's statistics and unnormalizes
                # the outputs (actions) with the postprocessor's: each wins for its own features
                if feat not in stats or (file == POSTPROCESSOR_FILE and feat in outputs):
                    stats[feat] = s
        if legacy:  # a migrated folder that still carries the old buffers: the processors win
            _legacy_stats(sd, {**inputs, **outputs}, folder / WEIGHTS_FILE)
    elif legacy:
        layout = "legacy"
        stats = _legacy_stats(sd, {**inputs, **outputs}, folder / WEIGHTS_FILE)
    else:
        layout = "processor"
        if any(m != "IDENTITY" for m in norm_map.values()):
            raise LeRobotCheckpointError(
                f"{folder} has no {PREPROCESSOR_FILE} / {POSTPROCESSOR_FILE} and no normalization "
                f"buffers in {WEIGHTS_FILE}, but config.json normalizes {norm_map}; copy the "
                "policy_*processor* files that save_pretrained wrote next to config.json"
            )
    ckpt = LeRobotCheckpoint(
        path=folder,
        policy_type=ptype,
        config=cfg,
        state_dict=sd,
        stats=stats,
        norm_map=norm_map,
        input_features=inputs,
        output_features=outputs,
        layout=layout,
        eps=eps,
    )
    for file in (PREPROCESSOR_FILE, POSTPROCESSOR_FILE):
        used = processor_file(folder, file)
        if used is not None and used.name != file:
            ckpt.warnings.append(
                f"no {file}: read {used.name} in its place (LeRobot 0.6.1 loads only {file}; rename it)"
            )
    _check_stats(ckpt)
    return ckpt


__all__ = [
    "LEROBOT_BUILDERS",
    "LeRobotCheckpoint",
    "LeRobotCheckpointError",
    "LeRobotFeature",
    "build_lerobot_policy",
    "is_lerobot_folder",
    "processor_file",
    "read_lerobot_folder",
    "register_lerobot_builder",
    "resolve_folder",
    "supported_types",
]
