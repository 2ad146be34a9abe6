"""GPU and Jetson checks (check 5): CUDA through torch, Jetson L4T/JetPack/SoC, power mode, clocks."""

from __future__ import annotations

import re
from typing import Any

from vla_ros.doctor.registry import Verdict, check, verdict
from vla_ros.doctor.result import DoctorContext, Status

# L4T release -> JetPack (most specific prefix wins).
L4T_TO_JETPACK = {
    "32.5": "4.5",
    "32.5.1": "4.5.1",
    "32.6.1": "4.6",
    "32.7.1": "4.6.1",
    "32.7.2": "4.6.2",
    "32.7.3": "4.6.3",
    "32.7.4": "4.6.4",
    "32.7.5": "4.6.5",
    "32.7.6": "4.6.6",
    "34.1": "5.0 DP",
    "34.1.1": "5.0.1 DP",
    "35.1": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5": "5.1.3",
    "35.6": "5.1.4",
    "35.6.1": "5.1.5",
    "36.2": "6.0 DP",
    "36.3": "6.0",
    "36.4": "6.1",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
    "38.2": "7.0",
}
# SoC compatible string -> (name, CUDA compute capability, L4T majors that support it).
TEGRA_SOCS = {
    "tegra210": ("Tegra X1 (Jetson Nano/TX1)", "5.3", ("32",)),
    "tegra186": ("Tegra X2 (Jetson TX2)", "6.2", ("32",)),
    "tegra194": ("Xavier (Jetson AGX/NX Xavier)", "7.2", ("32", "34", "35")),
    "tegra234": ("Orin (Jetson AGX/NX/Nano Orin)", "8.7", ("34", "35", "36")),
    "tegra264": ("Thor (Jetson AGX Thor)", "11.0", ("38",)),
}
L4T_UBUNTU = {"32": "18.04", "34": "20.04", "35": "20.04", "36": "22.04", "38": "24.04"}


def _read(ctx: DoctorContext, path: str) -> str | None:
    p = ctx.path(path)
    try:
        return p.read_bytes().decode(errors="replace")
    except OSError:
        return None


def parse_nv_tegra_release(text: str) -> str | None:
    """``# R36 (release), REVISION: 4.3, ...`` -> ``"36.4.3"``."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{m.group(1)}.{m.group(2).rstrip('.')}" if m else None


def jetpack_for(l4t: str) -> str | None:
    """JetPack release for an L4T version (longest matching prefix), or ``None``."""
    best = None
    for key, jp in L4T_TO_JETPACK.items():
        if (l4t == key or l4t.startswith(key + ".")) and (best is None or len(key) > len(best[0])):
            best = (key, jp)
    return best[1] if best else None


def jetson_info(ctx: DoctorContext) -> dict[str, Any] | None:
    """What the filesystem says about a Jetson, or ``None`` when this is not one.

    Reads ``/etc/nv_tegra_release`` and the device tree (``/proc/device-tree/{model,compatible}``
    or ``/sys/firmware/devicetree/base``) under ``ctx.root``.
    """
    release = _read(ctx, "/etc/nv_tegra_release")
    model = compat = None
    for base in ("/proc/device-tree", "/sys/firmware/devicetree/base"):
        model = model or _read(ctx, f"{base}/model")
        compat = compat or _read(ctx, f"{base}/compatible")
    compat_list = [c for c in (compat or "").split("\x00") if c]
    is_tegra = any("nvidia,tegra" in c for c in compat_list)
    if release is None and not is_tegra:
        return None
    l4t = parse_nv_tegra_release(release) if release else None
    soc_key = next((c.split(",", 1)[1] for c in compat_list if c.startswith("nvidia,tegra")), None)
    soc = TEGRA_SOCS.get(soc_key or "")
    return {
        "l4t": l4t,
        "jetpack": jetpack_for(l4t) if l4t else None,
        "ubuntu": L4T_UBUNTU.get(l4t.split(".")[0]) if l4t else None,
        "model": model.strip("\x00\n ") if model else None,
        "compatible": compat_list,
        "soc": soc_key,
        "soc_name": soc[0] if soc else None,
        "compute_capability": soc[1] if soc else None,
        "nv_tegra_release": release.strip() if release else None,
    }


def nvidia_driver_present(ctx: DoctorContext) -> bool:
    """An NVIDIA kernel driver is visible (desktop/server GPU) under ``ctx.root``."""
    return any(
        ctx.path(p).exists() for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/nvidia0")
    )


TORCH_PROBE = r"""
import json
out = {}
try:
    import torch
    out["torch"] = torch.__version__
    out["cuda_build"] = torch.version.cuda
    out["available"] = bool(torch.cuda.is_available())
    out["devices"] = []
    if out["available"]:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out["devices"].append({"name": p.name, "capability": "%d.%d" % (p.major, p.minor),
                                   "memory_gib": round(p.total_memory / 2**30, 1)})
