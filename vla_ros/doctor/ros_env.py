"""Checks of the ROS distro environment and of the Python interpreter (checks 1 and 2).

Facts: :func:`ros_facts` (the sourced environment) and :func:`probe_python` (imports in a fresh
interpreter); the ``check_*`` judgements turn them into results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vla_ros.doctor.registry import Verdict, check, verdict
from vla_ros.doctor.result import DoctorContext, Status

SUPPORTED_DISTROS = ("humble", "jazzy", "kilted", "rolling")
KNOWN_DISTROS = (
    "ardent",
    "bouncy",
    "crystal",
    "dashing",
    "eloquent",
    "foxy",
    "galactic",
    "humble",
    "iron",
    "jazzy",
    "kilted",
    "lyrical",
    "rolling",
    "kinetic",
    "lunar",
    "melodic",
    "noetic",
)
# rclpy major version shipped by each distro (rolling moves on; anything >= kilted's is accepted).
RCLPY_MAJOR = {"humble": (3,), "jazzy": (7,), "kilted": (9,)}
# CPython the distro's binary packages are built for (Ubuntu's python3 on the tier-1 platform).
DISTRO_PYTHON = {"humble": "3.10", "jazzy": "3.12", "kilted": "3.12", "rolling": "3.12"}
PATH_VARS = ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "PATH")
_OPT_ROS = re.compile(r"/opt/ros/([a-z]+)(?=/|$)")


def _distros_in_path(entry: str) -> set[str]:
    return {m for m in _OPT_ROS.findall(entry) if m in KNOWN_DISTROS}


def _declared_distro(prefix: Path) -> str | None:
    """The distro a prefix declares through ros_environment (``1.ros_distro.{dsv,sh}``)."""
    env_dir = prefix / "share" / "ros_environment" / "environment"
    for name in ("1.ros_distro.dsv", "1.ros_distro.sh"):
        f = env_dir / name
        if f.is_file():
            m = re.search(r"ROS_DISTRO[;= ]+([a-z]+)", f.read_text(errors="replace"))
            if m:
                return m.group(1)
    return None


@dataclass(frozen=True)
class RosFacts:
    """The sourced ROS environment, as found (no judgement).

    Attributes:
        distro: ``ROS_DISTRO`` ('' when unset).
        version: ``ROS_VERSION`` ('' when unset).
        ament_prefixes: ``AMENT_PREFIX_PATH`` entries, in order.
        declared_by_prefix: prefix -> the distro its ros_environment declares.
        distros_seen: distro -> the path variables naming ``/opt/ros/<distro>``.
        foreign_entries: path variable -> its entries of a distro other than ``distro``.
        missing_prefixes: ``AMENT_PREFIX_PATH`` / ``CMAKE_PREFIX_PATH`` -> entries that do not exist.
    """

    distro: str
    version: str
    ament_prefixes: list[str]
    declared_by_prefix: dict[str, str]
    distros_seen: dict[str, list[str]]
    foreign_entries: dict[str, list[str]]
    missing_prefixes: dict[str, list[str]]


def ros_facts(ctx: DoctorContext) -> RosFacts:
    """Read the ROS environment of ``ctx``: variables, the prefixes' declared distros, the
    distros named on the path variables and the prefixes that do not exist."""
    distro = ctx.env.get("ROS_DISTRO", "").strip()
    declared: dict[str, str] = {}
    for prefix in ctx.split("AMENT_PREFIX_PATH"):
        d = _declared_distro(Path(prefix))
        if d:
            declared[prefix] = d
    foreign: dict[str, list[str]] = {}
    seen: dict[str, set[str]] = {}
    for var in PATH_VARS:
        for entry in ctx.split(var):
            for d in _distros_in_path(entry):
                seen.setdefault(d, set()).add(var)
                if distro and d != distro:
                    foreign.setdefault(var, []).append(entry)
    missing: dict[str, list[str]] = {}
    for var in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
        for entry in ctx.split(var):
            if not Path(entry).is_dir():
                missing.setdefault(var, []).append(entry)
    return RosFacts(
        distro=distro,
        version=ctx.env.get("ROS_VERSION", "").strip(),
        ament_prefixes=ctx.split("AMENT_PREFIX_PATH"),
        declared_by_prefix=declared,
        distros_seen={d: sorted(v) for d, v in seen.items()},
        foreign_entries=foreign,
        missing_prefixes=missing,
    )


@check("ros.distro", "ROS distro", args=lambda f: (f.ctx, f.ros))
def check_distro(ctx: DoctorContext, ros: RosFacts | None = None) -> Verdict:
    """``ROS_DISTRO`` set, supported, ROS 2, and agreeing with the sourced prefixes
    (``ros``: :func:`ros_facts` of ``ctx``, read here when not given)."""
    ros = ros or ros_facts(ctx)
    distro, version = ros.distro, ros.version
    if not distro:
        return verdict(
            Status.FAIL,
            "ROS_DISTRO is not set: no ROS 2 environment is sourced",
            "source /opt/ros/<distro>/setup.bash (humble, jazzy, kilted or rolling), or run through ./env.sh",
            supported=list(SUPPORTED_DISTROS),
        )
    if distro not in SUPPORTED_DISTROS:
        why = "unknown" if distro not in KNOWN_DISTROS else "not supported (end of life or ROS 1)"
        return verdict(
            Status.FAIL,
            f"ROS_DISTRO={distro} is {why}",
            f"open a new shell and source a supported distro: {', '.join(SUPPORTED_DISTROS)} "
            "(e.g. source /opt/ros/jazzy/setup.bash)",
            distro=distro,
            supported=list(SUPPORTED_DISTROS),
        )
    if version and version != "2":
        return verdict(
            Status.FAIL,
            f"ROS_VERSION={version} (a ROS 1 setup is sourced)",
            "open a new shell without ROS 1 and source only the ROS 2 setup.bash",
            distro=distro,
            ros_version=version,
        )
    declared = ros.declared_by_prefix
    others = {p: d for p, d in declared.items() if d != distro}
    if others:
        p, d = next(iter(others.items()))
        return verdict(
            Status.FAIL,
            f"ROS_DISTRO={distro} but prefix {p} is a {d} install",
            f"open a new shell and source only /opt/ros/{distro}/setup.bash and workspaces built "
            f"against {distro}",
            distro=distro,
            declared_by_prefix=declared,
        )
    return verdict(Status.PASS, f"ROS 2 {distro}", distro=distro, declared_by_prefix=declared)


@check("ros.paths", "ROS paths", args=lambda f: (f.ctx, f.ros))
def check_paths(ctx: DoctorContext, ros: RosFacts | None = None) -> Verdict:
    """No second distro in the path variables, and every ament/CMake prefix exists
    (``ros``: :func:`ros_facts` of ``ctx``, read here when not given)."""
    ros = ros or ros_facts(ctx)
    distro, foreign, seen, missing = ros.distro, ros.foreign_entries, ros.distros_seen, ros.missing_prefixes
    details: dict[str, Any] = {
        "distro": distro or None,
        "distros_seen": seen,
        "foreign_entries": foreign,
        "missing_prefixes": missing,
        "ament_prefix_path": ros.ament_prefixes,
    }
    if foreign:
        var, entries = next(iter(foreign.items()))
        return verdict(
            Status.FAIL,
            f"a second distro is on the paths: {entries[0]} in {var} while ROS_DISTRO={distro}",
            f"open a new shell and source only /opt/ros/{distro}/setup.bash (check ~/.bashrc for "
            "a second 'source /opt/ros/...')",
            **details,
        )
    if not distro and len(seen) > 1:
        return verdict(
            Status.FAIL,
            f"several distros on the paths: {', '.join(sorted(seen))}",
            "open a new shell and source exactly one /opt/ros/<distro>/setup.bash",
            **details,
        )
    if missing:
        var, entries = next(iter(missing.items()))
        return verdict(
            Status.WARN,
            f"{var} names {len(entries)} prefix(es) that do not exist: {', '.join(entries[:3])}",
            "a workspace was deleted or moved after it was sourced: open a new shell and source "
            "the setup.bash of the workspaces that exist",
            **details,
        )
    if not ros.ament_prefixes:
        return verdict(
            Status.WARN,
            "AMENT_PREFIX_PATH is empty: no ROS prefix is sourced",
            "source the distro and the workspace: source install/setup.bash (or ./env.sh)",
            **details,
        )
    return verdict(
        Status.PASS,
        f"{len(ros.ament_prefixes)} ament prefix(es), one distro",
        **details,
    )


# --- Python interpreter ------------------------------------------------------------------------

PYTHON_PROBE = r"""
import json, os, sys
out = {"executable": sys.executable, "version": "%d.%d.%d" % sys.version_info[:3],
       "prefix": sys.prefix, "base_prefix": sys.base_prefix, "modules": {}}
