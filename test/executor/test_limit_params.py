"""Per-joint limits as a map (``limits.<joint>.{lower, upper, velocity, acceleration}``) and the
deprecated arrays: the same limits from either form, both forms refused, bad entries named."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vla_ros.control.safety import LimitsError
from vla_ros.control.urdf import parse_urdf_limits
from vla_ros.executor import params as ep
from vla_ros.executor.core import ExecutorCore
from vla_ros.util.params import deprecation_warning, resolve

MS = 1_000_000
NAMES = ("a", "b", "c")
# c is a continuous joint: no position limits by design, velocity 4.0 from the URDF
URDF = parse_urdf_limits(
    """<robot name="r"><link name="l0"/><link name="l1"/><link name="l2"/><link name="l3"/>
  <joint name="a" type="revolute"><parent link="l0"/><child link="l1"/>
    <limit lower="-9" upper="9" velocity="9" effort="1"/></joint>
  <joint name="b" type="revolute"><parent link="l1"/><child link="l2"/>
    <limit lower="-9" upper="9" velocity="9" effort="1"/></joint>
  <joint name="c" type="continuous"><parent link="l2"/><child link="l3"/>
    <limit velocity="4.0" effort="1"/></joint>
</robot>"""
)
ARRAYS = {
    "position_lower": [-1.0, -2.0, -math.inf],
    "position_upper": [1.0, 2.0, math.inf],
    "max_velocity": [0.5, 0.75, 4.0],
    "max_acceleration": [3.0, math.inf, math.inf],
}
MAP = {
    "limits.a.lower": -1.0,
    "limits.a.upper": 1.0,
    "limits.a.velocity": 0.5,
    "limits.a.acceleration": 3.0,
    "limits.b.lower": -2.0,
    "limits.b.upper": 2.0,
    "limits.b.velocity": 0.75,
}


def _values(**given: object) -> dict[str, object]:
    return resolve(ep.SPECS, {"joint_names": list(NAMES), **given}, source="test.yaml")


def _as_tuple(limits) -> tuple:
    return (
        limits.lower.tolist(),
        limits.upper.tolist(),
        limits.max_velocity.tolist(),
        limits.max_acceleration.tolist(),
        limits.continuous,
    )


def test_the_map_and_the_deprecated_arrays_give_identical_limits() -> None:
    old = ep.joint_limits(_values(**ARRAYS), NAMES, URDF)
    new = ep.joint_limits(_values(**MAP), NAMES, URDF)
    assert _as_tuple(old) == _as_tuple(new)
    assert _as_tuple(new) == (
        [-1.0, -2.0, -math.inf],
        [1.0, 2.0, math.inf],
        [0.5, 0.75, 4.0],  # c's velocity from the URDF
        [3.0, math.inf, math.inf],
        ("c",),
    )


def test_a_field_the_map_leaves_unset_comes_from_the_urdf_joint_by_joint() -> None:
    limits = ep.joint_limits(_values(**{"limits.a.upper": 0.5, "limits.b.velocity": 2.0}), NAMES, URDF)
    assert limits.lower.tolist() == [-9.0, -9.0, -math.inf]
    assert limits.upper.tolist() == [0.5, 9.0, math.inf]
    assert limits.max_velocity.tolist() == [9.0, 2.0, 4.0]
    without_urdf = ep.joint_limits(_values(**{"limits.a.upper": 0.5}), NAMES, {})
    assert without_urdf.upper.tolist() == [0.5, math.inf, math.inf]
    assert without_urdf.lower.tolist() == [-math.inf] * 3


def test_a_file_with_both_forms_is_refused_naming_both() -> None:
    given = {"joint_names": list(NAMES), "max_velocity": [1.0], "limits.a.lower": -1.0}
    with pytest.raises(ValueError, match=r"test.yaml: parameters \['max_velocity'\] \(deprecated\) and "):
        resolve(ep.SPECS, given, source="test.yaml")
    values = {**_values(), "max_velocity": [1.0], "limits.a.lower": -1.0}
    with pytest.raises(LimitsError) as err:
        ep.joint_limits(values, NAMES, URDF)
    assert "['max_velocity']" in str(err.value) and "['limits.a.lower']" in str(err.value)
    assert "keep only the limits.<joint>.velocity form" in str(err.value)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"limits.d.lower": -1.0}, r"limits\.d\.\* \(limits\.d\) name no commanded joint; the commanded "),
        ({"limits.a.lower": 2.0, "limits.a.upper": 1.0}, r"limits\.a\.lower 2 > limits\.a\.upper 1"),
        ({"limits.b.velocity": 0.0}, r"limits\.b\.velocity must be > 0, got 0"),
        ({"limits.a.lower": math.nan}, r"limits\.a\.lower is NaN"),
    ],
)
def test_bad_map_entries_are_named(given: dict, message: str) -> None:
    with pytest.raises(LimitsError, match=message):
        ep.joint_limits({**_values(), **given}, NAMES, URDF)


def test_map_values_are_type_and_range_checked_offline() -> None:
    with pytest.raises(ValueError, match=r"limits.a.velocity=-1.0 must be in \[0, inf\]"):
        _values(**{"limits.a.velocity": -1})
    with pytest.raises(ValueError, match=r"limits.a.lower='x' is a str; it must be a double"):
        _values(**{"limits.a.lower": "x"})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'limits.a.lowr'"):
        _values(**{"limits.a.lowr": 1.0})
    assert _values(**{"limits.a.lower": -1})["limits.a.lower"] == -1.0  # YAML int for a double


def test_spec_lookup_finds_the_per_joint_instance() -> None:
    spec = ep.SPEC_BY_NAME["limits.shoulder_pan.velocity"]
    assert spec.name == "limits.shoulder_pan.velocity" and spec.unit == "rad or m/s"
    assert spec.range == (0.0, math.inf) and spec.dynamic and spec.default is None
    assert "limits.a.nope" not in ep.SPEC_BY_NAME and "limits.a.b.lower" not in ep.SPEC_BY_NAME
    assert ep.is_limit_param("limits.a.lower") and ep.is_limit_param("max_jump")
    assert not ep.is_limit_param("speed_scale")


def test_the_deprecation_warning_names_the_new_form() -> None:
    line = deprecation_warning(ep.SPECS, _values(position_lower=[-1.0], max_velocity=[1.0]))
    assert line == (
        "deprecated parameters (still applied; they will be removed): position_lower -> "
        "limits.<joint>.lower, max_velocity -> limits.<joint>.velocity; see docs/parameters.md"
    )
    assert deprecation_warning(ep.SPECS, _values(**MAP)) is None


def test_a_live_map_change_goes_through_the_core_like_the_arrays() -> None:
    values = _values(**{"limits.a.lower": -1.0, "limits.a.upper": 1.0, "limits.a.velocity": 1.0})
    values.update({"joint_names": ["a", "b"], "allow_unlimited": True})
    core = ExecutorCore(values)
    core.adopt(("a", "b"))
    q = [0.9, 0.0]
    core.update_state(0, ["a", "b"], q)
    core.add_chunk(stamp_ns=0, dt_ns=100 * MS, joint_names=["a", "b"], actions=np.tile(q, (20, 1)))
    assert core.arm(0)[0]
    assert np.allclose(core.tick(0).command.positions, q)
    res = core.apply_params({"limits.a.upper": 0.5})
    assert not res.accepted and "current command of joint 'a' at 0.9 outside [-1, 0.5]" in res.reason
    assert core.controller.limits.upper.tolist() == [1.0, math.inf]
    assert core.apply_params({"limits.a.velocity": 0.25, "limits.b.velocity": 2.0}).accepted
    assert core.controller.limits.max_velocity.tolist() == [0.25, 2.0]
    res = core.apply_params({"max_velocity": [1.0]})  # the deprecated form on top of the map
    assert not res.accepted and "['max_velocity'] (deprecated) and" in res.reason
