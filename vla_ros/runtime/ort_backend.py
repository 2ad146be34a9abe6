"""ONNX Runtime backend: one InferenceSession per graph, provider choice with a logged fallback."""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from vla_ros.contract.card import PolicyCard
from vla_ros.contract.errors import BackendUnavailableError, ModelFileError
from vla_ros.runtime.base import PolicyRuntime

log = logging.getLogger(__name__)

_PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def default_threads() -> int:
    """Intra-op threads: the CPUs this process may run on (2 on a 2-core machine), at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def graph_roles(card: PolicyCard) -> dict[str, str]:
    """Graph name -> card file role for the card's layout."""
    if card.layout == "monolithic":
        return {"model": "onnx"}
    if card.layout == "dual":
        return {"slow": "onnx_slow", "fast": "onnx_fast"}
    roles = {"prefix": "onnx_prefix", "step": "onnx_step"}
    if card.has("onnx_step_rtc"):  # guided real-time chunking: the guided step graph
        roles["step_rtc"] = "onnx_step_rtc"
    return roles


def resolve_providers(requested: list[str] | str | None) -> tuple[list[str], list[str]]:
    """(providers to use, providers requested but unavailable here). CPU is always appended."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested is None or requested == "auto":
        wanted = [p for p in ("CUDAExecutionProvider",) if p in available]
    else:
        items = requested.split(",") if isinstance(requested, str) else list(requested)
        wanted = [_PROVIDER_ALIASES.get(p.strip().lower(), p.strip()) for p in items if p]
    use = [p for p in wanted if p in available]
    missing = [p for p in wanted if p not in available]
    if "CPUExecutionProvider" not in use:
        use.append("CPUExecutionProvider")
    return use, missing


class OnnxRuntimeBackend(PolicyRuntime):
    """Runs the card's ONNX graph(s) with ONNX Runtime.

    Options: ``providers`` (list or comma string: ``cuda``, ``cpu``, full names, or ``auto``),
    ``threads`` (intra-op threads; default :func:`default_threads`), ``optimization``
    (``all`` | ``extended`` | ``basic`` | ``disabled``), ``spin`` (let idle intra-op threads
    busy-wait: a little lower latency on an otherwise idle CPU, much worse on a shared one;
    default off), ``graphs`` (``card``: the graphs the card names, int8 on an int8 card;
    ``fp32``: the fp32 graphs an int8 card was quantized from), ``seed``.
    """

    backend = "onnxruntime"

    def __init__(
        self,
        card: PolicyCard,
        providers: list[str] | str | None = "auto",
        threads: int | None = None,
        optimization: str = "all",
        spin: bool = False,
        graphs: str = "card",
        seed: int = 0,
    ) -> None:
        super().__init__(card, seed=seed)
        if graphs not in ("card", "fp32"):
            raise BackendUnavailableError(f"onnxruntime graphs={graphs!r} is not 'card' or 'fp32'")
        self.graphs = graphs
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendUnavailableError(
                f"onnxruntime is not installed ({e}); pip install onnxruntime "
                "(or onnxruntime-gpu on a CUDA machine)"
            ) from e
        self.providers, missing = resolve_providers(providers)
        if missing:
            log.warning(
                "onnxruntime providers %s are not available here (available: %s); falling back to %s",
                missing,
                ort.get_available_providers(),
                self.providers,
            )
        self.fallback_from = missing
        self.threads = int(threads) if threads else default_threads()
        levels = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }
        if optimization not in levels:
            raise BackendUnavailableError(
                f"onnxruntime optimization {optimization!r} is not one of {sorted(levels)}"
            )
        self.optimization = optimization
        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = levels[optimization]
        so.log_severity_level = 3
        # Idle intra-op threads sleep instead of spinning: on a robot the policy shares the CPU
        # with ROS executors and the control loop, and spinning threads steal their time.
        self.spin = bool(spin)
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.sessions: dict[str, Any] = {}
        self._inputs: dict[str, list[str]] = {}
        self._outputs: dict[str, list[str]] = {}
        for graph, role in graph_roles(card).items():
            if graphs == "fp32" and card.has(f"{role}_fp32"):
                role = f"{role}_fp32"
            path = card.path(role)
            try:
                sess = ort.InferenceSession(str(path), sess_options=so, providers=self.providers)
            except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
                raise ModelFileError(
                    f"onnxruntime cannot load {role} file {str(path)!r}: {e}; the file is corrupt "
                    f"or not ONNX, re-export: {card.export_command()}"
                ) from e
            used = sess.get_providers()
            dropped = [p for p in self.providers if p not in used]
            if dropped:
                log.warning(
                    "onnxruntime session for %s dropped providers %s and runs on %s",
                    graph,
                    dropped,
                    used,
                )
            self.sessions[graph] = sess
            self._inputs[graph] = [i.name for i in sess.get_inputs()]
            self._outputs[graph] = [o.name for o in sess.get_outputs()]
            check_session_against_card(card, graph, sess)

    def _call(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sess = self.sessions[graph]
        outs = sess.run(None, {k: feeds[k] for k in self._inputs[graph]})
        return dict(zip(self._outputs[graph], outs))

    def info(self) -> dict[str, Any]:
        import onnxruntime as ort

        first = next(iter(self.sessions.values()))
        return {
            "onnxruntime": ort.__version__,
            "providers": first.get_providers(),
            "provider_fallback_from": self.fallback_from,
            "intra_op_threads": self.threads,
            "graph_optimization": self.optimization,
            "thread_spinning": self.spin,
            "graphs": "fp32" if self.graphs == "fp32" else str(self.card.export.get("precision", "fp32")),
        }

    def close(self) -> None:
        self.sessions.clear()


def expected_graph_io(card: PolicyCard, graph: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """Input name -> (shape, dtype name) that ``graph`` must accept according to the card."""
    shapes = card.io.input_shapes(1)
    dtypes = {"images": "float32", "state": "float32", "tokens": "int64", "noise": "float32"}
    if graph == "model":
        return {n: (shapes[n], dtypes[n]) for n in card.io.input_names}
    if graph in ("slow", "fast"):
        dual = card.export.get("dual", {})
        out = {n: (shapes[n], dtypes[n]) for n in dual.get(f"{graph}_inputs", []) if n in shapes}
        if graph == "fast":
            dt = dual.get("latent_dtypes") or {}
            for n, shp in (dual.get("latent_shapes") or {}).items():
                out[n] = (tuple(shp), str(dt.get(n, "float32")))
        return out
    spec = card.export.get("split", {})
    if graph == "prefix":
        return {n: (shapes[n], dtypes[n]) for n in spec.get("prefix_inputs", [])}
    out = {"x": ((1, *card.io.noise_shape), "float32"), "step_index": ((), "int64")}
    rtc = spec.get("rtc") or {}
    if (graph == "step_rtc" or rtc.get("role") == "onnx_step") and rtc:
        out["rtc_actions"] = ((1, *card.io.noise_shape), "float32")
        out["rtc_mask"] = ((1, card.io.noise_shape[0]), "float32")
        if graph == "step_rtc":
            out["rtc_max_guidance"] = ((), "float32")
    dt = spec.get("prefix_dtypes") or {}
    for n, shp in (spec.get("prefix_shapes") or {}).items():
        out[n] = (tuple(shp), str(dt.get(n, "float32")))
    return out


def check_session_against_card(card: PolicyCard, graph: str, sess: Any) -> None:
    """Raise :class:`ModelFileError` when the graph's inputs disagree with the card."""
    want = expected_graph_io(card, graph)
    have = {i.name: i for i in sess.get_inputs()}
    missing = sorted(set(have) - set(want))
    if missing:
        raise ModelFileError(
            f"card {card.name!r} and its {graph} ONNX graph disagree: the graph needs inputs "
            f"{missing} the card does not provide (card inputs {sorted(want)}); the card and "
            f"model come from different exports, re-export: {card.export_command()}"
        )
    for name, inp in have.items():
        shape, dtype = want[name]
        got_dtype = _ORT_DTYPES.get(inp.type)
        if got_dtype is None or np.dtype(got_dtype) != np.dtype(dtype):
            raise ModelFileError(
                f"card {card.name!r} and its {graph} ONNX graph disagree on input {name!r}: "
                f"graph dtype {inp.type}, card dtype {dtype}; re-export: {card.export_command()}"
            )
        gshape = tuple(inp.shape)
        if len(gshape) != len(shape) or any(isinstance(g, int) and g != s for g, s in zip(gshape, shape)):
            raise ModelFileError(
                f"card {card.name!r} and its {graph} ONNX graph disagree on input {name!r}: "
                f"graph shape {list(gshape)}, card shape {list(shape)}; "
                f"re-export: {card.export_command()}"
            )
