"""vla_ros.runtime: one :class:`PolicyRuntime` interface over torch, onnxruntime and TensorRT.

>>> rt = load_runtime("cards/pick_cube", backend="onnxruntime")
>>> actions = rt.infer(Observation(images={"front": rgb}, state=q))  # [horizon, action_dim]
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

from vla_ros.contract.errors import (
    BackendUnavailableError,
    CardError,
    EngineMismatchError,
    InferenceError,
    ModelFileError,
    NonFiniteOutputError,
    ObservationError,
    UnsafeCheckpointError,
    VlaRosError,
)
from vla_ros.contract.observation import Observation

# backend name -> (module, class); imported lazily so ``onnxruntime`` never imports TensorRT
BACKENDS: dict[str, tuple[str, str]] = {
    "torch": ("vla_ros.runtime.torch_backend", "TorchBackend"),
    "onnxruntime": ("vla_ros.runtime.ort_backend", "OnnxRuntimeBackend"),
    "tensorrt": ("vla_ros.runtime.trt_backend", "TensorRTBackend"),
}
_ALIASES = {"ort": "onnxruntime", "onnx": "onnxruntime", "trt": "tensorrt", "pytorch": "torch"}


def load_runtime(card_dir: str | Path | Any, backend: str = "onnxruntime", **opts: Any) -> Any:
    """Load a policy card (folder, ``card.yaml`` path or :class:`PolicyCard`) on ``backend``.

    ``opts`` go to the backend class (see each backend's docstring). Raises
    :class:`CardError`, :class:`ModelFileError`, :class:`EngineMismatchError` or
    :class:`BackendUnavailableError` naming what is wrong and how to fix it.
    """
    from vla_ros.contract.card import PolicyCard

    name = _ALIASES.get(backend, backend)
    if name not in BACKENDS:
        raise BackendUnavailableError(
            f"unknown runtime backend {backend!r}; choose one of {sorted(BACKENDS)}"
        )
    card = card_dir if isinstance(card_dir, PolicyCard) else PolicyCard.load(card_dir)
    module, cls_name = BACKENDS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    params = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in opts if k not in params or k in ("self", "card"))
    if unknown:
        takes = [p for p in params if p not in ("self", "card")]
        raise BackendUnavailableError(
            f"runtime backend {name!r} does not take option(s) {unknown}; it takes {takes}"
        )
    return cls(card, **opts)


def __getattr__(name: str) -> Any:
    if name == "PolicyRuntime":
        from vla_ros.runtime.base import PolicyRuntime

        return PolicyRuntime
    raise AttributeError(name)


__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "CardError",
    "EngineMismatchError",
    "InferenceError",
    "ModelFileError",
    "NonFiniteOutputError",
    "Observation",
    "ObservationError",
    "PolicyRuntime",
    "UnsafeCheckpointError",
    "VlaRosError",
    "load_runtime",
]