from importlib import metadata
def dist_version(names):
    for n in names:
        try:
            return metadata.version(n)
        except Exception:
            pass
    return None
for mod, dists in (("rclpy", ["rclpy", "ros-rclpy"]), ("numpy", ["numpy"]),
                   ("cv2", ["opencv-python-headless", "opencv-python", "opencv-contrib-python",
                            "opencv-contrib-python-headless"])):
    info = {"ok": False, "file": None, "version": None, "error": None,
            "dist_version": dist_version(dists)}
    try:
        m = __import__(mod)
        info["ok"] = True
        info["file"] = getattr(m, "__file__", None)
        info["version"] = getattr(m, "__version__", None)
    except BaseException as exc:
        info["error"] = (type(exc).__name__ + ": " + str(exc))[:400]
    out["modules"][mod] = info
import importlib.util
out["installed"] = {m: importlib.util.find_spec(m) is not None
                    for m in ("torch", "tensorrt", "onnxruntime")}
out["dists"] = {"torch": dist_version(["torch"]),
                "tensorrt": dist_version(["tensorrt", "tensorrt-cu12", "tensorrt_cu12"])}
ort = {"ok": False, "version": None, "providers": [], "error": None}
if out["installed"]["onnxruntime"]:
    try:
        import onnxruntime
        ort.update(ok=True, version=onnxruntime.__version__,
                   providers=list(onnxruntime.get_available_providers()))
    except BaseException as exc:
        ort["error"] = (type(exc).__name__ + ": " + str(exc))[:400]
