"""Inference-stack checks (check 6): TensorRT, ONNX Runtime providers, and whether the card's
TensorRT engine(s) load on this machine.

The engine verdict uses the runtime's own rules and texts: the build record the exporter writes
(``export.tensorrt`` in card.yaml) is judged by :func:`vla_ros.runtime.trt_engine.engine_compat_problems`
(TensorRT version, compute capability, version compatibility, hardware-compatibility level) and
the fix is :func:`vla_ros.runtime.trt_backend.rebuild_command`, exactly as the tensorrt backend
reports them when it refuses an engine. Only the facts about this machine come from the doctor's
probes (TensorRT imported in ``ctx.python``, the GPU's compute capability).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vla_ros.doctor.card_checks import CardLoad, loaded_card
from vla_ros.doctor.registry import Verdict, check, verdict
from vla_ros.doctor.result import DoctorContext, Status

if TYPE_CHECKING:
    from vla_ros.contract.card import PolicyCard

TRT_PROBE = r"""
import json, sys
out = {}
try:
    import tensorrt as trt
    out["version"] = trt.__version__
    req = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    if req.get("engines"):
        class L(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)
                self.msgs = []
            def log(self, severity, msg):
                if severity <= trt.ILogger.Severity.WARNING:
                    self.msgs.append(str(msg))
        out["engines"] = {}
        for path in req["engines"]:
            lg = L()
            rt = trt.Runtime(lg)
            if req.get("host_code"):
                rt.engine_host_code_allowed = True
            with open(path, "rb") as f:
                eng = rt.deserialize_cuda_engine(f.read())
            out["engines"][path] = {"deserialized": eng is not None, "log": lg.msgs[-5:]}
            del eng, rt
except BaseException as exc:
    out["error"] = (type(exc).__name__ + ": " + str(exc))[:400]
print("@@DOCTOR@@" + json.dumps(out))
"""


def probe_tensorrt(
    ctx: DoctorContext,
    engines: list[Path] | None = None,
    timeout: float = 120.0,
    host_code: bool = False,
) -> dict[str, Any]:
    """Import TensorRT in ``ctx.python`` (subprocess, time-boxed); with ``engines``, also try to
    deserialize each (``host_code``: allow a version-compatible engine's embedded lean runtime,
    as the tensorrt backend does). Returns ``{"version", "engines": {path: {"deserialized",
    "log"}}}`` or ``{"error"}``."""
    request = {"engines": [str(p) for p in engines or []], "host_code": bool(host_code)}
    args = [json.dumps(request)] if engines else []
    return ctx.probe(TRT_PROBE, "TensorRT probe", *args, timeout=timeout)


@check("inference.tensorrt", "TensorRT", args=lambda f: (f.ctx, f.trt_probe, f.gpu_expected))
def check_tensorrt(ctx: DoctorContext, trt_probe: dict[str, Any] | None, gpu_expected: bool) -> Verdict:
    """TensorRT importable and its version (``trt_probe is None``: not installed)."""
    if trt_probe is None:
        if gpu_expected:
            return verdict(
                Status.WARN,
                "TensorRT is not installed: the tensorrt backend is unavailable",
                "pip install tensorrt (x86), or use JetPack's python3-libnvinfer "
                "(Jetson: apt install nvidia-tensorrt)",
            )
        return verdict(Status.SKIP, "TensorRT not installed (no NVIDIA GPU here)")
    if "error" in trt_probe:
        return verdict(
            Status.FAIL,
            f"TensorRT does not import: {trt_probe['error']}",
            "reinstall TensorRT matching the CUDA/driver (pip install tensorrt-cu12, or "
            "JetPack's python3-libnvinfer)",
            **trt_probe,
        )
    return verdict(Status.PASS, f"TensorRT {trt_probe['version']}", **trt_probe)


@check(
    "inference.onnxruntime",
    "ONNX Runtime",
    args=lambda f: (f.ctx, f.python_probe.get("onnxruntime"), f.gpu_present),
)
def check_onnxruntime(ctx: DoctorContext, ort: dict[str, Any] | None, gpu_expected: bool) -> Verdict:
    """ONNX Runtime importable, its version and execution providers."""
    if ort is None or not ort.get("ok"):
        err = (ort or {}).get("error") or "not installed"
        return verdict(
            Status.WARN,
            f"onnxruntime unavailable ({err}): the default backend cannot run",
            "pip install onnxruntime (onnxruntime-gpu on a CUDA machine)",
            **(ort or {}),
        )
    providers = list(ort.get("providers") or [])
    details = {"version": ort.get("version"), "providers": providers}
    gpu_eps = [p for p in providers if p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")]
    if gpu_expected and not gpu_eps:
        return verdict(
            Status.WARN,
            f"onnxruntime {ort.get('version')} has only CPU providers on a GPU machine",
            "pip uninstall onnxruntime && pip install onnxruntime-gpu (Jetson: the Jetson AI Lab wheel)",
            **details,
        )
    return verdict(Status.PASS, f"onnxruntime {ort.get('version')}: {', '.join(providers)}", **details)


def engine_roles(card: PolicyCard) -> list[str]:
    """The card's TensorRT engine file roles (``engine``, ``engine_prefix``, ``engine_step``)."""
    return [r for r in card.files if str(r).startswith("engine")]


