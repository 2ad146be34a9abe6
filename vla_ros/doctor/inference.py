"""Inference-stack checks (check 6): TensorRT, ONNX Runtime providers, and whether the card's
TensorRT engine was built for this machine (TensorRT version, compute capability)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vla_ros.doctor.result import CheckResult, DoctorContext, Status, result

TRT_PROBE = r"""
import json, sys
out = {}
try:
    import tensorrt as trt
    out["version"] = trt.__version__
    path = sys.argv[1] if len(sys.argv) > 1 else ""
    if path:
        class L(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)
                self.msgs = []
            def log(self, severity, msg):
                if severity <= trt.ILogger.Severity.WARNING:
                    self.msgs.append(str(msg))
        lg = L()
        rt = trt.Runtime(lg)
        with open(path, "rb") as f:
            eng = rt.deserialize_cuda_engine(f.read())
        out["deserialized"] = eng is not None
        out["log"] = lg.msgs[-5:]
except BaseException as exc:
    out["error"] = (type(exc).__name__ + ": " + str(exc))[:400]
print("@@DOCTOR@@" + json.dumps(out))
"""


def probe_tensorrt(ctx: DoctorContext, engine: Path | None = None, timeout: float = 120.0) -> dict[str, Any]:
    """Import TensorRT in ``ctx.python`` (subprocess, time-boxed); with ``engine``, also try to
    deserialize it. Returns ``{"version", "deserialized", "log"}`` or ``{"error"}``."""
    argv = [ctx.python, "-c", TRT_PROBE] + ([str(engine)] if engine else [])
    res = ctx.run(argv, timeout=timeout)
    if res.rc is None:
        return {"error": f"TensorRT probe timed out after {timeout:g} s"}
    for line in res.stdout.splitlines():
        if line.startswith("@@DOCTOR@@"):
            return json.loads(line[len("@@DOCTOR@@") :])
    return {"error": f"TensorRT probe exited {res.rc}: {res.stderr.strip()[-400:]}"}


def check_tensorrt(ctx: DoctorContext, trt_probe: dict[str, Any] | None, gpu_expected: bool) -> CheckResult:
    """TensorRT importable and its version (``trt_probe is None``: not installed)."""
    cid, title = "inference.tensorrt", "TensorRT"
    if trt_probe is None:
        if gpu_expected:
            return result(
                cid,
                title,
                Status.WARN,
                "TensorRT is not installed: the tensorrt backend is unavailable",
                "pip install tensorrt (x86), or use JetPack's python3-libnvinfer "
                "(Jetson: apt install nvidia-tensorrt)",
            )
        return result(cid, title, Status.SKIP, "TensorRT not installed (no NVIDIA GPU here)")
    if "error" in trt_probe:
        return result(
            cid,
            title,
            Status.FAIL,
            f"TensorRT does not import: {trt_probe['error']}",
            "reinstall TensorRT matching the CUDA/driver (pip install tensorrt-cu12, or "
            "JetPack's python3-libnvinfer)",
            **trt_probe,
        )
    return result(cid, title, Status.PASS, f"TensorRT {trt_probe['version']}", **trt_probe)


def check_onnxruntime(ctx: DoctorContext, ort: dict[str, Any] | None, gpu_expected: bool) -> CheckResult:
    """ONNX Runtime importable, its version and execution providers."""
    cid, title = "inference.onnxruntime", "ONNX Runtime"
    if ort is None or not ort.get("ok"):
        err = (ort or {}).get("error") or "not installed"
        return result(
            cid,
            title,
            Status.WARN,
            f"onnxruntime unavailable ({err}): the default backend cannot run",
            "pip install onnxruntime (onnxruntime-gpu on a CUDA machine)",
            **(ort or {}),
        )
    providers = list(ort.get("providers") or [])
    details = {"version": ort.get("version"), "providers": providers}
    gpu_eps = [p for p in providers if p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")]
    if gpu_expected and not gpu_eps:
        return result(
            cid,
            title,
            Status.WARN,
            f"onnxruntime {ort.get('version')} has only CPU providers on a GPU machine",
            "pip uninstall onnxruntime && pip install onnxruntime-gpu (Jetson: the Jetson AI Lab wheel)",
            **details,
        )
    return result(
        cid, title, Status.PASS, f"onnxruntime {ort.get('version')}: {', '.join(providers)}", **details
    )


def _find(d: Any, keys: tuple[str, ...]) -> Any:
    """First value under any of ``keys`` in nested mappings (breadth-first)."""
    queue = [d]
    while queue:
        cur = queue.pop(0)
        if isinstance(cur, dict):
            for k in keys:
                if k in cur and not isinstance(cur[k], dict):
                    return cur[k]
            queue.extend(v for v in cur.values() if isinstance(v, dict))
    return None


def engine_provenance(card: dict[str, Any]) -> dict[str, Any]:
    """TensorRT version and compute capability an engine was built with, read from the card's
    ``provenance`` (keys ``tensorrt``/``tensorrt_version`` and ``compute_capability``/
    ``gpu_compute_capability``, at any depth)."""
    prov = card.get("provenance") or {}
    trt = _find(prov, ("tensorrt_version", "tensorrt", "trt_version"))
    cc = _find(prov, ("compute_capability", "gpu_compute_capability", "sm"))
    if isinstance(cc, list | tuple):
        cc = ".".join(str(v) for v in cc)
    return {
        "tensorrt": str(trt) if trt is not None else None,
        "compute_capability": str(cc) if cc is not None else None,
    }


def _norm_cc(cc: str | None) -> str | None:
    if cc is None:
        return None
    s = str(cc).lower().removeprefix("sm_").removeprefix("sm")
    if "." not in s and s.isdigit() and len(s) >= 2:
        s = f"{s[:-1]}.{s[-1]}"
    return s


def rebuild_command(card_dir: Path, card: dict[str, Any]) -> str:
    """``trtexec`` command that rebuilds the card's engine from its ONNX on this machine."""
    files = card.get("files") or {}
    onnx = card_dir / str(files.get("onnx", "model.onnx"))
    engine = card_dir / str(files.get("engine", "model.engine"))
    prec = str((card.get("export") or {}).get("precision", "fp16"))
    flag = {"fp16": " --fp16", "bf16": " --bf16", "fp8": " --fp8", "int8": " --int8"}.get(prec, "")
    return (
        f"trtexec --onnx={onnx} --saveEngine={engine}{flag}  (trtexec is in "
        "/usr/src/tensorrt/bin on Jetson), then update the card's provenance and hash by "
        "re-exporting: vla-ros export"
    )


