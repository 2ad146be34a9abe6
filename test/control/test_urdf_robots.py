"""URDFs as users hand them over: real robots' shapes, read as urdfdom reads them."""

import math

import pytest
from support.urdf_samples import (
    PANDA_HARD,
    PANDA_SOFT,
    PANDA_VEL,
    ROBOTIQ_MIMICS,
    SO101_LIMITS,
    SO101_NAMES,
    UR_NAMES,
    UR_XACRO,
    VX_ARM,
    XACRO_NS,
    chain,
    limit,
    panda,
    robotiq_2f85,
    so101,
    ur5e,
    vx300s,
)

from vla_ros.control.urdf import (
    Mimic,
    UrdfError,
    describe_unmatched,
    limits_hint,
    parse_urdf_limits,
    uncommandable,
)


def test_so101_limits_and_no_warnings():
    urdf = parse_urdf_limits(so101())
    assert urdf.robot == "so101_new_calib" and tuple(urdf) == SO101_NAMES
    for name, (lo, hi) in SO101_LIMITS.items():
        assert (urdf[name].lower, urdf[name].upper, urdf[name].velocity) == (lo, hi, 10.0)
        assert urdf[name].missing == () and urdf[name].mimic is None and not urdf[name].soft
    assert urdf.warnings == ()


def test_so101_in_degrees_is_one_warning_naming_each_joint():
    degrees = {n: (round(math.degrees(lo)), round(math.degrees(hi))) for n, (lo, hi) in SO101_LIMITS.items()}
    urdf = parse_urdf_limits(so101(degrees))
    assert urdf["shoulder_pan"].upper == 110.0  # read as written, but said once
    assert len(urdf.warnings) == 1
    line = urdf.warnings[0]
    assert line.startswith("revolute limits beyond ±2π rad; URDF angles are radians: degrees? ")
    assert "'shoulder_pan' lower=-110 (-110° = -1.9199 rad), upper=110 (110° = 1.9199 rad)" in line
    assert "'gripper' lower=-10 (-10° = -0.1745 rad), upper=100 (100° = 1.7453 rad)" in line
    assert all(f"'{n}'" in line for n in SO101_NAMES)


def test_prismatic_limits_in_millimetres_are_warned_about():
    urdf = parse_urdf_limits(chain("gripper", [("finger", "prismatic", limit(0, 40, 0.1))]))
    assert urdf.warnings == (
        "prismatic limits beyond 10 m; URDF lengths are metres: millimetres? "
        "'finger' upper=40 (40 mm = 0.04 m)",
    )


@pytest.mark.parametrize("two_pi", ["6.283185307179586", "6.28318530718", "6.2832"])
def test_ur5e_two_pi_limits_are_not_degrees(two_pi):
    urdf = parse_urdf_limits(ur5e(two_pi))
    assert tuple(urdf) == UR_NAMES and urdf.warnings == ()
    assert urdf["shoulder_pan_joint"].upper == float(two_pi)
    assert urdf["elbow_joint"].lower == -math.pi and urdf["wrist_3_joint"].velocity == math.pi
    assert urdf.joint_types["flange-tool0"] == "fixed" and "flange-tool0" not in urdf


def test_panda_soft_limits_are_the_tighter_ones():
    urdf = parse_urdf_limits(panda())
    for i, ((lo, hi), (slo, shi), v) in enumerate(zip(PANDA_HARD, PANDA_SOFT, PANDA_VEL), start=1):
        jl = urdf[f"panda_joint{i}"]
        assert (jl.lower, jl.upper, jl.velocity) == (max(lo, slo), min(hi, shi), v)
        assert jl.soft is (slo > lo or shi < hi)
    assert urdf["panda_joint4"].soft and (urdf["panda_joint4"].lower, urdf["panda_joint4"].upper) == (
        -3.0018,
        -0.1398,
    )
    assert urdf["panda_finger_joint2"].mimic == Mimic("panda_finger_joint1", 1.0, 0.0)
    # the <transmission>'s <joint> is not a second panda_joint1, and fixed joints are typed
    assert list(urdf.joint_types).count("panda_joint1") == 1
    assert urdf.joint_types["panda_hand_joint"] == "fixed" and len(urdf) == 9


def test_soft_limits_outside_the_hard_ones_do_not_widen_them():
    safety = '<safety_controller k_velocity="1" soft_lower_limit="-5" soft_upper_limit="0.5"/>'
    urdf = parse_urdf_limits(chain("r", [("j", "revolute", limit(-1, 1, 1) + safety)]))
    assert (urdf["j"].lower, urdf["j"].upper, urdf["j"].soft) == (-1.0, 0.5, True)
    # only k_velocity (urdfdom would read the soft limits as 0): the hard limits stay
    only_k = '<safety_controller k_velocity="1"/>'
    urdf = parse_urdf_limits(chain("r", [("j", "revolute", limit(-1, 1, 1) + only_k)]))
    assert (urdf["j"].lower, urdf["j"].upper, urdf["j"].soft) == (-1.0, 1.0, False)


