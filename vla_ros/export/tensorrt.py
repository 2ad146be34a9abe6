"""ONNX -> TensorRT engine (TensorRT 10 Python API), and the engine compatibility check.

Building needs ``tensorrt`` and a CUDA GPU (torch is used to query the GPU; no pycuda). The
compatibility check is pure and runs anywhere: an engine only loads on the TensorRT version and
GPU compute capability it was built for, unless it was built version-compatible or with a
hardware-compatibility level.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from vla_ros.runtime.errors import BackendUnavailableError, EngineMismatchError, ExportError

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


def _cc_tuple(cc: str | None) -> tuple[int, int] | None:
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
    bcc, hcc = _cc_tuple(built.get("compute_capability")), _cc_tuple(here.get("compute_capability"))
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


def _trt() -> Any:
    reason = tensorrt_unavailable_reason()
    if reason:
        raise BackendUnavailableError(
            f"TensorRT engines cannot be built or run here: {reason}. Export ONNX here and build "
            "the engine on the target: vla-ros export CARD_DIR --backends tensorrt"
        )
    import tensorrt as trt

    return trt


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    precision: str = "fp32",
    input_shapes: dict[str, tuple[int, ...]] | None = None,
    timing_cache: str | Path | None = None,
    workspace_gb: float = 2.0,
    version_compatible: bool = False,
    hardware_compatibility: str = "none",
    builder_optimization_level: int | None = None,
) -> dict[str, Any]:
    """Build a serialized engine from ONNX; returns what the card records about it.

    ``input_shapes`` gives the (static) shape of inputs whose ONNX shape has dynamic dimensions;
    every input gets an optimization profile with min = opt = max = that shape. The timing
    cache file is read when present and rewritten after the build (faster rebuilds).
    """
    trt = _trt()
    if precision not in TRT_PRECISIONS:
        raise ExportError(f"TensorRT precision {precision!r} is not one of {TRT_PRECISIONS}")
    if hardware_compatibility not in HARDWARE_LEVELS:
        raise ExportError(
            f"hardware_compatibility {hardware_compatibility!r} is not one of {HARDWARE_LEVELS}"
        )
    here = current_platform()
    cc = _cc_tuple(here["compute_capability"]) or (0, 0)
    if precision == "bf16" and cc < (8, 0):
        raise ExportError(
            f"bf16 needs compute capability >= 8.0; this GPU is {here['compute_capability']}; "
            "use --precision fp16"
        )
    if precision == "fp8":
        raise ExportError(
            "fp8 engines need an explicitly quantized ONNX (Q/DQ nodes, e.g. from NVIDIA "
            "Model Optimizer) which vla-ros export does not produce; use --precision fp16"
        )
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT cannot parse {onnx_path}: {errs}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 would break the 1e-4 fp32 parity bound
    elif precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "bf16":
        config.set_flag(trt.BuilderFlag.BF16)
    if builder_optimization_level is not None:
        config.builder_optimization_level = int(builder_optimization_level)
    if version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    if hardware_compatibility == "ampere_plus":
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    elif hardware_compatibility == "same_compute_capability":
        config.hardware_compatibility_level = trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        inp = network.get_input(i)
        shape = tuple(inp.shape)
        if any(d < 0 for d in shape):
            if not input_shapes or inp.name not in input_shapes:
                raise ExportError(f"ONNX input {inp.name!r} has dynamic shape {shape}; pass its static shape")
            shape = tuple(input_shapes[inp.name])
        profile.set_shape(inp.name, shape, shape, shape)
    config.add_optimization_profile(profile)
    cache_bytes = b""
    if timing_cache and Path(timing_cache).is_file():
        cache_bytes = Path(timing_cache).read_bytes()
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=True)
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError(
            f"TensorRT failed to build an engine from {onnx_path} ({precision}); see the "
            "TensorRT log above; try more --workspace-gb or --precision fp32"
        )
    Path(engine_path).write_bytes(bytes(serialized))
    if timing_cache:
        Path(timing_cache).write_bytes(bytes(config.get_timing_cache().serialize()))
    return {
        "tensorrt_version": here["tensorrt_version"],
        "compute_capability": here["compute_capability"],
        "gpu_name": here["gpu_name"],
        "machine": here["machine"],
        "precision": precision,
        "version_compatible": bool(version_compatible),
        "hardware_compatibility": hardware_compatibility,
        "workspace_gb": workspace_gb,
        "build_seconds": round(time.perf_counter() - t0, 2),
    }


def deserialize_engine(
    path: str | Path, built: dict[str, Any], rebuild: str, logger: Any | None = None
) -> tuple[Any, Any]:
    """Check compatibility, then deserialize an engine file -> ``(engine, runtime)``.

    Raises :class:`EngineMismatchError` before touching TensorRT when the card's build record
    does not fit this machine, and when TensorRT refuses the file.
    """
    trt = _trt()
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