def check_engine(
    ctx: DoctorContext,
    card_dir: Path | None,
    card: dict[str, Any] | None,
    trt_probe: dict[str, Any] | None,
    machine_cc: str | None,
) -> CheckResult:
    """The card's engine against this machine: TensorRT version, compute capability and a test
    deserialize (where TensorRT imports)."""
    cid, title = "inference.engine", "TensorRT engine"
    if card is None or card_dir is None:
        return result(cid, title, Status.SKIP, "no policy card given (--card DIR)")
    files = card.get("files") or {}
    engines = {r: f for r, f in files.items() if str(r).startswith("engine")}
    if not engines:
        return result(cid, title, Status.SKIP, "the card has no TensorRT engine")
    prov = engine_provenance(card)
    here_trt = (trt_probe or {}).get("version")
    details = {
        "engines": engines,
        "built_with": prov,
        "this_machine": {"tensorrt": here_trt, "compute_capability": machine_cc},
    }
    fix = rebuild_command(card_dir, card)
    problems = []
    if prov["tensorrt"] and here_trt and prov["tensorrt"] != here_trt:
        problems.append(f"built with TensorRT {prov['tensorrt']}, this machine has {here_trt}")
    if (
        prov["compute_capability"]
        and machine_cc
        and (_norm_cc(prov["compute_capability"]) != _norm_cc(machine_cc))
    ):
        problems.append(
            f"built for compute capability {prov['compute_capability']}, this GPU is {machine_cc}"
        )
    if problems:
        return result(
            cid,
            title,
            Status.FAIL,
            "engine not built for this machine: " + "; ".join(problems),
            fix,
            **details,
        )
    if trt_probe is not None and "deserialized" in trt_probe:
        if not trt_probe["deserialized"]:
            return result(
                cid,
                title,
                Status.FAIL,
                "TensorRT cannot deserialize the engine: " + " | ".join(trt_probe.get("log") or ["no log"]),
                fix,
                **details,
            )
        return result(cid, title, Status.PASS, f"engine deserializes with TensorRT {here_trt}", **details)
    if not prov["tensorrt"] or not prov["compute_capability"]:
        return result(
            cid,
            title,
            Status.WARN,
            "the card does not record the engine's TensorRT version and compute capability",
            "re-export with vla-ros export so provenance is recorded",
            **details,
        )
    if here_trt is None or machine_cc is None:
        return result(
            cid,
            title,
            Status.SKIP,
            f"engine built with TensorRT {prov['tensorrt']} for sm "
            f"{prov['compute_capability']}; cannot compare here (no TensorRT/GPU)",
            **details,
        )
    return result(cid, title, Status.PASS, f"engine matches TensorRT {here_trt}, sm {machine_cc}", **details)
