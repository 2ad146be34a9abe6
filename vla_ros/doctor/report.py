"""Running all checks, and the two report forms: a readable checklist and stable JSON.

The JSON form is versioned by :data:`SCHEMA_ID` and described by :data:`JSON_SCHEMA` (a JSON
Schema, reproduced in docs/doctor.md). New checks and new ``details`` keys may appear within a
schema version; removing or renaming a top-level or per-check key bumps it.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vla_ros import __version__
from vla_ros.doctor import card_checks, gpu, inference, live, middleware, ros_env, workspace
from vla_ros.doctor.result import CheckResult, DoctorContext, Status

if TYPE_CHECKING:
    from vla_ros.contract.card import PolicyCard

SCHEMA_ID = "vla_ros.doctor/1"
GROUP_TITLES = {
    "ros": "ROS distro",
    "python": "Python",
    "workspace": "Workspace",
    "middleware": "Middleware",
    "gpu": "GPU and Jetson",
    "inference": "Inference stack",
    "card": "Policy card",
    "live": "Live graph",
}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://vla-ros.org/schemas/doctor-1.json",
    "title": "vla-ros doctor report",
    "type": "object",
    "required": ["schema", "vla_ros_version", "created", "host", "ok", "exit_code", "summary", "checks"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "vla_ros_version": {"type": "string"},
        "created": {"type": "string", "description": "UTC time, ISO 8601"},
        "host": {"type": "string"},
        "ok": {"type": "boolean", "description": "true when no check FAILed"},
        "exit_code": {"type": "integer", "enum": [0, 1]},
        "options": {"type": "object"},
        "summary": {
            "type": "object",
            "required": ["PASS", "WARN", "FAIL", "SKIP"],
            "properties": {s: {"type": "integer", "minimum": 0} for s in ("PASS", "WARN", "FAIL", "SKIP")},
        },
        "checks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "group", "title", "status", "message", "fix", "details", "duration_s"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z]+\\.[a-z0-9_]+$"},
                    "group": {"enum": list(GROUP_TITLES)},
                    "title": {"type": "string"},
                    "status": {"enum": ["PASS", "WARN", "FAIL", "SKIP"]},
                    "message": {"type": "string"},
                    "fix": {"type": ["string", "null"]},
                    "details": {"type": "object"},
                    "duration_s": {"type": "number", "minimum": 0},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}


@dataclass
class DoctorOptions:
    """What to check beyond the machine itself (mirrors the CLI flags)."""

    workspace: Path | None = None
    card: Path | None = None
    live_s: float = 0.0
    topics: list[live.TopicExpectation] = field(default_factory=list)
    gpu: bool = True
    gpu_timeout_s: float = 60.0
    control_rate_hz: float | None = None
    latency_ms: float | None = None
    module_file: str | None = None
    groups: tuple[str, ...] = tuple(GROUP_TITLES)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly echo of the options, stored in the report."""
        return {
            "workspace": str(self.workspace) if self.workspace else None,
            "card": str(self.card) if self.card else None,
            "live_s": self.live_s,
            "topics": [f"{t.name}:{t.rate_hz or ''}" for t in self.topics],
            "gpu": self.gpu,
            "control_rate_hz": self.control_rate_hz,
            "latency_ms": self.latency_ms,
        }


def _timed(fn: Callable[[], CheckResult], cid: str, title: str) -> CheckResult:
    t0 = time.perf_counter()
    try:
        res = fn()
    except Exception as exc:  # a check must never take the doctor down
        res = CheckResult(
            cid,
            title,
            Status.FAIL,
            f"the check itself crashed: {exc!r}",
            "please report this with the traceback in details",
            {"traceback": traceback.format_exc()[-2000:]},
        )
    res.duration_s = time.perf_counter() - t0
    return res


def _machine_cc(torch_probe: dict[str, Any] | None, jet: dict[str, Any] | None) -> str | None:
    if torch_probe and torch_probe.get("devices"):
        return torch_probe["devices"][0]["capability"]
    return jet.get("compute_capability") if jet else None


