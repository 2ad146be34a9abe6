"""Model config files: YAML with ``_base_`` composition.

A config may name one or more base files (paths relative to itself); the bases are merged in
order, then the config itself on top. Dicts merge key by key, everything else (lists, numbers)
is replaced. A dict holding ``_delete_: true`` replaces the base dict instead of merging::

    _base_: act_tiny.yaml
    io: {image_size: [224, 224]}
    vision_backbone: {_delete_: true, type: ResNet, widths: [64, 128, 256, 512]}
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

MODEL_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "models"


def merge_config(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` onto ``base`` (new dict; neither input is modified)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping):
            value = dict(value)
            replace = bool(value.pop("_delete_", False))
            if not replace and isinstance(out.get(key), Mapping):
                out[key] = merge_config(out[key], value)
                continue
            out[key] = merge_config({}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file; a bare name such as ``act_tiny`` means ``config/models/act_tiny.yaml``."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    if p.suffix == "" and len(p.parts) == 1:
        candidate = MODEL_CONFIG_DIR / f"{p.name}.yaml"
        if candidate.is_file():
            return candidate
    available = sorted(f.stem for f in MODEL_CONFIG_DIR.glob("*.yaml"))
    raise FileNotFoundError(
        f"model config {str(name_or_path)!r} is neither a file nor a name in {MODEL_CONFIG_DIR}; "
        f"available names: {available}"
    )


def load_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Load a model config YAML, resolving ``_base_`` recursively (cycles raise ``ValueError``)."""
    path = resolve_config_path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise ValueError(f"config _base_ cycle: {chain}")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"model config {path} must hold a mapping, got {type(data).__name__}")
    bases = data.pop("_base_", None)
    if bases is None:
        return dict(data)
    if isinstance(bases, str):
        bases = [bases]
    merged: dict[str, Any] = {}
    for base in bases:
        base_path = Path(base)
        if not base_path.is_absolute():
            base_path = path.parent / base_path
        merged = merge_config(merged, load_config(base_path, (*_seen, path)))
    return merge_config(merged, data)
