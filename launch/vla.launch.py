"""vla_ros: policy_node + executor_node (+ doctor_node, + sim_node), one process each.

    ros2 launch vla_ros vla.launch.py params_file:=/path/to/robot.yaml namespace:=robot1
    ros2 launch vla_ros vla.launch.py robot:=so101 card:=/path/to/card

The same parameter YAML drives ``vla-ros bringup PARAMS.yaml`` (all nodes in one process).
Its sections are keyed ``/**/<node_name>`` so they apply under any ``namespace``.
``robot:=NAME`` uses config/robots/NAME.yaml instead of params_file and remaps the executor's
command output to that robot's controller topic (docs/robots.md).
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

#: robot:=NAME -> the command topic of the controller config/robots/NAME.yaml drives (its
#: output_type: Float64MultiArray for a forward position controller, JointTrajectory for
#: joint_trajectory_controller); test/nodes/test_launch_static.py checks they agree
ROBOT_COMMAND_TOPICS = {
    "so101": "/forward_position_controller/commands",
    "aloha": "/forward_position_controller/commands",
    "fr3": "/joint_trajectory_controller/joint_trajectory",
    "ur5e": "/forward_position_controller/commands",
}
BOOL = ["true", "false"]
#: the arguments with literal defaults: name -> (default, choices or None, description)
ARGUMENTS = {
    "card": (
        "",
        None,
        "Policy card folder (vla-ros export) for policy_node and doctor_node; "
        "empty = the parameter file's card",
    ),
    "namespace": ("", None, "Namespace for every node and its relative topics (empty = global)"),
    "use_sim_time": ("false", BOOL, "Use /clock instead of the system clock (bag replay, simulation)"),
    "log_level": ("info", ["debug", "info", "warn", "error", "fatal"], "Log level of every node"),
    "doctor": ("true", BOOL, "Also run doctor_node (environment and topic checks on /diagnostics)"),
    "sim": ("false", BOOL, "Also run sim_node (the simulated arm, config/sim.yaml) as the robot"),
}


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the nodes."""
    robot = LaunchConfiguration("robot")
    card = LaunchConfiguration("card")
    command_topic = LaunchConfiguration("command_topic")
    robots_dir = PathJoinSubstitution([FindPackageShare("vla_ros"), "config", "robots"])
    params_file = LaunchConfiguration("params_file")
    # robot:=NAME -> config/robots/NAME.yaml, else params_file
    params = PythonExpression(
        ["'", robots_dir, "/", robot, ".yaml' if '", robot, "' else '", params_file, "'"]
    )
    has_card = PythonExpression(["'", card, "' != ''"])
    namespace = LaunchConfiguration("namespace")
    use_sim_time = LaunchConfiguration("use_sim_time")
    log_level = LaunchConfiguration("log_level")
    doctor = LaunchConfiguration("doctor")
    sim_params = PathJoinSubstitution([FindPackageShare("vla_ros"), "config", "sim.yaml"])

    arguments = [
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("vla_ros"), "config", "vla.yaml"]),
            description="ROS 2 parameter YAML for policy_node, executor_node and doctor_node "
            "(the same file `vla-ros bringup` takes); set policy_node.card in it",
        ),
        DeclareLaunchArgument(
            "robot",
            default_value="",
            choices=["", *ROBOT_COMMAND_TOPICS],
            description="A ready-made robot configuration: config/robots/<robot>.yaml replaces "
            "params_file and the executor's output goes to the robot's controller topic",
        ),
        DeclareLaunchArgument(
            "command_topic",
            default_value=PythonExpression([repr(ROBOT_COMMAND_TOPICS), ".get('", robot, "', '')"]),
            description="Topic the executor's commands/joint_trajectory output is remapped to "
            "(default: the robot's controller topic; empty = no remapping)",
        ),
    ]
    arguments += [
        DeclareLaunchArgument(name, default_value=default, choices=choices, description=description)
        for name, (default, choices, description) in ARGUMENTS.items()
    ]
    sim_time = {"use_sim_time": ParameterValue(use_sim_time, value_type=bool)}
    # every node: this package, the namespace, the log level, its log on the console
    common = {
        "package": "vla_ros",
        "namespace": namespace,
        "arguments": ["--ros-args", "--log-level", log_level],
        "output": "screen",
        "emulate_tty": True,
    }

    nodes = [
        Node(
            **common,
            executable="policy_node",
            name="policy_node",
            parameters=[params, sim_time],
            condition=UnlessCondition(has_card),
        ),
        Node(  # card:= given: it overrides the file's card
            **common,
            executable="policy_node",
            name="policy_node",
            parameters=[params, {"card": card}, sim_time],
            condition=IfCondition(has_card),
        ),
        Node(
            **common,
            executable="executor_node",
            name="executor_node",
            parameters=[params, sim_time],
            remappings=[
                ("commands", PythonExpression(["'", command_topic, "' or 'commands'"])),
                ("joint_trajectory", PythonExpression(["'", command_topic, "' or 'joint_trajectory'"])),
            ],
        ),
        Node(
            **common,
            executable="doctor_node",
            name="doctor_node",
            parameters=[params, sim_time],
            condition=IfCondition(PythonExpression(["'", doctor, "' == 'true' and '", card, "' == ''"])),
        ),
        Node(  # card:= given: it overrides the file's card
            **common,
            executable="doctor_node",
            name="doctor_node",
            parameters=[params, {"card": card}, sim_time],
            condition=IfCondition(PythonExpression(["'", doctor, "' == 'true' and '", card, "' != ''"])),
        ),
        Node(
            **common,
            executable="sim_node",
            name="sim_node",
            parameters=[sim_params, sim_time],
            condition=IfCondition(LaunchConfiguration("sim")),
        ),
    ]
    return LaunchDescription(arguments + nodes)
