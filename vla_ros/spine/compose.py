"""build_vla: a VLA from a type-tagged config dict, a YAML path or a bare model name.

This module composes from the registries as they are; :mod:`vla_ros.spine.build` fills them
(imports every component and family) and is what users import. Families that build another
model from a foreign checkpoint import ``build_vla`` from here, so no family imports the module
that imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vla_ros.spine.base_vla import BaseVLA
from vla_ros.spine.config import load_config, merge_config
from vla_ros.spine.registry import VLAS
from vla_ros.spine.weights import load_weights


def build_vla(
    cfg_or_path: Mapping[str, Any] | str | Path, overrides: Mapping[str, Any] | None = None
) -> BaseVLA:
    """Build a VLA from a config dict, a YAML path, or a bare name in ``config/models``.

    ``overrides`` are deep-merged onto the config. A top-level ``pretrained`` entry
    ``{path, name_mapping, strict}`` loads weights after construction (see ``weights.py``).
    """
    if isinstance(cfg_or_path, Mapping):
        cfg = dict(cfg_or_path)
    elif isinstance(cfg_or_path, str | Path):
        cfg = load_config(cfg_or_path)
    else:
        raise TypeError(f"build_vla expects a config dict or a YAML path, got {type(cfg_or_path).__name__}")
    if overrides:
        cfg = merge_config(cfg, overrides)
    full = dict(cfg)
    pretrained = cfg.pop("pretrained", None)
    name = cfg.pop("name", None)
    model = VLAS.build(cfg)
    if not isinstance(model, BaseVLA):
        raise TypeError(f"VLAS entry {cfg.get('type')!r} built a {type(model).__name__}, not a BaseVLA")
    model.config = full  # the composed config, for policy cards and provenance
    model.config_name = name or str(cfg.get("type"))
    if pretrained:
        pretrained = dict(pretrained)
        if "path" not in pretrained:
            raise KeyError("config 'pretrained' needs a 'path' (plus optional name_mapping, strict)")
        load_weights(
            model,
            pretrained["path"],
            name_mapping=pretrained.get("name_mapping"),
            strict=bool(pretrained.get("strict", True)),
        )
    return model
