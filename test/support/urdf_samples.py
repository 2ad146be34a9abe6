"""Small URDFs shaped like the ones users hand over (names, types, tags as the real files have them)."""


def joint(name, jtype, parent, child, inner=""):
    return (
        f'<joint name="{name}" type="{jtype}"><origin xyz="0 0 0.1" rpy="0 0 0"/>'
        f'<parent link="{parent}"/><child link="{child}"/><axis xyz="0 0 1"/>{inner}</joint>'
    )


def limit(lower, upper, velocity, effort="10"):
    return f'<limit lower="{lower}" upper="{upper}" velocity="{velocity}" effort="{effort}"/>'


def chain(robot, specs, extra="", attrs=""):
    """A serial chain ``link0 -> link1 -> ...`` of ``(name, type, inner)`` joints."""
    links = "".join(f'<link name="link{i}"/>' for i in range(len(specs) + 1))
    joints = "".join(joint(n, t, f"link{i}", f"link{i + 1}", inner) for i, (n, t, inner) in enumerate(specs))
    return f'<?xml version="1.0"?>\n<robot name="{robot}"{attrs}>{links}{joints}{extra}</robot>'


# SO-101 (TheRobotStudio / LeRobot): six revolute joints, the gripper one of them.
SO101_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
SO101_LIMITS = {
    "shoulder_pan": (-1.91986, 1.91986),
    "shoulder_lift": (-1.74533, 1.74533),
    "elbow_flex": (-1.69, 1.69),
    "wrist_flex": (-1.65806, 1.65806),
    "wrist_roll": (-2.74385, 2.84121),
    "gripper": (-0.174533, 1.74533),
}


def so101(limits=None):
    limits = limits or SO101_LIMITS
    return chain(
        "so101_new_calib",
        [(n, "revolute", limit(*limits[n], velocity="10", effort="10")) for n in SO101_NAMES],
    )


# Franka Panda (franka_description): soft limits in <safety_controller>, a mimic finger,
# fixed joint8 / hand joint, and a <transmission> whose <joint> is no joint of the robot.
PANDA_HARD = [
    (-2.8973, 2.8973),
    (-1.7628, 1.7628),
    (-2.8973, 2.8973),
    (-3.0718, -0.0698),
    (-2.8973, 2.8973),
    (-0.0175, 3.7525),
    (-2.8973, 2.8973),
]
PANDA_SOFT = [
    (-2.8973, 2.8973),
    (-1.7628, 1.7628),
    (-2.8973, 2.8973),
    (-3.0018, -0.1398),  # tighter than the hard limits
    (-2.8973, 2.8973),
    (-0.0175, 3.7525),
    (-2.8973, 2.8973),
]
PANDA_VEL = [2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61]


def panda():
    specs = []
    for i, ((lo, hi), (slo, shi), v) in enumerate(zip(PANDA_HARD, PANDA_SOFT, PANDA_VEL), start=1):
        safety = (
            '<safety_controller k_position="100.0" k_velocity="40.0" '
            f'soft_lower_limit="{slo}" soft_upper_limit="{shi}"/>'
        )
        specs.append((f"panda_joint{i}", "revolute", limit(lo, hi, v, effort="87") + safety))
    specs += [
        ("panda_joint8", "fixed", ""),
        ("panda_hand_joint", "fixed", ""),
        ("panda_finger_joint1", "prismatic", limit(0.0, 0.04, 0.2, effort="20")),
        (
            "panda_finger_joint2",
            "prismatic",
            limit(0.0, 0.04, 0.2, effort="20") + '<mimic joint="panda_finger_joint1"/>',
        ),
    ]
    transmission = (
        '<transmission name="panda_tran1"><type>transmission_interface/SimpleTransmission</type>'
        '<joint name="panda_joint1"><hardwareInterface>hardware_interface/PositionJointInterface'
        "</hardwareInterface></joint></transmission>"
    )
    return chain("panda", specs, extra=transmission)


# UR5e (Universal_Robots_ROS2_Description, expanded): ±2π everywhere but the elbow (±π).
UR_NAMES = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)
TWO_PI = "6.283185307179586"
PI = "3.141592653589793"


def ur5e(two_pi=TWO_PI):
    specs = []
    for n in UR_NAMES:
        bound = PI if n == "elbow_joint" else two_pi
        specs.append((n, "revolute", limit(f"-{bound}", bound, PI, effort="150")))
    specs += [("wrist_3-flange", "fixed", ""), ("flange-tool0", "fixed", "")]
    return chain("ur", specs)


# ViperX-300s (interbotix): gripper wheel continuous, the fingers prismatic, right follows left.
VX_ARM = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")


def vx300s_specs(prefix=""):
    specs = [(f"{prefix}{n}", "revolute", limit(-3.14158, 3.14158, PI, effort="10")) for n in VX_ARM]
    specs += [
        (f"{prefix}gripper", "continuous", '<limit velocity="3.14" effort="1"/>'),
        (f"{prefix}left_finger", "prismatic", limit(0.021, 0.057, 1.0, effort="5")),
        (
            f"{prefix}right_finger",
            "prismatic",
            limit(-0.057, -0.021, 1.0, effort="5")
            + f'<mimic joint="{prefix}left_finger" multiplier="-1" offset="0"/>',
        ),
    ]
    return specs


def vx300s(prefixes=("",)):
    return chain("vx300s", [s for p in prefixes for s in vx300s_specs(p)])


# Robotiq 2F-85 (ros2_robotiq_gripper): one actuated joint, five mimic joints.
ROBOTIQ_MIMICS = {
    "right_outer_knuckle_joint": -1.0,
    "left_inner_knuckle_joint": -1.0,
    "right_inner_knuckle_joint": -1.0,
    "left_inner_finger_joint": 1.0,
    "right_inner_finger_joint": 1.0,
}


def robotiq_2f85():
    specs = [("robotiq_85_left_knuckle_joint", "revolute", limit(0.0, 0.8, 0.5, effort="1000"))]
    for name, mult in ROBOTIQ_MIMICS.items():
        specs.append(
            (
                name,
                "revolute",
                limit(-0.8, 0.8, 0.5, effort="1000")
                + f'<mimic joint="robotiq_85_left_knuckle_joint" multiplier="{mult:g}" offset="0"/>',
            )
        )
    return chain("robotiq_2f_85", specs)


# ur.urdf.xacro as it is in the description package, before xacro ran.
XACRO_NS = ' xmlns:xacro="http://www.ros.org/wiki/xacro"'
UR_XACRO = f"""<?xml version="1.0"?>
<robot{XACRO_NS} name="$(arg name)">
  <xacro:arg name="prefix" default=""/>
  <xacro:include filename="$(find ur_description)/urdf/ur_macro.xacro"/>
  <xacro:macro name="ur_robot" params="prefix">
    <link name="${{prefix}}base_link"/><link name="${{prefix}}shoulder_link"/>
    <joint name="${{prefix}}shoulder_pan_joint" type="revolute">
      <parent link="${{prefix}}base_link"/><child link="${{prefix}}shoulder_link"/>
      <limit lower="${{-2*pi}}" upper="${{2*pi}}" velocity="${{pi}}" effort="150"/>
    </joint>
  </xacro:macro>
  <xacro:ur_robot prefix="$(arg prefix)"/>
</robot>"""