def test_mimic_joints_are_never_commanded_independently():
    urdf = parse_urdf_limits(robotiq_2f85())
    for name, mult in ROBOTIQ_MIMICS.items():
        assert urdf[name].mimic == Mimic("robotiq_85_left_knuckle_joint", mult, 0.0)
    assert uncommandable(["robotiq_85_left_knuckle_joint"], urdf) is None
    why = uncommandable(["robotiq_85_left_knuckle_joint", "right_outer_knuckle_joint"], urdf)
    assert why == (
        "'right_outer_knuckle_joint' is a mimic joint: it follows 'robotiq_85_left_knuckle_joint' as "
        "q = -1 * q_robotiq_85_left_knuckle_joint + 0; command the leader and remove "
        "'right_outer_knuckle_joint' from joint_names"
    )


def test_vx300s_fingers_gripper_and_fixed_joints():
    urdf = parse_urdf_limits(vx300s())
    assert urdf["gripper"].continuous and urdf["gripper"].velocity == 3.14
    assert (urdf["gripper"].lower, urdf["gripper"].upper) == (-math.inf, math.inf)
    assert urdf["right_finger"].mimic == Mimic("left_finger", -1.0, 0.0)
    assert (urdf["left_finger"].lower, urdf["left_finger"].upper) == (0.021, 0.057)
    why = uncommandable([*VX_ARM, "left_finger", "right_finger"], urdf)
    assert why is not None and why.startswith("'right_finger' is a mimic joint: it follows 'left_finger'")
    ur = parse_urdf_limits(ur5e())
    why = uncommandable([*UR_NAMES, "flange-tool0"], ur)
    assert (
        why
        == "'flange-tool0' is a fixed joint in the URDF, not one commandable axis; remove it from joint_names"
    )


def test_unmatched_names_get_both_lists_and_the_prefix():
    urdf = parse_urdf_limits(vx300s(prefixes=("left_",)))
    msg = describe_unmatched(list(VX_ARM), urdf)
    assert msg is not None
    assert msg.startswith(f"joint_names {list(VX_ARM)} are not in the URDF <robot name='vx300s'>")
    assert f"whose movable joints are {list(urdf)}" in msg
    assert "the URDF's names carry the prefix 'left_'" in msg
    assert f"set joint_names to {['left_' + n for n in VX_ARM]}" in msg
    assert describe_unmatched(["left_" + n for n in VX_ARM], urdf) is None


def test_unmatched_bimanual_names_the_two_prefixes():
    urdf = parse_urdf_limits(vx300s(prefixes=("left_", "right_")))
    msg = describe_unmatched(["waist", "shoulder"], urdf)
    assert msg is not None and "under the prefixes ['left_', 'right_'] (one executor per arm?)" in msg


def test_unmatched_executor_prefix_and_spelling():
    ur = parse_urdf_limits(ur5e())
    msg = describe_unmatched(["ur_" + n for n in UR_NAMES], ur)
    assert msg is not None and "joint_names carry the prefix 'ur_' that the URDF's names lack" in msg
    msg = describe_unmatched(["shoulder_pan", "Elbow_Flex", *SO101_NAMES[2:]], parse_urdf_limits(so101()))
    assert msg is not None and msg.startswith("joint_names ['Elbow_Flex'] are not in the URDF")
    assert "did you mean 'Elbow_Flex' -> 'elbow_flex'?" in msg
    msg = describe_unmatched(["a1", "a2"], ur)
    assert msg is not None and msg.endswith(
        "check joint_names against the URDF (a tf_prefix?), or give the limits as parameters"
    )