def describe_build(built: dict[str, Any]) -> str:
    """One line about an engine's build record (``export.tensorrt``)."""
    text = f"TensorRT {built.get('tensorrt_version')}, compute capability {built.get('compute_capability')}"
    if built.get("gpu_name"):
        text += f" ({built['gpu_name']})"
    if built.get("version_compatible"):
        text += ", version-compatible"
    level = built.get("hardware_compatibility") or "none"
    if level != "none":
        text += f", hardware compatibility {level}"
    return text


@check("inference.engine", "TensorRT engine", args=lambda f: (f.ctx, f.card_load, f.trt_probe, f.machine_cc))
def check_engine(
    ctx: DoctorContext,
    loaded: CardLoad | None,
    trt_probe: dict[str, Any] | None,
    machine_cc: str | None,
) -> Verdict:
    """The card's engine(s) against this machine, by the tensorrt backend's own rules
    (:func:`~vla_ros.runtime.trt_engine.engine_compat_problems` on the card's ``export.tensorrt``
    record), then a test deserialize where TensorRT imports."""
    card = loaded_card(loaded)
    if isinstance(card, Verdict):
        return card
    roles = engine_roles(card)
    if not roles:
        return verdict(Status.SKIP, "the card has no TensorRT engine")
    from vla_ros.runtime.trt_backend import rebuild_command
    from vla_ros.runtime.trt_engine import engine_compat_problems

    fix = f"rebuild the engine on this machine: {rebuild_command(card)}"
    built = card.export.get("tensorrt")
    here = {
        "tensorrt_version": (trt_probe or {}).get("version"),
        "compute_capability": machine_cc,
    }
    details: dict[str, Any] = {
        "engines": {r: card.files[r] for r in roles},
        "built_with": built,
        "this_machine": here,
        "rebuild_command": rebuild_command(card),
    }
    if not isinstance(built, dict) or not built:
        return verdict(
            Status.FAIL,
            f"the card names engine(s) {', '.join(card.files[r] for r in roles)} but has no "
            "export.tensorrt build record: the tensorrt backend refuses them",
            fix,
            **details,
        )
    desc = describe_build(built)
    absent = [
        what
        for what, have in (("TensorRT", here["tensorrt_version"]), ("CUDA GPU", here["compute_capability"]))
        if not have
    ]
    if absent:
        return verdict(
            Status.SKIP,
            f"engine built for {desc}; cannot check it here (no {' or '.join(absent)} on this machine)",
            **details,
        )
    problems = engine_compat_problems(built, here)
    details["problems"] = problems
    if problems:
        return verdict(
            Status.FAIL,
            f"engine cannot run here: {'; '.join(problems)} (built for {desc})",
            fix,
            **details,
        )
    probed = (trt_probe or {}).get("engines") or {}
    if probed:
        failed = {
            Path(p).name: v.get("log") or ["no log"] for p, v in probed.items() if not v.get("deserialized")
        }
        if failed:
            logs = "; ".join(f"{name}: {' | '.join(log)}" for name, log in failed.items())
            return verdict(Status.FAIL, f"TensorRT cannot deserialize the engine ({logs})", fix, **details)
        return verdict(
            Status.PASS,
            f"{len(probed)} engine(s) deserialize with TensorRT {here['tensorrt_version']} "
            f"(built for {desc})",
            **details,
        )
    return verdict(
        Status.PASS,
        f"engine built for {desc} runs on TensorRT {here['tensorrt_version']}, compute capability "
        f"{here['compute_capability']}",
        **details,
    )
