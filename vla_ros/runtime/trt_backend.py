"""TensorRT backend: ``execute_async_v3`` on torch CUDA buffers (no pycuda).

Every engine I/O tensor gets a persistent torch CUDA buffer bound once with
``set_tensor_address``. In the split layout the step engine reads the prefix engine's output
buffers directly, so prefix features never leave the GPU; the loop copies ``x_next`` into ``x``
on the same stream.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from vla_ros.contract.card import PolicyCard
from vla_ros.contract.errors import BackendUnavailableError, CardError, ModelFileError
from vla_ros.runtime.base import PolicyRuntime, split_spec
from vla_ros.runtime.timing import StageTimer
from vla_ros.runtime.trt_engine import current_platform, deserialize_engine

log = logging.getLogger(__name__)


def rebuild_command(card: PolicyCard) -> str:
    """The command that rebuilds this card's engine(s) on the current machine."""
    trt = card.export.get("tensorrt") or {}
    cmd = f"vla-ros export {card.root} --backends tensorrt --precision {card.precision}"
    if trt.get("version_compatible"):
        cmd += " --trt-version-compatible"
    level = trt.get("hardware_compatibility", "none")
    if level and level != "none":
        cmd += f" --trt-hardware-compat {level}"
    return cmd


class _Engine:
    """One deserialized engine, its execution context and its bound torch buffers."""

    def __init__(self, card: PolicyCard, role: str, device: Any, shared: dict[str, Any]) -> None:
        import tensorrt as trt
        import torch

        built = card.export.get("tensorrt")
        if not isinstance(built, dict):
            raise CardError(
                f"card {card.name!r} names a TensorRT engine but has no export.tensorrt build "
                f"record; rebuild: {rebuild_command(card)}"
            )
        path = card.path(role)
        self.engine, self.runtime = deserialize_engine(path, built, rebuild_command(card))
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise ModelFileError(f"TensorRT could not create an execution context for {path}")
        dtypes = {
            trt.DataType.FLOAT: torch.float32,
            trt.DataType.HALF: torch.float16,
            trt.DataType.BF16: torch.bfloat16,
            trt.DataType.INT64: torch.int64,
            trt.DataType.INT32: torch.int32,
            trt.DataType.BOOL: torch.bool,
            trt.DataType.INT8: torch.int8,
        }
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.buffers: dict[str, Any] = {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                shape = tuple(self.engine.get_tensor_profile_shape(name, 0)[1])
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if is_input:
                self.inputs.append(name)
                self.context.set_input_shape(name, shape)
            else:
                self.outputs.append(name)
            dtype = dtypes[self.engine.get_tensor_dtype(name)]
            buf = shared.get(name) if is_input else None
            if buf is None or tuple(buf.shape) != shape or buf.dtype != dtype:
                buf = torch.zeros(shape, dtype=dtype, device=device)
            self.buffers[name] = buf
            self.context.set_tensor_address(name, buf.data_ptr())

    def execute(self, stream: Any) -> None:
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise ModelFileError("TensorRT execute_async_v3 failed; see the TensorRT log")


class TensorRTBackend(PolicyRuntime):
    """Runs the card's TensorRT engine(s).

    Options: ``device`` (``cuda:N``), ``seed``; ``threads`` is accepted so that every backend
    takes the node's options, and ignored (TensorRT runs on the GPU).
    """

    backend = "tensorrt"

    def __init__(
        self, card: PolicyCard, device: str = "cuda:0", seed: int = 0, threads: int | None = None
    ) -> None:
        super().__init__(card, seed=seed)
        try:
            import tensorrt  # noqa: F401
            import torch
        except ImportError as e:
            raise BackendUnavailableError(
                f"the tensorrt backend needs the tensorrt and torch packages ({e}); on Jetson "
                "they come with JetPack; elsewhere pip install tensorrt"
            ) from e
        if not torch.cuda.is_available():
            raise BackendUnavailableError("the tensorrt backend needs a CUDA GPU; none is visible")
        self.torch = torch
        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(device=self.device)
        self.engines: dict[str, _Engine] = {}
        if card.layout == "monolithic":
            self.engines["model"] = _Engine(card, "engine", self.device, {})
        elif card.layout == "dual":  # two rates: the shared driver calls them graph by graph
            self.engines["slow"] = _Engine(card, "engine_slow", self.device, {})
            self.engines["fast"] = _Engine(card, "engine_fast", self.device, {})
        else:
            spec = split_spec(card)
            prefix = _Engine(card, "engine_prefix", self.device, {})
            # the step engine reads the prefix outputs in place
            shared = {k: prefix.buffers[k] for k in spec["prefix_outputs"] if k in prefix.buffers}
            self.engines["prefix"] = prefix
            self.engines["step"] = _Engine(card, "engine_step", self.device, shared)
            self.num_steps = int(spec["num_steps"])
            if self.rtc and self.rtc["mode"] == "guided":
                if card.has("engine_step_rtc"):  # the guided step, reading the same buffers
                    shared = {**shared, "x": self.engines["step"].buffers["x"]}
                    shared["step_index"] = self.engines["step"].buffers["step_index"]
                    self.engines["step_rtc"] = _Engine(card, "engine_step_rtc", self.device, shared)
                else:
                    log.info(
                        "card %s has guided real-time chunking but no engine_step_rtc (TensorRT "
                        "engines are built for the plain graphs); committed actions are ignored "
                        "on the tensorrt backend: use onnxruntime or torch for guided RTC",
                        card.name,
                    )
                    self.rtc, self._committed = None, None
        self._check_against_card()
        self._timer = StageTimer(self._record, torch)

    def _check_against_card(self) -> None:
        from vla_ros.runtime.ort_backend import expected_graph_io

        for graph, eng in self.engines.items():
            want = expected_graph_io(self.card, graph)
            for name in eng.inputs:
                if name not in want:
                    raise ModelFileError(
                        f"card {self.card.name!r} and its {graph} engine disagree: the engine "
                        f"needs input {name!r}, the card provides {sorted(want)}; rebuild: "
                        f"{rebuild_command(self.card)}"
                    )
                shape = tuple(eng.buffers[name].shape)
                if shape != tuple(want[name][0]):
                    raise ModelFileError(
                        f"card {self.card.name!r} and its {graph} engine disagree on {name!r}: "
                        f"engine shape {list(shape)}, card shape {list(want[name][0])}; "
                        f"rebuild: {rebuild_command(self.card)}"
                    )

    def _load(self, eng: _Engine, feeds: dict[str, np.ndarray]) -> None:
        for name in eng.inputs:
            if name in feeds:
                src = self.torch.from_numpy(np.ascontiguousarray(feeds[name]))
                eng.buffers[name].copy_(src.reshape(eng.buffers[name].shape), non_blocking=False)

    def run_model(self, feeds: dict[str, np.ndarray], stamp_ns: int = 0) -> np.ndarray:
        if self.card.layout == "dual":
            return self._run_dual(feeds, stamp_ns)
        torch = self.torch
        with torch.cuda.stream(self.stream):
            if self.card.layout == "monolithic":
                eng = self.engines["model"]
                self._load(eng, feeds)
                eng.execute(self.stream)
                out = eng.buffers["actions"]
            else:
                prefix, step = self.engines["prefix"], self.engines["step"]
                self._load(prefix, feeds)
                with self._timer("prefix"):
                    prefix.execute(self.stream)
                graph, rtc = self.step_graph(feeds)  # real-time chunking inputs (or none)
                step = self.engines[graph]
                self._load(step, rtc)
                x = step.buffers["x"]
                if "noise" in feeds:
                    x.copy_(torch.from_numpy(feeds["noise"]).reshape(x.shape))
                else:
                    x.zero_()
                idx = step.buffers["step_index"]
                for i in range(self.num_steps):
                    with self._timer("step"):
                        idx.fill_(i)
                        step.execute(self.stream)
                        x.copy_(step.buffers["x_next"])
                out = x
            result = out.float().cpu()
        self.stream.synchronize()
        self._timer.flush()
        return self.cut_actions(result.numpy())

    def _call(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        eng = self.engines[graph]
        with self.torch.cuda.stream(self.stream):
            self._load(eng, feeds)
            eng.execute(self.stream)
            out = {k: eng.buffers[k].float().cpu().numpy() for k in eng.outputs}
        self.stream.synchronize()
        return out

    def info(self) -> dict[str, Any]:
        here = current_platform()
        return {
            "tensorrt": here["tensorrt_version"],
            "gpu": here["gpu_name"],
            "compute_capability": here["compute_capability"],
            "precision": self.card.precision,
        }

    def close(self) -> None:
        self.engines.clear()
