"""Middleware checks (check 4): RMW implementation, domain id, discovery settings, multicast.

Facts: :func:`rmw_facts` (the RMW library, found and loaded) and :func:`network_interfaces`; the
environment variables are read from the context. The ``check_*`` judgements turn them into results.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from vla_ros.doctor.registry import Verdict, check, verdict
from vla_ros.doctor.result import DoctorContext, Status

DEFAULT_RMW = "rmw_fastrtps_cpp"
KNOWN_RMWS = (
    "rmw_fastrtps_cpp",
    "rmw_fastrtps_dynamic_cpp",
    "rmw_cyclonedds_cpp",
    "rmw_connextdds",
    "rmw_zenoh_cpp",
    "rmw_gurumdds_cpp",
)
DISCOVERY_RANGES = ("SUBNET", "LOCALHOST", "OFF", "SYSTEM_DEFAULT")
IFF_UP, IFF_LOOPBACK, IFF_MULTICAST = 0x1, 0x8, 0x1000


def rmw_library_dirs(ctx: DoctorContext) -> list[Path]:
    """Folders an rmw library may be loaded from: LD_LIBRARY_PATH, ``<prefix>/lib`` of every
    ament prefix, and the interpreter prefix (ROS from PyPI wheels)."""
    dirs = [Path(p) for p in ctx.split("LD_LIBRARY_PATH")]
    dirs += [Path(p) / "lib" for p in ctx.split("AMENT_PREFIX_PATH")]
    dirs.append(Path(ctx.python).resolve().parent.parent / "lib")
    dirs.append(Path(sys.prefix) / "lib")
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def find_rmw_library(ctx: DoctorContext, rmw: str) -> Path | None:
    """``lib<rmw>.so`` in :func:`rmw_library_dirs`, or ``None``."""
    for d in rmw_library_dirs(ctx):
        f = d / f"lib{rmw}.so"
        if f.is_file():
            return f
    return None


def installed_rmws(ctx: DoctorContext) -> list[str]:
    """rmw implementations whose library can be found."""
    return [r for r in KNOWN_RMWS if find_rmw_library(ctx, r) is not None]


@dataclass(frozen=True)
class RmwFacts:
    """The RMW implementation as found (no judgement).

    Attributes:
        setting: ``RMW_IMPLEMENTATION`` ('' when unset).
        name: the implementation in use (the setting, else :data:`DEFAULT_RMW`).
        installed: implementations whose library can be found.
        library: ``lib<name>.so``, or ``None`` when not found.
        load_error: why the library does not load (``None``: it loads, or loading was not tried).
    """

    setting: str
    name: str
    installed: list[str]
    library: Path | None
    load_error: str | None = None


def rmw_facts(ctx: DoctorContext, load: bool = True) -> RmwFacts:
    """Find the RMW library of ``ctx`` (and, with ``load``, try loading it in a subprocess with
    ``ctx``'s environment)."""
    setting = ctx.env.get("RMW_IMPLEMENTATION", "").strip()
    name = setting or DEFAULT_RMW
    lib = find_rmw_library(ctx, name)
    error = None
    if lib is not None and load:
        res = ctx.run([ctx.python, "-c", f"import ctypes; ctypes.CDLL({str(lib)!r})"], timeout=30)
        if res.rc != 0:
            error = (res.stderr.strip().splitlines() or ["?"])[-1]
    return RmwFacts(setting, name, installed_rmws(ctx), lib, error)


@check("middleware.rmw", "RMW implementation", args=lambda f: (f.ctx, True, f.rmw))
def check_rmw(ctx: DoctorContext, load: bool = True, facts: RmwFacts | None = None) -> Verdict:
    """``RMW_IMPLEMENTATION`` set, known, and its library present (and loadable when ``load``, tried in a
    subprocess with this environment); ``facts``: :func:`rmw_facts`, gathered here when not given."""
    facts = facts or rmw_facts(ctx, load)
    rmw, have, name, lib = facts.setting, facts.installed, facts.name, facts.library
    details = {"rmw_implementation": rmw or None, "installed": have}
    details["library"] = str(lib) if lib else None
    if lib is None:
        status = Status.FAIL if rmw else Status.WARN
        return verdict(
            status,
            f"{'RMW_IMPLEMENTATION=' + rmw if rmw else 'default ' + DEFAULT_RMW}: lib{name}.so not found",
            (
                f"install it (apt install ros-$ROS_DISTRO-{name.replace('_', '-')}) or "
                f"pick an installed one: {', '.join(have) or 'none found'}"
            ),
            **details,
        )
    if facts.load_error is not None:
        details["load_error"] = facts.load_error
        return verdict(
            Status.FAIL,
            f"lib{name}.so does not load: {facts.load_error}",
            "source the distro's setup.bash so its libraries are on "
            "LD_LIBRARY_PATH, or reinstall the rmw package",
            **details,
        )
    if not rmw:
        return verdict(
            Status.WARN,
            f"RMW_IMPLEMENTATION not set (the default {DEFAULT_RMW} is used)",
            f"export RMW_IMPLEMENTATION={DEFAULT_RMW} on every machine of the robot so they agree",
            **details,
        )
    return verdict(Status.PASS, f"{rmw} ({lib})", **details)


@check("middleware.domain", "ROS_DOMAIN_ID")
def check_domain(ctx: DoctorContext) -> Verdict:
    """``ROS_DOMAIN_ID`` unset or an integer 0..232 (0..101 and 215..232 are port-safe)."""
    raw = ctx.env.get("ROS_DOMAIN_ID")
    if raw is None or raw.strip() == "":
        return verdict(Status.PASS, "ROS_DOMAIN_ID not set (domain 0)", domain_id=0)
    try:
        dom = int(raw.strip())
    except ValueError:
        return verdict(
            Status.FAIL,
            f"ROS_DOMAIN_ID={raw!r} is not an integer",
            "export ROS_DOMAIN_ID=<0..101> (the same on every machine)",
            domain_id=raw,
        )
    if not 0 <= dom <= 232:
        return verdict(
            Status.FAIL,
            f"ROS_DOMAIN_ID={dom} is outside 0..232",
            "export ROS_DOMAIN_ID=<0..101> (the same on every machine)",
            domain_id=dom,
        )
    if 101 < dom < 215:
        return verdict(
            Status.WARN,
            f"ROS_DOMAIN_ID={dom} maps into Linux's ephemeral port range (102..214 may collide)",
            "pick a domain id in 0..101 (the same on every machine)",
            domain_id=dom,
        )
    return verdict(Status.PASS, f"ROS_DOMAIN_ID={dom}", domain_id=dom)


@check("middleware.discovery", "discovery settings")
def check_discovery(ctx: DoctorContext) -> Verdict:
    """Deprecated ``ROS_LOCALHOST_ONLY`` vs ``ROS_AUTOMATIC_DISCOVERY_RANGE``/``ROS_STATIC_PEERS``."""
    distro = ctx.env.get("ROS_DISTRO", "")
    lo = ctx.env.get("ROS_LOCALHOST_ONLY", "").strip()
    rng = ctx.env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip()
    peers_raw = ctx.env.get("ROS_STATIC_PEERS", "").strip()
    peers = [p.strip() for p in peers_raw.split(";") if p.strip()]
    details = {
        "ROS_LOCALHOST_ONLY": lo or None,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": rng or None,
        "ROS_STATIC_PEERS": peers,
    }
    if rng and rng.upper() not in DISCOVERY_RANGES:
        return verdict(
            Status.FAIL,
            f"ROS_AUTOMATIC_DISCOVERY_RANGE={rng!r} is not one of {DISCOVERY_RANGES}",
            "export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET (or LOCALHOST)",
            **details,
        )
    if lo and lo not in ("0", "1"):
        return verdict(
            Status.FAIL,
            f"ROS_LOCALHOST_ONLY={lo!r} (must be 0 or 1)",
            "unset ROS_LOCALHOST_ONLY",
            **details,
        )
    if peers_raw and len(peers) != len(peers_raw.split(";")):
        return verdict(
            Status.WARN,
            f"ROS_STATIC_PEERS={peers_raw!r} has empty entries",
            "separate peers with ';' and no empty entries, e.g. 192.168.1.10;robot.local",
            **details,
        )
    if distro == "humble":
        if rng or peers:
            return verdict(
                Status.WARN,
                "ROS_AUTOMATIC_DISCOVERY_RANGE/ROS_STATIC_PEERS are ignored on Humble",
                "on Humble use ROS_LOCALHOST_ONLY=1 (or a DDS XML profile) instead",
                **details,
            )
        return verdict(
            Status.PASS,
            "localhost only" if lo == "1" else "default discovery (subnet)",
            **details,
        )
    if lo == "1" and rng and rng.upper() != "LOCALHOST":
        return verdict(
            Status.FAIL,
            f"ROS_LOCALHOST_ONLY=1 conflicts with ROS_AUTOMATIC_DISCOVERY_RANGE={rng}",
            "unset ROS_LOCALHOST_ONLY (deprecated) and keep ROS_AUTOMATIC_DISCOVERY_RANGE",
            **details,
        )
    if lo == "1":
        return verdict(
            Status.WARN,
            f"ROS_LOCALHOST_ONLY is deprecated on {distro or 'this distro'}",
            "unset ROS_LOCALHOST_ONLY; export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST",
            **details,
        )
    if rng.upper() == "OFF" and not peers:
        return verdict(
            Status.WARN,
            "ROS_AUTOMATIC_DISCOVERY_RANGE=OFF and no ROS_STATIC_PEERS: this process discovers nothing",
            "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST or SUBNET, or list peers in ROS_STATIC_PEERS",
            **details,
        )
    desc = (rng.upper() or "SUBNET (default)") + (f", static peers {peers}" if peers else "")
    return verdict(Status.PASS, f"discovery range {desc}", **details)


def network_interfaces(ctx: DoctorContext) -> dict[str, dict]:
    """Network interfaces under ``/sys/class/net`` (of ``ctx.root``): name -> flags, up,
    operstate, loopback, multicast; ``{}`` when unreadable."""
    base = ctx.path("/sys/class/net")
    out: dict[str, dict] = {}
    if not base.is_dir():
        return out
    for d in sorted(base.iterdir()):
        try:
            flags = int((d / "flags").read_text().strip(), 16)
        except (OSError, ValueError):
            continue
        try:
            oper = (d / "operstate").read_text().strip()
        except OSError:
            oper = "unknown"
        out[d.name] = {
            "flags": hex(flags),
            "up": bool(flags & IFF_UP),
            "operstate": oper,
            "loopback": bool(flags & IFF_LOOPBACK),
            "multicast": bool(flags & IFF_MULTICAST),
        }
    return out


@check("middleware.multicast", "multicast interface", args=lambda f: (f.ctx, f.interfaces))
def check_multicast(ctx: DoctorContext, ifaces: dict[str, dict] | None = None) -> Verdict:
    """A non-loopback interface that is up and multicast-capable (DDS discovery needs one);
    ``ifaces``: :func:`network_interfaces`, read here when not given."""
    rng = ctx.env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip().upper()
    local_only = rng in ("LOCALHOST", "OFF") or ctx.env.get("ROS_LOCALHOST_ONLY") == "1"
    ifaces = network_interfaces(ctx) if ifaces is None else ifaces
    if not ifaces:
        return verdict(Status.SKIP, f"cannot read network interfaces ({ctx.path('/sys/class/net')})")
    good = [
        n
        for n, i in ifaces.items()
        if i["up"] and i["multicast"] and not i["loopback"] and i["operstate"] in ("up", "unknown")
    ]
    details = {"interfaces": ifaces, "multicast_capable": good}
    if good:
        return verdict(Status.PASS, f"multicast on {', '.join(good)}", **details)
    if local_only:
        return verdict(
            Status.PASS,
            "no multicast interface, but discovery is limited to this host",
            **details,
        )
    if ctx.env.get("ROS_STATIC_PEERS", "").strip():
        return verdict(Status.PASS, "no multicast interface; discovery uses ROS_STATIC_PEERS", **details)
    return verdict(
        Status.WARN,
        "no interface is up and multicast-capable: DDS discovery with other machines will fail",
        "bring the robot network up (ip link set <if> multicast on), or use "
        "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST on a single machine / ROS_STATIC_PEERS",
        **details,
    )


@check("middleware.large_data", "camera frames over shared memory")
def check_large_data(ctx: DoctorContext) -> Verdict:
    """Fast DDS can carry a camera frame over shared memory (segment >= one 640x480 rgb8 frame)."""
    from vla_ros.util.dds import (
        FASTDDS_DEFAULT_SEGMENT,
        PROFILE_ENV,
        VGA_RGB8_BYTES,
        large_data_profile,
        shm_segment_bytes,
        uses_fastdds,
    )

    rmw = ctx.env.get("RMW_IMPLEMENTATION", "").strip() or DEFAULT_RMW
    if not uses_fastdds(ctx.env):
        return verdict(Status.SKIP, f"RMW {rmw} is not Fast DDS", rmw=rmw)
    ours = large_data_profile(ctx.env)
    fix = (
        f"export {PROFILE_ENV}={ours or '<vla_ros share>/config/fastdds_large_data.xml'} in every "
        "process of the robot's graph (camera drivers too: the publisher's segment carries the frames)"
    )
    raw = ctx.env.get(PROFILE_ENV, "").strip()
    frame = f"one 640x480 rgb8 frame ({VGA_RGB8_BYTES:,} B)"
    if not raw:
        return verdict(
            Status.WARN,
            f"{PROFILE_ENV} is not set: Fast DDS's default shared-memory segment "
            f"({FASTDDS_DEFAULT_SEGMENT // 1024} KiB) is smaller than {frame}, so frames between "
            "processes go over fragmented UDP (tens of ms, lost samples)",
            fix,
            rmw=rmw,
        )
    path = Path(raw)
    try:
        segment = shm_segment_bytes(path.read_text())
    except (OSError, ValueError) as exc:
        return verdict(Status.WARN, f"{PROFILE_ENV}={raw} cannot be read: {exc}", fix, rmw=rmw, profile=raw)
    if segment is None or segment < VGA_RGB8_BYTES:
        what = "declares no SHM transport" if segment is None else f"has a {segment:,} B SHM segment"
        return verdict(
            Status.WARN,
            f"{PROFILE_ENV}={raw} {what}: smaller than {frame}",
            fix,
            rmw=rmw,
            profile=raw,
            segment_bytes=segment,
        )
    return verdict(
        Status.PASS,
        f"{path.name}: SHM segment {segment / 2**20:.0f} MiB (>= {frame})",
        rmw=rmw,
        profile=raw,
        segment_bytes=segment,
    )
