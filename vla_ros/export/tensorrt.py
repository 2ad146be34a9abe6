"""ONNX -> TensorRT engine (TensorRT 10 Python API).

Building needs ``tensorrt`` and a CUDA GPU (torch is used to query the GPU; no pycuda). Loading
an engine and the compatibility rules live in :mod:`vla_ros.runtime.trt_engine`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from vla_ros.contract.errors import ExportError
from vla_ros.runtime.trt_engine import (
    HARDWARE_LEVELS,
    TRT_PRECISIONS,
    compute_capability_tuple,
    current_platform,
    tensorrt_module,
)


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
    trt = tensorrt_module()
    if precision not in TRT_PRECISIONS:
        raise ExportError(f"TensorRT precision {precision!r} is not one of {TRT_PRECISIONS}")
    if hardware_compatibility not in HARDWARE_LEVELS:
        raise ExportError(
            f"hardware_compatibility {hardware_compatibility!r} is not one of {HARDWARE_LEVELS}"
        )
    here = current_platform()
    cc = compute_capability_tuple(here["compute_capability"]) or (0, 0)
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