else:
    ort["error"] = "not installed"
out["onnxruntime"] = ort
print("@@DOCTOR@@" + json.dumps(out))
"""


def probe_python(ctx: DoctorContext, timeout: float = 60.0) -> dict[str, Any]:
    """Run :data:`PYTHON_PROBE` in ``ctx.python`` with ``ctx.env``; return its findings.

    On failure returns ``{"error": ...}``. The probe runs in a subprocess so that the imports are
    those a fresh process with this environment sees, and so a crashing extension cannot take the
    doctor down.
    """
    return ctx.probe(PYTHON_PROBE, f"{ctx.python} -c <probe>", timeout=timeout, stderr_tail=True)


def _rclpy_version(info: dict[str, Any]) -> str | None:
    if info.get("dist_version"):
        return info["dist_version"]
    f = info.get("file")
    if not f:
        return None
    # distro install: <prefix>/lib/pythonX/site-packages/rclpy/__init__.py -> <prefix>/share/rclpy
    for parent in Path(f).parents:
        pkg = parent / "share" / "rclpy" / "package.xml"
        if pkg.is_file():
            m = re.search(r"<version>([^<]+)</version>", pkg.read_text(errors="replace"))
            return m.group(1).strip() if m else None
    return None


@check("python.rclpy", "rclpy import", args=lambda f: (f.ctx, f.python_probe))
def check_rclpy(ctx: DoctorContext, probe: dict[str, Any]) -> Verdict:
    """This interpreter imports rclpy, and rclpy's version belongs to ``ROS_DISTRO``."""
    if "error" in probe:
        return verdict(
            Status.FAIL,
            f"could not run the Python probe: {probe['error']}",
            f"check that {ctx.python} runs",
            python=ctx.python,
        )
    info = probe["modules"]["rclpy"]
    distro = ctx.env.get("ROS_DISTRO", "")
    pyver = ".".join(probe["version"].split(".")[:2])
    details = {
        "python": probe["executable"],
        "python_version": probe["version"],
        "rclpy_file": info.get("file"),
        "error": info.get("error"),
    }
    if not info["ok"]:
        want = DISTRO_PYTHON.get(distro)
        if want and want != pyver and "venv" not in probe["executable"]:
            fix = (
                f"ROS 2 {distro} is built for Python {want} but this is Python {pyver}: run "
                f"the distro's /usr/bin/python{want}, or deactivate conda/pyenv"
            )
        elif want and want != pyver:
            fix = (
                f"this venv runs Python {pyver}; {distro}'s rclpy needs Python {want}: recreate "
                f"the venv with python{want} -m venv --system-site-packages"
            )
        else:
            fix = f"source /opt/ros/{distro or '<distro>'}/setup.bash in this shell (or ./env.sh)"
        return verdict(
            Status.FAIL,
            f"Python {pyver} cannot import rclpy: {info.get('error')}",
            fix,
            **details,
        )
    version = _rclpy_version(info)
    details["rclpy_version"] = version
    if version and distro in SUPPORTED_DISTROS:
        major = int(version.split(".")[0])
        ok = major >= RCLPY_MAJOR["kilted"][0] if distro == "rolling" else (major in RCLPY_MAJOR[distro])
        if not ok:
            owner = next((d for d, v in RCLPY_MAJOR.items() if major in v), "another distro")
            return verdict(
                Status.FAIL,
                f"rclpy {version} (from {info.get('file')}) belongs to {owner}, not ROS_DISTRO={distro}",
                "open a new shell and source one distro; remove stray rclpy from PYTHONPATH or "
                "pip (pip uninstall rclpy)",
                **details,
            )
    return verdict(
        Status.PASS,
        f"rclpy {version or '(version unknown)'} imports in Python {pyver}",
        **details,
    )