except BaseException as exc:
    out["error"] = (type(exc).__name__ + ": " + str(exc))[:400]
print("@@DOCTOR@@" + json.dumps(out))
"""


def probe_torch(ctx: DoctorContext, timeout: float = 60.0) -> dict[str, Any]:
    """Import torch in ``ctx.python`` (a subprocess, time-boxed) and report CUDA; torch's import
    is slow, so callers run this only when a GPU can be there."""
    return ctx.probe(TORCH_PROBE, "torch probe", timeout=timeout)


@check(
    "gpu.cuda",
    "CUDA (torch)",
    args=lambda f: (f.ctx, f.torch_probe, f.jetson, f.torch_version, f.gpu_skipped, f.gpu_present),
)
def check_cuda(
    ctx: DoctorContext,
    torch_probe: dict[str, Any] | None,
    jetson: dict[str, Any] | None,
    torch_version: str | None = None,
    skipped_reason: str | None = None,
    driver_present: bool | None = None,
) -> Verdict:
    """CUDA through torch. ``torch_probe`` is :func:`probe_torch`'s answer, or ``None`` when it
    was not run (``skipped_reason`` says why; ``torch_version`` is the installed distribution's
    version, read without importing torch; ``driver_present``: :func:`nvidia_driver_present`, read
    here when not given)."""
    driver = (nvidia_driver_present(ctx) if driver_present is None else driver_present) or jetson is not None
    details: dict[str, Any] = {"driver_present": driver, "torch_installed": torch_version}
    if torch_probe is None:
        if skipped_reason:
            return verdict(Status.SKIP, skipped_reason, **details)
        if not driver:
            cpu = f" (torch {torch_version})" if torch_version else ""
            return verdict(
                Status.WARN,
                f"no NVIDIA GPU or driver on this machine: policies run on CPU{cpu}",
                "fine for development and tests; on the robot use a machine with an NVIDIA GPU or a Jetson",
                **details,
            )
        return verdict(Status.SKIP, "torch not installed: CUDA not checked", **details)
    details.update(torch_probe)
    if "error" in torch_probe:
        return verdict(
            Status.WARN,
            f"torch probe failed: {torch_probe['error']}",
            "run python -c 'import torch; print(torch.cuda.is_available())' and read the error",
            **details,
        )
    if torch_probe.get("available"):
        devs = ", ".join(f"{d['name']} (sm {d['capability']})" for d in torch_probe["devices"])
        return verdict(
            Status.PASS,
            f"torch {torch_probe['torch']} with CUDA {torch_probe['cuda_build']}: {devs}",
            **details,
        )
    if driver:
        cpu_build = not torch_probe.get("cuda_build")
        fix = (
            "install NVIDIA's JetPack torch wheel for this L4T (pip index https://pypi.jetson-ai-lab.io)"
            if jetson
            else "install a CUDA build of torch matching the driver (pip install torch "
            "--index-url https://download.pytorch.org/whl/cu126), and check nvidia-smi"
        )
        why = "a CPU-only build" if cpu_build else f"built for CUDA {torch_probe['cuda_build']}"
        return verdict(
            Status.FAIL,
            f"an NVIDIA driver is present but torch {torch_probe['torch']} ({why}) sees no CUDA device",
            fix,
            **details,
        )
    return verdict(
        Status.WARN,
        f"torch {torch_probe['torch']} sees no CUDA device: policies run on CPU",
        "fine for development; on the robot use an NVIDIA GPU or Jetson",
        **details,
    )


@check("gpu.jetson", "Jetson", args=lambda f: (f.ctx, f.jetson))
def check_jetson(ctx: DoctorContext, info: dict[str, Any] | None) -> Verdict:
    """Jetson identity: L4T, JetPack, SoC and compute capability, and that they agree."""
    if info is None:
        return verdict(Status.SKIP, "not a Jetson (no /etc/nv_tegra_release, no nvidia,tegra device tree)")
    problems = []
    if info["l4t"] is None:
        problems.append("/etc/nv_tegra_release missing or unreadable")
    elif info["jetpack"] is None:
        problems.append(f"L4T {info['l4t']} is not a JetPack release this doctor knows")
    if info["soc"] is None or info["compute_capability"] is None:
        problems.append(f"unknown SoC in device tree compatible {info['compatible']}")
    elif info["l4t"] and info["l4t"].split(".")[0] not in TEGRA_SOCS[info["soc"]][2]:
        problems.append(f"L4T R{info['l4t'].split('.')[0]} does not support {info['soc']}")
    summary = (
        f"{info['model'] or 'Jetson'}: L4T {info['l4t'] or '?'}, JetPack "
        f"{info['jetpack'] or '?'}, {info['soc'] or '?'}, compute capability "
        f"{info['compute_capability'] or '?'}"
    )
    if problems:
        return verdict(
            Status.WARN,
            f"{summary} ({'; '.join(problems)})",
            "check /etc/nv_tegra_release against the board (a container may carry "
            "another L4T's files): cat /etc/nv_tegra_release /proc/device-tree/model",
            problems=problems,
            **info,
        )
    return verdict(Status.PASS, summary, **info)


def _parse_jetson_clocks(text: str) -> dict[str, Any]:
    cpus = re.findall(r"^cpu\d+:\s*Online=(\d)\b.*?MinFreq=(\d+)\s+MaxFreq=(\d+)", text, re.M)
    gpu = re.search(r"^GPU\s+MinFreq=(\d+)\s+MaxFreq=(\d+)", text, re.M)
    online = [(int(lo), int(hi)) for on, lo, hi in cpus if on == "1"]
    cpu_locked = bool(online) and all(lo == hi for lo, hi in online)
    gpu_locked = gpu is not None and gpu.group(1) == gpu.group(2)
    return {
        "cpus_online": len(online),
        "cpu_locked": cpu_locked,
        "gpu_locked": gpu_locked if gpu else None,
        "locked": cpu_locked and (gpu is None or gpu_locked),
    }


@check("gpu.power", "Jetson power mode", args=lambda f: (f.ctx, f.jetson))
def check_power(ctx: DoctorContext, jetson: dict[str, Any] | None) -> Verdict:
    """Jetson ``nvpmodel`` mode (MAXN for lowest latency) and ``jetson_clocks`` state."""
    if jetson is None:
        return verdict(Status.SKIP, "not a Jetson")
    details: dict[str, Any] = {}
    problems, fixes = [], []
    nvp = ctx.which("nvpmodel")
    maxn_id = None
    conf = _read(ctx, "/etc/nvpmodel.conf")
    if conf:
        for mid, name in re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>", conf):
            if "MAXN" in name.upper() and maxn_id is None:
                maxn_id = mid
    if nvp:
        res = ctx.run([nvp, "-q"], timeout=10)
        m = re.search(r"NV Power Mode:\s*(\S+)", res.stdout)
        mode = m.group(1) if m else None
        details["nvpmodel_mode"] = mode
        if mode is None:
            details["nvpmodel_error"] = (res.stderr or res.stdout).strip()[-200:]
            problems.append(f"nvpmodel -q gave no power mode (exit {res.rc})")
            fixes.append("run sudo nvpmodel -q and check /etc/nvpmodel.conf")
        elif "MAXN" not in mode.upper():
            problems.append(f"power mode {mode}")
            fixes.append(
                f"sudo nvpmodel -m {maxn_id if maxn_id is not None else '0'}"
                + ("" if maxn_id is not None else " (the MAXN id is in /etc/nvpmodel.conf)")
            )
    else:
        details["nvpmodel_mode"] = None
    jc = ctx.which("jetson_clocks")
    if jc:
        res = ctx.run([jc, "--show"], timeout=10)
        if res.rc == 0 and "MinFreq" in res.stdout:
            clocks = _parse_jetson_clocks(res.stdout)
            details["jetson_clocks"] = clocks
            if not clocks["locked"]:
                problems.append("clocks not locked (jetson_clocks off)")
                fixes.append("sudo jetson_clocks")
        else:
            details["jetson_clocks"] = f"unknown (jetson_clocks --show exited {res.rc}; needs sudo)"
    if not nvp and not jc:
        return verdict(Status.SKIP, "nvpmodel and jetson_clocks are not installed", **details)
    if problems:
        return verdict(
            Status.WARN,
            "; ".join(problems) + ": latency will vary",
            " && ".join(fixes),
            **details,
        )
    return verdict(
        Status.PASS,
        f"power mode {details.get('nvpmodel_mode') or '?'}"
        + (", clocks locked" if isinstance(details.get("jetson_clocks"), dict) else ""),
        **details,
    )