def run_checks(
    ctx: DoctorContext, opts: DoctorOptions, live_obs: live.LiveObservation | None = None
) -> list[CheckResult]:
    """Run every check group in ``opts.groups`` and return the results in report order.

    Live checks run when ``opts.live_s > 0`` (sampling the graph with rclpy) or when ``live_obs``
    is given (the doctor node samples with its own node).
    """
    out: list[CheckResult] = []
    want = set(opts.groups)

    def add(cid: str, title: str, fn: Callable[[], CheckResult]) -> None:
        if cid.split(".")[0] in want:
            out.append(_timed(fn, cid, title))

    probe: dict[str, Any] = {}
    if want & {"python", "inference", "gpu"}:
        t0 = time.perf_counter()
        probe = ros_env.probe_python(ctx)
        probe["_duration_s"] = time.perf_counter() - t0
    add("ros.distro", "ROS distro", lambda: ros_env.check_distro(ctx))
    add("ros.paths", "ROS paths", lambda: ros_env.check_paths(ctx))
    add("python.rclpy", "rclpy import", lambda: ros_env.check_rclpy(ctx, probe))
    add("python.numpy_cv2", "numpy / OpenCV ABI", lambda: ros_env.check_numpy_cv2(ctx, probe))
    add("python.env", "Python environment", lambda: ros_env.check_venv(ctx, probe))

    module_file = opts.module_file
    ws = workspace.find_workspace(ctx, opts.workspace, module_file)
    add("workspace.index", "ament index", lambda: workspace.check_ament_index(ctx, ws))
    add("workspace.stale", "stale build", lambda: workspace.check_stale(ctx, ws))
    add("workspace.symlink", "symlink install", lambda: workspace.check_symlink_install(ctx, ws))
    add("workspace.underlay", "underlay shadowing", lambda: workspace.check_underlay(ctx, ws, module_file))
    add("workspace.colcon_log", "last colcon build", lambda: workspace.check_colcon_log(ctx, ws))

    add("middleware.rmw", "RMW implementation", lambda: middleware.check_rmw(ctx))
    add("middleware.domain", "ROS_DOMAIN_ID", lambda: middleware.check_domain(ctx))
    add("middleware.discovery", "discovery settings", lambda: middleware.check_discovery(ctx))
    add("middleware.multicast", "multicast interface", lambda: middleware.check_multicast(ctx))
    add("middleware.large_data", "camera frames over shared memory", lambda: middleware.check_large_data(ctx))

    jet = gpu.jetson_info(ctx)
    gpu_expected = jet is not None or gpu.nvidia_driver_present(ctx)
    installed = probe.get("installed", {})
    torch_probe = None
    skipped = None
    if not opts.gpu:
        skipped = "GPU checks skipped (--no-gpu)"
    elif gpu_expected and installed.get("torch") and want & {"gpu", "inference"}:
        torch_probe = gpu.probe_torch(ctx, timeout=opts.gpu_timeout_s)
    torch_version = (probe.get("dists") or {}).get("torch")
    add("gpu.cuda", "CUDA (torch)", lambda: gpu.check_cuda(ctx, torch_probe, jet, torch_version, skipped))
    add("gpu.jetson", "Jetson", lambda: gpu.check_jetson(ctx, jet))
    add("gpu.power", "Jetson power mode", lambda: gpu.check_power(ctx, jet))

    loaded = card_checks.load_card(opts.card) if opts.card is not None else None
    card = loaded.card if loaded else None
    trt_probe = None
    if opts.gpu and installed.get("tensorrt") and "inference" in want:
        engines = []
        if card is not None:
            engines = [card.root / card.files[r] for r in inference.engine_roles(card)]
        built = (card.export.get("tensorrt") if card is not None else None) or {}
        trt_probe = inference.probe_tensorrt(
            ctx,
            [p for p in engines if p.is_file()],
            timeout=max(opts.gpu_timeout_s, 30.0),
            host_code=bool(built.get("version_compatible")),
        )
    add(
        "inference.tensorrt",
        "TensorRT",
        lambda: (
            inference.check_tensorrt(ctx, trt_probe, gpu_expected)
            if opts.gpu
            else inference.check_tensorrt(ctx, None, False)
        ),
    )
    add(
        "inference.onnxruntime",
        "ONNX Runtime",
        lambda: inference.check_onnxruntime(ctx, probe.get("onnxruntime"), gpu_expected),
    )
    add(
        "inference.engine",
        "TensorRT engine",
        lambda: inference.check_engine(ctx, loaded, trt_probe, _machine_cc(torch_probe, jet)),
    )

    obs = live_obs
    if obs is None and opts.live_s > 0 and "live" in want:
        obs = _sample(opts, card)
    latency = None
    if opts.latency_ms is not None:
        latency = (opts.latency_ms / 1e3, "--latency-ms")
    elif obs is not None and not obs.error:
        latency = obs.inference_latency_s()
    add("card.schema", "card loads", lambda: card_checks.check_card_schema(ctx, loaded))
    add("card.files", "card files", lambda: card_checks.check_card_files(ctx, loaded))
    add(
        "card.timing",
        "chunk vs latency",
        lambda: card_checks.check_card_timing(
            ctx, loaded, latency[0] if latency else None, latency[1] if latency else ""
        ),
    )
    add(
        "card.control_rate",
        "control rate vs policy fps",
        lambda: card_checks.check_control_rate(ctx, loaded, opts.control_rate_hz),
    )

    if obs is not None and "live" in want:
        t0 = time.perf_counter()
        for r in live.live_checks(obs, opts.topics, card):
            r.duration_s = time.perf_counter() - t0
            out.append(r)
    return out


