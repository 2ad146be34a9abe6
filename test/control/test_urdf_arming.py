"""Arming refusals with real-shaped URDFs: both joint lists, the missing attribute, mimic joints."""

from support.urdf_samples import (
    SO101_NAMES,
    UR_NAMES,
    VX_ARM,
    chain,
    limit,
    robotiq_2f85,
    so101,
    ur5e,
    vx300s,
)

from vla_ros.control.safety import JointLimits, arming_refusal
from vla_ros.control.urdf import parse_urdf_limits

ALLOW = "allow_unlimited: true skips this check (simulation/bench only, never on a real robot)"


def test_executor_names_without_the_urdf_prefix_name_both_lists():
    urdf = parse_urdf_limits(vx300s(prefixes=("left_",)))
    msg = arming_refusal(JointLimits.build(VX_ARM, urdf=urdf))
    assert msg == (
        f"refusing to arm: no finite position limits for {list(VX_ARM)} (set position_lower and "
        f"position_upper); no finite velocity limit for {list(VX_ARM)} (set max_velocity); "
        f"joint_names {list(VX_ARM)} are not in the URDF <robot name='vx300s'>, whose movable joints "
        f"are {list(urdf)}; the URDF's names carry the prefix 'left_' (a tf_prefix or xacro prefix "
        f"argument?): set joint_names to {['left_' + n for n in VX_ARM]}; {ALLOW}"
    )
    assert "give robot_description" not in msg  # it was given
    assert arming_refusal(JointLimits.build(["left_" + n for n in VX_ARM[:6]], urdf=urdf)) is None


def test_one_joint_missing_from_the_urdf_is_the_only_one_named():
    urdf = parse_urdf_limits(ur5e())
    names = [*UR_NAMES[:5], "wrist3_joint"]
    msg = arming_refusal(JointLimits.build(names, urdf=urdf))
    assert msg is not None and "no finite position limits for ['wrist3_joint']" in msg
    assert "joint_names ['wrist3_joint'] are not in the URDF <robot name='ur'>" in msg
    assert "did you mean 'wrist3_joint' -> 'wrist_3_joint'?" in msg


def test_refusal_names_the_missing_attribute_of_the_joint():
    text = chain(
        "so101",
        [
            (n, "revolute", limit(-1, 1, 2) if n != "elbow_flex" else '<limit effort="1" velocity="2"/>')
            for n in SO101_NAMES
        ],
    )
    msg = arming_refusal(JointLimits.build(SO101_NAMES, urdf=parse_urdf_limits(text)))
    assert msg == (
        "refusing to arm: no finite position limits for ['elbow_flex'] (set position_lower and "
        "position_upper); the URDF lacks 'elbow_flex': <limit> has no lower (urdfdom reads 0), "
        "<limit> has no upper (urdfdom reads 0) (add them to the URDF or set the parameters); " + ALLOW
    )
    # the parameters may give what the URDF lacks
    given = JointLimits.build(SO101_NAMES, urdf=parse_urdf_limits(text), lower=[-1.0], upper=[1.0])
    assert arming_refusal(given) is None


def test_revolute_without_limit_and_continuous_without_velocity():
    text = chain("r", [("j1", "revolute", ""), ("j2", "continuous", ""), ("j3", "revolute", limit(-1, 1, 1))])
    msg = arming_refusal(JointLimits.build(["j1", "j2", "j3"], urdf=parse_urdf_limits(text)))
    assert msg is not None
    assert (
        "no finite position limits for ['j1']" in msg and "no finite velocity limit for ['j1', 'j2']" in msg
    )
    assert "the URDF lacks 'j1': no <limit>; 'j2': no <limit velocity>" in msg


def test_mimic_joint_in_joint_names_is_refused_even_with_limits_and_allow_unlimited():
    urdf = parse_urdf_limits(vx300s())
    names = [*VX_ARM, "left_finger", "right_finger"]
    limits = JointLimits.build(names, urdf=urdf)
    assert limits.missing() == ([], [])  # every limit is there
    for allow in (False, True):
        msg = arming_refusal(limits, allow_unlimited=allow)
        assert msg == (
            "refusing to arm: 'right_finger' is a mimic joint: it follows 'left_finger' as q = -1 * "
            "q_left_finger + 0; command the leader and remove 'right_finger' from joint_names"
        )
    assert arming_refusal(JointLimits.build([*VX_ARM, "left_finger"], urdf=urdf)) is None
    gripper = parse_urdf_limits(robotiq_2f85())
    assert arming_refusal(JointLimits.build(["robotiq_85_left_knuckle_joint"], urdf=gripper)) is None


def test_fixed_joint_in_joint_names_is_refused():
    msg = arming_refusal(JointLimits.build([*UR_NAMES, "flange-tool0"], urdf=parse_urdf_limits(ur5e())))
    assert msg == (
        "refusing to arm: 'flange-tool0' is a fixed joint in the URDF, not one commandable axis; "
        "remove it from joint_names"
    )


def test_without_a_urdf_the_refusal_still_suggests_one():
    msg = arming_refusal(JointLimits.build(["a"]))
    assert msg is not None and ", or give robot_description (a URDF whose <limit> tags" in msg
    assert JointLimits.build(["a"]).urdf is None
    assert JointLimits.build(SO101_NAMES, urdf=parse_urdf_limits(so101())).urdf is not None
