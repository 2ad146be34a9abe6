"""Joint limits from a URDF string (the ``robot_description``), parsed with xml.etree."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass


class UrdfError(ValueError):
    """The robot_description could not be read."""


@dataclass(frozen=True)
class UrdfJointLimit:
    """Limits of one joint from its ``<limit>`` tag; ``inf`` where the URDF gives none.

    ``continuous`` joints have no position limits (``continuous`` is True: unbounded by design,
    not by omission). ``effort`` is ignored.
    """

    lower: float = -math.inf
    upper: float = math.inf
    velocity: float = math.inf
    continuous: bool = False


def _attr(limit: ET.Element, key: str, joint: str) -> float | None:
    raw = limit.get(key)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UrdfError(
            f"URDF joint {joint!r}: <limit {key}={raw!r}> is not a number; fix the URDF"
        ) from None
    if math.isnan(value):
        raise UrdfError(f"URDF joint {joint!r}: <limit {key}> is NaN; fix the URDF")
    return value


def parse_urdf_limits(urdf: str) -> dict[str, UrdfJointLimit]:
    """Return ``{joint name: UrdfJointLimit}`` for the revolute, prismatic and continuous joints.

    Raises :class:`UrdfError` if ``urdf`` is not a ``<robot>`` XML document or a limit is malformed.
    """
    try:
        root = ET.fromstring(urdf)
    except ET.ParseError as exc:
        raise UrdfError(
            f"robot_description is not valid XML ({exc}); pass the expanded URDF (run xacro first)"
        ) from None
    if root.tag != "robot":
        raise UrdfError(f"robot_description root element is <{root.tag}>, expected <robot>")
    out: dict[str, UrdfJointLimit] = {}
    for joint in root.iter("joint"):
        name = joint.get("name")
        jtype = joint.get("type", "")
        if not name or jtype not in ("revolute", "prismatic", "continuous"):
            continue
        limit = joint.find("limit")
        if limit is None:
            out[name] = UrdfJointLimit(continuous=jtype == "continuous")
            continue
        lower = _attr(limit, "lower", name)
        upper = _attr(limit, "upper", name)
        velocity = _attr(limit, "velocity", name)
        if jtype == "continuous":
            lower = upper = None
        lo = -math.inf if lower is None else lower
        hi = math.inf if upper is None else upper
        if lo > hi:
            raise UrdfError(f"URDF joint {name!r}: lower {lo} > upper {hi}; fix the URDF")
        vel = math.inf if velocity is None or velocity <= 0 else velocity
        out[name] = UrdfJointLimit(lower=lo, upper=hi, velocity=vel, continuous=jtype == "continuous")
    return out
