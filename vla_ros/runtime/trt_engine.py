"""TensorRT engines on this machine: availability, the platform record, the compatibility rules,
and deserialization (TensorRT 10 Python API).

The compatibility check is pure and runs anywhere: an engine only loads on the TensorRT version
and GPU compute capability it was built for, unless it was built version-compatible or with a
hardware-compatibility level. Building engines is export's business
(:mod:`vla_ros.export.tensorrt`); this module is what the runtime and doctor need to load them.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from vla_ros.contract.errors import BackendUnavailableError, EngineMismatchError

HARDWARE_LEVELS = ("none", "ampere_plus", "same_compute_capability")
TRT_PRECISIONS = ("fp32", "fp16", "bf16", "fp8")


def tensorrt_unavailable_reason() -> str | None:
    """``None`` when TensorRT can build/run engines here, else why not (for skips and errors)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError as e:
        return f"the tensorrt Python package is not installed ({e})"
    try:
        import torch
    except ImportError:
        return "torch is not installed (needed for CUDA buffers)"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible to torch"
    return None


def current_platform() -> dict[str, Any]:
    """TensorRT version, GPU name and compute capability of this machine (None where unknown)."""
    info: dict[str, Any] = {
        "tensorrt_version": None,
        "compute_capability": None,
        "gpu_name": None,
        "machine": platform.machine(),
    }
    try:
        import tensorrt as trt

        info["tensorrt_version"] = trt.__version__
    except ImportError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            info["compute_capability"] = f"{major}.{minor}"
            info["gpu_name"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def _version_tuple(v: str | None) -> tuple[int, ...]:
    out = []
    for part in str(v or "").split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def compute_capability_tuple(cc: str | None) -> tuple[int, int] | None:
    """``"8.7"`` -> ``(8, 7)``; ``None`` when ``cc`` does not name a compute capability."""
    t = _version_tuple(cc)
    return (t[0], t[1]) if len(t) >= 2 else None


def engine_compat_problems(built: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """Why an engine built on ``built`` cannot load ``here`` (empty list: it can).

    Rules (TensorRT 10): without version compatibility the TensorRT version must match exactly
    (major.minor.patch, and the build number where both record one); a version-compatible
    engine loads on the same major version, same or newer. Without a hardware-compatibility
    level the compute capability must match; with ``ampere_plus`` any GPU of compute
    capability >= 8.0 works; ``same_compute_capability`` needs the same capability (any GPU
    model).
    """
    problems = []
    bv, hv = _version_tuple(built.get("tensorrt_version")), _version_tuple(here.get("tensorrt_version"))
    if not hv:
        problems.append("TensorRT is not installed here")
    elif not bv:
        problems.append("the card records no TensorRT version for this engine, so it cannot be checked")
    elif built.get("version_compatible"):
        if not bv or hv[0] != bv[0] or hv < bv:
            problems.append(
                f"version-compatible engines need TensorRT {bv[0] if bv else '?'}.x >= "
                f"{built.get('tensorrt_version')}, this is {here.get('tensorrt_version')}"
            )
    elif hv[: min(len(hv), len(bv))] != bv[: min(len(hv), len(bv))]:
        problems.append(
            f"built with TensorRT {built.get('tensorrt_version')}, this is {here.get('tensorrt_version')}"
        )
    bcc = compute_capability_tuple(built.get("compute_capability"))
    hcc = compute_capability_tuple(here.get("compute_capability"))
    level = built.get("hardware_compatibility", "none") or "none"
    if hcc is None:
        problems.append("no CUDA GPU is visible here")
    elif level == "ampere_plus":
        if hcc < (8, 0):
            problems.append(
                f"ampere_plus engines need compute capability >= 8.0, this GPU is "
                f"{here.get('compute_capability')}"
            )
    elif bcc != hcc:
        problems.append(
            f"built for compute capability {built.get('compute_capability')}, this GPU is "
            f"{here.get('compute_capability')}"
        )
    return problems


def check_engine_compat(
    built: dict[str, Any], here: dict[str, Any], engine: str | Path, rebuild: str
) -> None:
    """Raise :class:`EngineMismatchError` saying what the engine was built for, what this
    machine is, and the exact command that rebuilds the engine here."""
    problems = engine_compat_problems(built, here)
    if problems:
        raise EngineMismatchError(
            f"TensorRT engine {str(engine)!r} cannot run here: {'; '.join(problems)}. "
            f"It was built for TensorRT {built.get('tensorrt_version')} on "
            f"{built.get('gpu_name') or 'a GPU'} (compute capability "
            f"{built.get('compute_capability')}); this machine has TensorRT "
            f"{here.get('tensorrt_version')} on {here.get('gpu_name') or 'no GPU'} (compute "
            f"capability {here.get('compute_capability')}). Rebuild it here with: {rebuild}"
        )


def tensorrt_module() -> Any:
    """The ``tensorrt`` module; :class:`BackendUnavailableError` saying why when it cannot be used."""
    reason = tensorrt_unavailable_reason()
    if reason:
        raise BackendUnavailableError(
            f"TensorRT engines cannot be built or run here: {reason}. Export ONNX here and build "
            "the engine on the target: vla-ros export CARD_DIR --backends tensorrt"
        )
    import tensorrt as trt

    return trt


def deserialize_engine(
    path: str | Path, built: dict[str, Any], rebuild: str, logger: Any | None = None
) -> tuple[Any, Any]:
    """Check compatibility, then deserialize an engine file -> ``(engine, runtime)``.

    Raises :class:`EngineMismatchError` before touching TensorRT when the card's build record
    does not fit this machine, and when TensorRT refuses the file.
    """
    trt = tensorrt_module()
    check_engine_compat(built, current_platform(), path, rebuild)
    logger = logger or trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    if built.get("version_compatible"):
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(Path(path).read_bytes())
    if engine is None:
        here = current_platform()
        raise EngineMismatchError(
            f"TensorRT could not deserialize {str(path)!r}: the file is corrupt or was built for "
            f"another TensorRT/GPU (card says TensorRT {built.get('tensorrt_version')}, compute "
            f"capability {built.get('compute_capability')}; this machine has TensorRT "
            f"{here['tensorrt_version']}, compute capability {here['compute_capability']}). "
            f"Rebuild it here with: {rebuild}"
        )
    return engine, runtime