def test_limits_hint_names_the_missing_attribute_per_joint():
    text = chain(
        "arm",
        [
            ("no_limit", "revolute", ""),
            ("no_lower", "prismatic", '<limit upper="0.2" velocity="0.1" effort="5"/>'),
            ("no_velocity", "revolute", '<limit lower="-1" upper="1" effort="5"/>'),
            ("zero_velocity", "revolute", limit(-1, 1, 0)),
            ("spin", "continuous", ""),
            ("ok", "revolute", limit(-1, 1, 1)),
        ],
    )
    urdf = parse_urdf_limits(text)
    assert urdf["no_limit"].missing == ("no <limit>",)
    assert (urdf["no_limit"].lower, urdf["no_limit"].upper, urdf["no_limit"].velocity) == (
        -math.inf,
        math.inf,
        math.inf,
    )
    assert urdf["no_lower"].missing == ("<limit> has no lower (urdfdom reads 0)",)
    assert (urdf["no_lower"].lower, urdf["no_lower"].upper) == (-math.inf, 0.2)
    assert urdf["no_velocity"].missing == ("<limit> has no velocity",)
    assert urdf["zero_velocity"].missing == ('<limit velocity="0"> (not a velocity limit)',)
    assert urdf["spin"].missing == ("no <limit velocity>",) and urdf["spin"].continuous
    assert urdf["ok"].missing == ()
    assert urdf.warnings == (
        "urdfdom (robot_state_publisher, MoveIt, ros2_control) rejects this URDF: 'no_limit' (revolute) "
        "has no <limit>; 'no_velocity': <limit> has no velocity",
    )
    hint = limits_hint(["no_limit", "no_lower", "ok", "ghost"], urdf)
    assert hint.startswith("; joint_names ['ghost'] are not in the URDF <robot name='arm'>")
    assert (
        "the URDF lacks 'no_limit': no <limit>; 'no_lower': <limit> has no lower (urdfdom reads 0) "
        "(add them to the URDF or set the parameters)"
    ) in hint
    assert limits_hint(["a"], {}).startswith(", or give robot_description")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (UR_XACRO, '<robot name="$(arg name)">'),
        (chain("r", [("${prefix}joint1", "revolute", limit(-1, 1, 1))]), 'name="${prefix}joint1"'),
        (chain("r", [("j", "revolute", limit("${-pi}", "${pi}", 1))]), 'lower="${-pi}"'),
        (
            chain(
                "r",
                [("j", "revolute", limit(-1, 1, 1))],
                extra='<xacro:include filename="arm.xacro"/>',
                attrs=XACRO_NS,
            ),
            "<xacro:include>",
        ),
        # the same without the namespace declaration is not XML at all (unbound prefix)
        (
            chain("r", [("j", "revolute", limit(-1, 1, 1))], extra='<xacro:include filename="arm.xacro"/>'),
            "not even valid XML",
        ),
        (
            chain(
                "r",
                [("j", "revolute", limit(-1, 1, 1))],
                extra='<mesh filename="$(find ur_description)/m.dae"/>',
            ),
            'filename="$(find ur_description)/m.dae"',
        ),
    ],
)
def test_unexpanded_xacro_is_one_clear_error(text, found):
    with pytest.raises(UrdfError) as err:
        parse_urdf_limits(text)
    assert str(err.value).startswith("robot_description is unexpanded xacro: run xacro first")
    assert found in str(err.value)


def test_expanded_urdf_keeping_the_xacro_namespace_is_accepted():
    urdf = parse_urdf_limits(chain("r", [("j", "revolute", limit(-1, 1, 1))], attrs=XACRO_NS))
    assert urdf["j"].upper == 1.0


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ('<robot name="so101"><link name="base"/></robot>', "<robot name='so101'> has no joints"),
        (chain("cam", [("mount", "fixed", ""), ("optical", "fixed", "")]), "has no movable joints"),
        (chain("r", [("j", "rotational", "")]), "URDF joint 'j' has type 'rotational'"),
        (
            chain("r", [("j", "revolute", limit(-1, 1, 1)), ("j", "revolute", limit(-1, 1, 1))]),
            "two joints named 'j'",
        ),
        (
            chain("r", [("j", "prismatic", limit(0, 1, 1) + '<mimic multiplier="2"/>')]),
            "<mimic> has no joint",
        ),
        (
            chain("r", [("j", "revolute", limit(-1, 1, 1) + '<mimic joint="k" offset="x"/>')]),
            "<mimic offset='x'> is not a number",
        ),
        (
            chain(
                "r",
                [
                    (
                        "j",
                        "revolute",
                        limit(-1, 1, 1) + '<safety_controller soft_lower_limit="1" soft_upper_limit="0"/>',
                    )
                ],
            ),
            "soft_lower_limit 1.0 > soft_upper_limit 0.0",
        ),
    ],
)
def test_malformed_urdf(text, msg):
    with pytest.raises(UrdfError, match=None) as err:
        parse_urdf_limits(text)
    assert msg in str(err.value)


def test_floating_and_planar_joints_are_typed_not_limited():
    urdf = parse_urdf_limits(
        chain(
            "mobile",
            [("base", "planar", ""), ("world", "floating", ""), ("arm", "revolute", limit(-1, 1, 1))],
        )
    )
    assert list(urdf) == ["arm"] and urdf.joint_types == {
        "base": "planar",
        "world": "floating",
        "arm": "revolute",
    }
    assert uncommandable(["arm", "base"], urdf) == (
        "'base' is a planar joint in the URDF, not one commandable axis; remove it from joint_names"
    )