@check("python.numpy_cv2", "numpy / OpenCV ABI", args=lambda f: (f.ctx, f.python_probe))
def check_numpy_cv2(ctx: DoctorContext, probe: dict[str, Any]) -> Verdict:
    """numpy's major version against the ABI OpenCV (cv2) was built for."""
    if "error" in probe:
        return verdict(Status.SKIP, "Python probe did not run")
    np_i, cv_i = probe["modules"]["numpy"], probe["modules"]["cv2"]
    details = {
        "numpy": np_i.get("version"),
        "numpy_file": np_i.get("file"),
        "cv2": cv_i.get("version"),
        "cv2_file": cv_i.get("file"),
        "cv2_error": cv_i.get("error"),
    }
    if not np_i["ok"]:
        return verdict(
            Status.FAIL,
            f"numpy does not import: {np_i.get('error')}",
            "pip install numpy (inside the venv) or apt install python3-numpy",
            **details,
        )
    np_major = int(str(np_i["version"]).split(".")[0])
    abi_text = (cv_i.get("error") or "") + probe.get("stderr_tail", "")
    abi_broken = any(
        s in abi_text
        for s in (
            "_ARRAY_API not found",
            "compiled using NumPy 1.x",
            "numpy.core.multiarray failed",
            "numpy.dtype size changed",
        )
    )
    if abi_broken:
        return verdict(
            Status.FAIL,
            f"cv2 was built against another numpy ABI than numpy {np_i['version']}",
            "pip install 'numpy<2' when cv2/cv_bridge come from apt (Humble/Jazzy), or pip "
            "install -U opencv-python-headless when both come from pip",
            **details,
        )
    if not cv_i["ok"]:
        if "No module named" in (cv_i.get("error") or ""):
            return verdict(Status.SKIP, "cv2 not installed", **details)
        return verdict(
            Status.FAIL,
            f"cv2 does not import: {cv_i.get('error')}",
            "reinstall OpenCV: pip install -U opencv-python-headless",
            **details,
        )
    cv_file = cv_i.get("file") or ""
    if np_major >= 2 and cv_file.startswith(("/usr/lib/python3/", "/usr/lib/python3.")):
        return verdict(
            Status.WARN,
            f"numpy {np_i['version']} with the distro's cv2 ({cv_file}), which is built for numpy 1",
            "pip install 'numpy<2' in this environment so cv2 and cv_bridge keep their ABI",
            **details,
        )
    return verdict(
        Status.PASS,
        f"numpy {np_i['version']} and cv2 {cv_i.get('version')} import together",
        **details,
    )


@check("python.env", "Python environment", args=lambda f: (f.ctx, f.python_probe))
def check_venv(ctx: DoctorContext, probe: dict[str, Any]) -> Verdict:
    """A venv or conda interpreter that may shadow the distro's system packages."""
    if "error" in probe:
        return verdict(Status.SKIP, "Python probe did not run")
    prefix, base = probe["prefix"], probe["base_prefix"]
    conda = ctx.env.get("CONDA_PREFIX")
    rclpy_file = probe["modules"]["rclpy"].get("file") or ""
    details = {"prefix": prefix, "base_prefix": base, "conda_prefix": conda, "rclpy_file": rclpy_file or None}
    in_venv = prefix != base
    if conda and prefix.startswith(conda):
        return verdict(
            Status.WARN,
            f"conda environment {conda} is active: its Python and libraries shadow the distro's",
            "conda deactivate before using a distro install (or use RoboStack's ROS inside conda only)",
            **details,
        )
    if in_venv and rclpy_file.startswith(prefix):
        return verdict(
            Status.WARN,
            f"ROS 2 from PyPI wheels inside the venv {prefix} (works for vla_ros; distro tools "
            "such as ros2 CLI and rviz do not see it)",
            "nothing to do on a development machine; on a robot prefer a distro install "
            "(source /opt/ros/<distro>/setup.bash)",
            **details,
        )
    if in_venv:
        cfg = Path(prefix) / "pyvenv.cfg"
        system_site = (
            cfg.is_file()
            and re.search(r"include-system-site-packages\s*=\s*true", cfg.read_text(), re.I) is not None
        )
        details["system_site_packages"] = system_site
        if not system_site:
            return verdict(
                Status.WARN,
                f"venv {prefix} without system site packages: the distro's Python dependencies "
                "(python3-yaml, numpy, ...) are hidden",
                f"recreate it: python3 -m venv --system-site-packages {prefix}",
                **details,
            )
        return verdict(Status.PASS, f"venv {prefix} on top of the system site packages", **details)
    return verdict(Status.PASS, f"system Python {probe['version']}", **details)
