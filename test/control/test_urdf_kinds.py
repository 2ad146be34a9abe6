"""The kinds, not the examples: any prefix, any xacro substitution anywhere, any missing attribute."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.urdf_samples import chain, limit

from vla_ros.control.urdf import UrdfError, describe_unmatched, parse_urdf_limits

NAME = st.from_regex(r"[a-z][a-z0-9]{2,8}_joint", fullmatch=True)
PREFIX = st.from_regex(r"[a-z]{1,6}(_|/)", fullmatch=True)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(names=st.lists(NAME, min_size=1, max_size=6, unique=True), prefix=PREFIX, ours=st.booleans())
def test_any_prefix_on_either_side_is_named(names, prefix, ours):
    urdf_names = names if ours else [prefix + n for n in names]
    urdf = parse_urdf_limits(chain("r", [(n, "revolute", limit(-1, 1, 1)) for n in urdf_names]))
    executor = [prefix + n for n in names] if ours else names
    msg = describe_unmatched(executor, urdf)
    assert msg is not None
    assert f"joint_names {executor} are not in the URDF" in msg and f"movable joints are {urdf_names}" in msg
    if ours:
        assert f"joint_names carry the prefix {prefix!r}" in msg and f"set joint_names to {names}" in msg
    else:
        assert f"the URDF's names carry the prefix {prefix!r}" in msg
        assert f"set joint_names to {urdf_names}" in msg


SUBST = st.sampled_from(["${prefix}", "${pi/2}", "$(arg name)", "$(find pkg)/x", "${radians(90)}"])
WHERE = st.sampled_from(["joint", "lower", "upper", "velocity", "link", "robot", "text"])


@settings(max_examples=40, deadline=None, derandomize=True)
@given(subst=SUBST, where=WHERE)
def test_any_xacro_substitution_anywhere_is_the_xacro_error(subst, where):
    lim = {"lower": -1, "upper": 1, "velocity": 1}
    if where in lim:
        lim[where] = subst
    name = subst + "j" if where == "joint" else "j"
    extra = f'<link name="{subst}tool"/>' if where == "link" else ""
    extra += f'<gazebo><plugin name="p">{subst}</plugin></gazebo>' if where == "text" else ""
    text = chain("r", [(name, "revolute", limit(lim["lower"], lim["upper"], lim["velocity"]))], extra=extra)
    if where == "robot":
        text = text.replace('<robot name="r"', f'<robot name="{subst}"')
    with pytest.raises(UrdfError, match=r"^robot_description is unexpanded xacro: run xacro first") as err:
        parse_urdf_limits(text)
    assert subst in str(err.value)


@pytest.mark.parametrize("jtype", ["revolute", "prismatic"])
@pytest.mark.parametrize("drop", ["lower", "upper", "velocity"])
def test_any_missing_limit_attribute_is_named_and_left_unlimited(jtype, drop):
    attrs = {"lower": "-0.5", "upper": "0.5", "velocity": "2", "effort": "3"}
    del attrs[drop]
    tag = "<limit " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "/>"
    jl = parse_urdf_limits(chain("r", [("j", jtype, tag)]))["j"]
    want = "<limit> has no velocity" if drop == "velocity" else f"<limit> has no {drop} (urdfdom reads 0)"
    assert jl.missing == (want,)
    got = {"lower": jl.lower, "upper": jl.upper, "velocity": jl.velocity}
    assert got == {
        k: (float(attrs[k]) if k in attrs else (-1 if k == "lower" else 1) * float("inf")) for k in got
    }
