"""vla_ros.spine: what a VLA is made of (torch).

    from vla_ros.spine import VLAS, build_vla
    model = build_vla("config/models/act_tiny.yaml")    # or build_vla("act_tiny"), or a dict
    actions = model.predict_action(model.example_inputs(1))   # [1, horizon, action_dim]

See docs/spine.md for how to add a component or a family.

Names are imported on first use (PEP 562), so ``vla_ros.contract.io_spec`` (the IOSpec contract, read by
policy cards and runtimes) never imports torch; touching a registry or ``build_vla`` imports the
components and families, which registers them all.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "HEADS",
            "LLM_BACKBONES",
            "PROJECTORS",
            "TEXT_ENCODERS",
            "VISION_BACKBONES",
            "VLAS",
            "VLM_BACKBONES",
            "Registry",
        ),
        "vla_ros.spine.registry",
    ),
    **dict.fromkeys(("SLOT_NAMES", "BaseVLA", "merge_prefixed"), "vla_ros.spine.base_vla"),
    **dict.fromkeys(("load_config", "merge_config"), "vla_ros.spine.config"),
    "IOSpec": "vla_ros.contract.io_spec",
    **dict.fromkeys(
        ("LoadReport", "WeightLoadError", "load_weights", "save_weights"), "vla_ros.spine.weights"
    ),
    "build_vla": "vla_ros.spine.build",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vla_ros.spine' has no attribute {name!r}")
    if module != "vla_ros.contract.io_spec":
        importlib.import_module("vla_ros.spine.build")  # components + families: fill the registries
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
