"""Joint limits from a URDF string (the ``robot_description``), read as urdfdom reads it.

The reading follows urdfdom (``urdf_parser/src/joint.cpp``, what robot_state_publisher, MoveIt and
ros2_control load), with the python standard library's ElementTree:

* only the ``<joint>`` children of ``<robot>`` are joints (a ``<transmission>``'s ``<joint>`` is not);
  a joint needs a ``name`` and one of the six URDF types; names are unique;
* ``revolute`` and ``prismatic`` joints need a ``<limit>`` (urdfdom rejects the file without one);
  ``continuous`` joints have no position limits by design, their ``<limit>`` gives the velocity;
* ``<limit>`` needs ``velocity`` and ``effort`` (urdfdom rejects the file without them); a missing
  ``lower``/``upper`` urdfdom reads as 0, which locks the joint at 0;
* ``<mimic joint= multiplier=(1) offset=(0)>`` makes a joint follow its leader:
  ``q = multiplier * q_leader + offset``;
* ``<safety_controller soft_lower_limit= soft_upper_limit=>``: where given, the tighter of the soft
  and the ``<limit>`` position limits is used, as MoveIt's RobotModel does (``robot_model.cpp``):
  the robot's own safety controller pushes back beyond the soft limits, so a command there fights it.

Where urdfdom would reject the file or read a 0 the author surely did not mean (a missing
``<limit>``, ``lower``, ``upper``, ``velocity``, or ``velocity="0"``), the side stays unlimited here
and :attr:`UrdfJointLimit.missing` says what is lacking: arming is then refused naming the joint
and the attribute (see :func:`limits_hint`), unless the executor's parameters give that limit.

Why not a library: yourdfpy 0.0.60 (pulls trimesh and ~350 MB of dependencies) and
urdf_parser_py 0.0.4 (PyPI) both fail on an unexpanded xacro with a bare float-conversion error,
accept a ``<robot>`` without joints, and name neither the joint nor, in yourdfpy, the attribute;
urdf_parser_py accepts a revolute joint without ``<limit>``. The checks below are needed either
way, and the reading itself is small.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from vla_ros.contract.errors import VlaRosError
from vla_ros.control.urdf_names import describe_unmatched

JOINT_TYPES = ("revolute", "continuous", "prismatic", "fixed", "floating", "planar")
MOVABLE = ("revolute", "continuous", "prismatic")
#: a revolute limit beyond 2π (+ this slack, for 6.2832-style roundings) is probably in degrees
TWO_PI_SLACK = 1e-3
#: a prismatic limit beyond this [m] is probably in millimetres
PRISMATIC_WARN_M = 10.0
XACRO_FIX = (
    "robot_description is unexpanded xacro: run xacro first (`xacro robot.urdf.xacro > robot.urdf`, "
    "or Command(['xacro ', path]) in the launch file)"
)

__all__ = [
    "JOINT_TYPES",
    "Mimic",
    "UrdfError",
    "UrdfJointLimit",
    "UrdfLimits",
    "describe_unmatched",
    "limits_hint",
    "parse_urdf_limits",
    "uncommandable",
]


class UrdfError(VlaRosError, ValueError):
    """The robot_description could not be read."""


@dataclass(frozen=True)
class Mimic:
    """``<mimic>``: the joint follows ``joint``: ``q = multiplier * q_joint + offset``."""

    joint: str
    multiplier: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class UrdfJointLimit:
    """Limits of one movable joint [rad, rad/s or m, m/s]; ``inf`` where the URDF gives none.

    ``continuous`` joints have no position limits (``continuous`` is True: unbounded by design,
    not by omission). ``missing`` names what the URDF lacks for this joint, one phrase each (e.g.
    ``'no <limit>'``, ``'<limit> has no lower'``); ``soft`` is True when a safety_controller soft
    limit tightened ``lower``/``upper``. ``effort`` is ignored.
    """

    lower: float = -math.inf
    upper: float = math.inf
    velocity: float = math.inf
    continuous: bool = False
    missing: tuple[str, ...] = ()
    mimic: Mimic | None = None
    soft: bool = False


@dataclass(frozen=True, eq=False)
class UrdfLimits(Mapping[str, UrdfJointLimit]):
    """``{joint name: UrdfJointLimit}`` of the movable joints, in URDF order, plus the rest.

    ``joint_types`` holds every joint (``{name: type}``, fixed ones too); ``warnings`` are lines
    to log once when the URDF is loaded (units, what urdfdom would reject).
    """

    robot: str
    limits: Mapping[str, UrdfJointLimit]
    joint_types: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> UrdfJointLimit:
        return self.limits[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.limits)

    def __len__(self) -> int:
        return len(self.limits)


def parse_urdf_limits(urdf: str) -> UrdfLimits:
    """Read the movable joints' limits of a URDF document (see the module docstring).

    Raises :class:`UrdfError` naming the cause and the fix when ``urdf`` is not XML, is unexpanded
    xacro, is not a ``<robot>``, has no (movable) joints, or a joint or number is malformed.
    """
    root, namespaces = _parse_xml(urdf)
    _reject_xacro(root, namespaces)
    if root.tag != "robot":
        raise UrdfError(f"robot_description root element is <{root.tag}>, expected <robot>")
    robot = root.get("name", "")
    joints = root.findall("joint")
    if not joints:
        raise UrdfError(
            f"robot_description <robot name={robot!r}> has no joints; give the whole robot's "
            "expanded URDF (robot_state_publisher's robot_description), not one link or part"
        )
    types: dict[str, str] = {}
    limits: dict[str, UrdfJointLimit] = {}
    notes = _Notes()
    for joint in joints:
        name, jtype = _name_and_type(joint, types)
        types[name] = jtype
        if jtype in MOVABLE:
            limits[name] = _joint_limit(joint, name, jtype, notes)
    if not limits:
        raise UrdfError(
            f"robot_description <robot name={robot!r}> has no movable joints (revolute, continuous, "
            f"prismatic); its joints are {_typed(types)}: nothing the executor can command"
        )
    return UrdfLimits(robot=robot, limits=limits, joint_types=types, warnings=notes.lines())


@dataclass
class _Notes:
    """What to warn about once per URDF: one line per kind, naming every joint concerned."""

    rejects: list[str] = field(default_factory=list)  # what urdfdom would reject the file for
    degrees: list[str] = field(default_factory=list)  # revolute limits beyond 2π
    millimetres: list[str] = field(default_factory=list)  # prismatic limits beyond PRISMATIC_WARN_M

    def lines(self) -> tuple[str, ...]:
        out = []
        if self.rejects:
            out.append(
                "urdfdom (robot_state_publisher, MoveIt, ros2_control) rejects this URDF: "
                + "; ".join(self.rejects)
            )
        if self.degrees:
            out.append(
                "revolute limits beyond ±2π rad; URDF angles are radians: degrees? " + "; ".join(self.degrees)
            )
        if self.millimetres:
            out.append(
                f"prismatic limits beyond {PRISMATIC_WARN_M:g} m; URDF lengths are metres: millimetres? "
                + "; ".join(self.millimetres)
            )
        return tuple(out)


def _parse_xml(text: str) -> tuple[ET.Element, set[str]]:
    """The root element and the namespace URIs bound to a ``xacro`` prefix (or naming xacro)."""
    parser = ET.XMLPullParser(events=("start-ns", "start"))
    try:
        parser.feed(text)
        parser.close()
    except ET.ParseError as exc:
        if "xacro:" in text or "${" in text or "$(" in text:
            raise UrdfError(f"{XACRO_FIX}; it is not even valid XML as it is ({exc})") from None
        raise UrdfError(
            f"robot_description is not valid XML ({exc}); pass the expanded URDF (run xacro first)"
        ) from None
    root: ET.Element | None = None
    xacro: set[str] = set()
    for event, item in parser.read_events():
        if event == "start-ns":
            prefix, uri = item  # type: ignore[misc]
            if prefix == "xacro" or "xacro" in uri.lower():
                xacro.add(uri)
        elif root is None:
            root = item  # type: ignore[assignment]
    if root is None:
        raise UrdfError("robot_description is empty; pass the expanded URDF")
    return root, xacro


def _reject_xacro(root: ET.Element, xacro_uris: set[str]) -> None:
    """Raise when xacro elements or ``${...}`` / ``$(...)`` substitutions are left in the tree.

    A ``xmlns:xacro`` declaration alone is accepted: it is harmless once everything is expanded.
    """
    found: list[str] = []
    for el in root.iter():
        uri = el.tag[1:].split("}", 1)[0] if el.tag.startswith("{") else None
        if uri in xacro_uris:
            found.append(f"<xacro:{el.tag.split('}', 1)[1]}>")
        for key, value in el.attrib.items():
            if "${" in value or "$(" in value:
                found.append(f'<{el.tag.rsplit("}", 1)[-1]} {key}="{value}">')
        if el.text and ("${" in el.text or "$(" in el.text):
            found.append(f"<{el.tag.rsplit('}', 1)[-1]}>{el.text.strip()}<")
        if len(found) >= 3:
            break
    if found:
        raise UrdfError(f"{XACRO_FIX}; found {', '.join(found[:3])}")


def _name_and_type(joint: ET.Element, seen: Mapping[str, str]) -> tuple[str, str]:
    name = joint.get("name")
    if not name:
        raise UrdfError("robot_description has a <joint> without a name; fix the URDF")
    if name in seen:
        raise UrdfError(f"robot_description has two joints named {name!r}; joint names must be unique")
    jtype = joint.get("type")
    if jtype not in JOINT_TYPES:
        raise UrdfError(
            f"URDF joint {name!r} has type {jtype!r}; a URDF joint is one of {', '.join(JOINT_TYPES)}"
        )
    return name, jtype


def _number(el: ET.Element, key: str, joint: str) -> float | None:
    raw = el.get(key)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UrdfError(
            f"URDF joint {joint!r}: <{el.tag} {key}={raw!r}> is not a number; fix the URDF"
        ) from None
    if math.isnan(value):
        raise UrdfError(f"URDF joint {joint!r}: <{el.tag} {key}> is NaN; fix the URDF")
    return value


def _joint_limit(joint: ET.Element, name: str, jtype: str, notes: _Notes) -> UrdfJointLimit:
    continuous = jtype == "continuous"
    mimic = _mimic(joint, name)
    limit = joint.find("limit")
    if limit is None:
        if continuous:
            return UrdfJointLimit(continuous=True, missing=("no <limit velocity>",), mimic=mimic)
        notes.rejects.append(f"{name!r} ({jtype}) has no <limit>")
        return UrdfJointLimit(missing=("no <limit>",), mimic=mimic)
    missing: list[str] = []
    lower = upper = None
    if not continuous:
        lower, upper = _number(limit, "lower", name), _number(limit, "upper", name)
        for key, value in (("lower", lower), ("upper", upper)):
            if value is None:
                missing.append(f"<limit> has no {key} (urdfdom reads 0)")
        if lower is not None and upper is not None and lower > upper:
            raise UrdfError(f"URDF joint {name!r}: lower {lower} > upper {upper}; fix the URDF")
        _check_units(name, jtype, limit, lower, upper, notes)
    velocity = _number(limit, "velocity", name)
    if velocity is None:
        missing.append("<limit> has no velocity")
        notes.rejects.append(f"{name!r}: <limit> has no velocity")
    elif velocity <= 0:
        missing.append(f'<limit velocity="{limit.get("velocity")}"> (not a velocity limit)')
    if limit.get("effort") is None:
        notes.rejects.append(f"{name!r}: <limit> has no effort")
    lo = -math.inf if lower is None else lower
    hi = math.inf if upper is None else upper
    soft_lo, soft_hi = _soft_limits(joint, name) if not continuous else (None, None)
    soft = (soft_lo is not None and soft_lo > lo) or (soft_hi is not None and soft_hi < hi)
    lo = lo if soft_lo is None else max(lo, soft_lo)
    hi = hi if soft_hi is None else min(hi, soft_hi)
    if lo > hi:
        raise UrdfError(
            f"URDF joint {name!r}: the soft limits [{soft_lo}, {soft_hi}] of <safety_controller> and "
            f"the <limit> [{lower}, {upper}] leave no position; fix the URDF"
        )
    return UrdfJointLimit(
        lower=lo,
        upper=hi,
        velocity=math.inf if velocity is None or velocity <= 0 else velocity,
        continuous=continuous,
        missing=tuple(missing),
        mimic=mimic,
        soft=soft,
    )


def _soft_limits(joint: ET.Element, name: str) -> tuple[float | None, float | None]:
    """``<safety_controller>`` soft position limits; only the attributes present (urdfdom: 0)."""
    sc = joint.find("safety_controller")
    if sc is None:
        return None, None
    lo, hi = _number(sc, "soft_lower_limit", name), _number(sc, "soft_upper_limit", name)
    if lo is not None and hi is not None and lo > hi:
        raise UrdfError(
            f"URDF joint {name!r}: <safety_controller> soft_lower_limit {lo} > soft_upper_limit {hi}; "
            "fix the URDF"
        )
    return lo, hi


def _mimic(joint: ET.Element, name: str) -> Mimic | None:
    el = joint.find("mimic")
    if el is None:
        return None
    leader = el.get("joint")
    if not leader:
        raise UrdfError(f"URDF joint {name!r}: <mimic> has no joint attribute (urdfdom rejects it)")
    multiplier, offset = _number(el, "multiplier", name), _number(el, "offset", name)
    return Mimic(leader, 1.0 if multiplier is None else multiplier, 0.0 if offset is None else offset)


def _check_units(
    name: str, jtype: str, limit: ET.Element, lower: float | None, upper: float | None, notes: _Notes
) -> None:
    """Note the limits of ``name`` that look like degrees (revolute) or millimetres (prismatic)."""
    degrees, millimetres = [], []
    for key, value in (("lower", lower), ("upper", upper)):
        if value is None or not math.isfinite(value):
            continue
        raw = limit.get(key)
        if jtype == "revolute" and abs(value) > 2 * math.pi + TWO_PI_SLACK:
            degrees.append(f"{key}={raw} ({raw}° = {math.radians(value):.4f} rad)")
        elif jtype == "prismatic" and abs(value) > PRISMATIC_WARN_M:
            millimetres.append(f"{key}={raw} ({raw} mm = {value / 1000:g} m)")
    if degrees:
        notes.degrees.append(f"{name!r} {', '.join(degrees)}")
    if millimetres:
        notes.millimetres.append(f"{name!r} {', '.join(millimetres)}")


def _typed(types: Mapping[str, str]) -> str:
    return ", ".join(f"{n} ({t})" for n, t in types.items())


def uncommandable(joint_names: Sequence[str], urdf: Mapping[str, UrdfJointLimit] | None) -> str | None:
    """Why some of ``joint_names`` can never be commanded on this robot, or None.

    A mimic joint follows its leader (its driver or controller moves it); commanding it
    independently fights the leader. A fixed, floating or planar joint is not one commandable
    axis. Both are refused whatever the limits say.
    """
    if not urdf:
        return None
    types = getattr(urdf, "joint_types", {})
    reasons = []
    for name in joint_names:
        jl = urdf.get(name)
        if jl is not None and jl.mimic is not None:
            m = jl.mimic
            leader = m.joint if m.joint in types or m.joint in urdf else f"{m.joint} (absent from the URDF)"
            reasons.append(
                f"{name!r} is a mimic joint: it follows {leader!r} as q = {m.multiplier:g} * "
                f"q_{m.joint} + {m.offset:g}; command the leader and remove {name!r} from joint_names"
            )
        elif jl is None and types.get(name) in ("fixed", "floating", "planar"):
            reasons.append(
                f"{name!r} is a {types[name]} joint in the URDF, not one commandable axis; remove it "
                "from joint_names"
            )
    return "; ".join(reasons) if reasons else None


def limits_hint(joints: Sequence[str], urdf: Mapping[str, UrdfJointLimit] | None) -> str:
    """The end of an arming refusal for ``joints`` lacking limits: what the URDF does not give.

    Without a URDF: suggest one. With one: name the joints it does not have (both lists, with a
    prefix or spelling hint, see :func:`describe_unmatched`) and, per joint it has, what its
    ``<limit>`` lacks. Returns a string starting with ``", or "`` or ``"; "``.
    """
    if not urdf:
        return ", or give robot_description (a URDF whose <limit> tags have lower, upper and velocity)"
    parts = []
    unmatched = describe_unmatched(joints, urdf)
    if unmatched:
        parts.append(unmatched)
    lacking = [f"{j!r}: {', '.join(urdf[j].missing)}" for j in joints if j in urdf and urdf[j].missing]
    if lacking:
        parts.append("the URDF lacks " + "; ".join(lacking) + " (add them to the URDF or set the parameters)")
    return "; " + "; ".join(parts) if parts else ""