def _sample(opts: DoctorOptions, card: PolicyCard | None) -> live.LiveObservation:
    try:
        from vla_ros.doctor import live_ros
    except Exception as exc:
        return live.LiveObservation(opts.live_s, error=f"rclpy does not import: {exc}")
    extra = ("/joint_states",) if card else ()
    try:
        return live_ros.sample_graph(opts.topics, opts.live_s, extra_topics=extra)
    except Exception as exc:
        return live.LiveObservation(opts.live_s, error=f"{type(exc).__name__}: {exc}")


def summarize(results: list[CheckResult]) -> dict[str, int]:
    """Count of results per status."""
    counts = {s.value: 0 for s in (Status.PASS, Status.WARN, Status.FAIL, Status.SKIP)}
    for r in results:
        counts[r.status.value] += 1
    return counts


def exit_code(results: list[CheckResult], strict: bool = False) -> int:
    """0 when nothing FAILed (and, with ``strict``, nothing WARNed); 1 otherwise."""
    bad = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    return 1 if any(r.status in bad for r in results) else 0


def to_json_dict(
    results: list[CheckResult], opts: DoctorOptions | None = None, strict: bool = False
) -> dict[str, Any]:
    """The JSON report (validates against :data:`JSON_SCHEMA`)."""
    code = exit_code(results, strict)
    return {
        "schema": SCHEMA_ID,
        "vla_ros_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "ok": not any(r.status is Status.FAIL for r in results),
        "exit_code": code,
        "options": opts.to_dict() if opts else {},
        "summary": summarize(results),
        "checks": [r.to_dict() for r in results],
    }


_COLORS = {"PASS": "32", "WARN": "33", "FAIL": "31", "SKIP": "90"}


def format_text(results: list[CheckResult], color: bool = False, verbose: bool = False) -> str:
    """The readable checklist: one line per check, the fix under each WARN/FAIL."""
    lines = [f"vla-ros doctor (vla_ros {__version__}, {socket.gethostname()})"]
    group = None
    width = max((len(r.id) for r in results), default=10)
    for r in results:
        if r.group != group:
            group = r.group
            lines.append("")
            lines.append(GROUP_TITLES.get(group, group))
        tag = f"[{r.status.value}]"
        if color:
            tag = f"\033[{_COLORS[r.status.value]}m{tag}\033[0m"
        lines.append(f"  {tag} {r.id:<{width}}  {r.message}")
        if r.fix and r.status in (Status.WARN, Status.FAIL):
            lines.append(f"         {'':<{width}}  fix: {r.fix}")
        if verbose and r.details:
            for k, v in r.details.items():
                lines.append(f"         {'':<{width}}  {k}: {v}")
    counts = summarize(results)
    code = exit_code(results)
    lines.append("")
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items()) + (" -> OK" if code == 0 else " -> FAILED"))
    return "\n".join(lines)


def default_module_file() -> str | None:
    """Where ``vla_ros`` is imported from in this process."""
    spec = importlib.util.find_spec("vla_ros")
    return spec.origin if spec else None
