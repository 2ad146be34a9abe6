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
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

#: the checkout's config/models (a source tree or a pip install from it)
MODEL_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "models"


def model_config_dirs() -> list[Path]:
    """Where bare model names are looked up, first match wins.

    ``VLA_ROS_MODEL_CONFIGS`` (``os.pathsep``-separated), the checkout's ``config/models``, then
    ``share/vla_ros/config/models`` of every ament prefix (a colcon install or a distro package).
    """
    dirs = [Path(d) for d in os.environ.get("VLA_ROS_MODEL_CONFIGS", "").split(os.pathsep) if d]
    dirs.append(MODEL_CONFIG_DIR)
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            dirs.append(Path(prefix) / "share" / "vla_ros" / "config" / "models")
    # the install layout <prefix>/lib/pythonX.Y/site-packages/vla_ros/spine/config.py
    here = Path(__file__).resolve().parents
    if len(here) > 5:
        dirs.append(here[5] / "share" / "vla_ros" / "config" / "models")
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [s.resolve() for s in seen]:
            seen.append(d)
    return seen


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
    dirs = model_config_dirs()
    if p.suffix == "" and len(p.parts) == 1:
        for d in dirs:
            candidate = d / f"{p.name}.yaml"
            if candidate.is_file():
                return candidate
    available = sorted({f.stem for d in dirs for f in d.glob("*.yaml")})
    raise FileNotFoundError(
        f"model config {str(name_or_path)!r} is neither a file nor a name in {[str(d) for d in dirs]}; "
        f"available names: {available} (or set VLA_ROS_MODEL_CONFIGS to a folder of model YAMLs)"
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
