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
            "card",
            default_value="",
            description="Policy card folder (vla-ros export) for policy_node and doctor_node; "
            "empty = the parameter file's card",
        ),
        DeclareLaunchArgument(
            "command_topic",
            default_value=PythonExpression([repr(ROBOT_COMMAND_TOPICS), ".get('", robot, "', '')"]),
            description="Topic the executor's commands/joint_trajectory output is remapped to "
            "(default: the robot's controller topic; empty = no remapping)",
        ),
        DeclareLaunchArgument(
            "namespace",
            default_value="",
            description="Namespace for every node and its relative topics (empty = global)",
        ),
        DeclareLaunchArgument(
            "use_sim_time",
            default_value="false",
            choices=["true", "false"],
            description="Use /clock instead of the system clock (bag replay, simulation)",
        ),
        DeclareLaunchArgument(
            "log_level",
            default_value="info",
            choices=["debug", "info", "warn", "error", "fatal"],
            description="Log level of every node",
        ),
        DeclareLaunchArgument(
            "doctor",
            default_value="true",
            choices=["true", "false"],
            description="Also run doctor_node (environment and topic checks on /diagnostics)",
        ),
        DeclareLaunchArgument(
            "sim",
            default_value="false",
            choices=["true", "false"],
            description="Also run sim_node (the simulated arm, config/sim.yaml) as the robot",
        ),
    ]
    sim_time = {"use_sim_time": ParameterValue(use_sim_time, value_type=bool)}
    ros_args = ["--ros-args", "--log-level", log_level]

    nodes = [
        Node(
            package="vla_ros",
            executable="policy_node",
            name="policy_node",
            namespace=namespace,
            parameters=[params, sim_time],
            arguments=ros_args,
            output="screen",
            emulate_tty=True,
            condition=UnlessCondition(has_card),
        ),
        Node(  # card:= given: it overrides the file's card
            package="vla_ros",
            executable="policy_node",
            name="policy_node",
            namespace=namespace,
            parameters=[params, {"card": card}, sim_time],
            arguments=ros_args,
            output="screen",
            emulate_tty=True,
            condition=IfCondition(has_card),
        ),
        Node(
            package="vla_ros",
            executable="executor_node",
            name="executor_node",
            namespace=namespace,
            parameters=[params, sim_time],
            remappings=[
                ("commands", PythonExpression(["'", command_topic, "' or 'commands'"])),
                ("joint_trajectory", PythonExpression(["'", command_topic, "' or 'joint_trajectory'"])),
            ],
            arguments=ros_args,
            output="screen",
            emulate_tty=True,
        ),
        Node(
            package="vla_ros",
            executable="doctor_node",
            name="doctor_node",
            namespace=namespace,
            parameters=[params, sim_time],
            arguments=ros_args,
            output="screen",
            emulate_tty=True,
            condition=IfCondition(PythonExpression(["'", doctor, "' == 'true' and '", card, "' == ''"])),
        ),
        Node(  # card:= given: it overrides the file's card
            package="vla_ros",
            executable="doctor_node",
            name="doctor_node",
            namespace=namespace,
            parameters=[params, {"card": card}, sim_time],
            arguments=ros_args,
            output="screen",
            emulate_tty=True,
            condition=IfCondition(PythonExpression(["'", doctor, "' == 'true' and '", card, "' != ''"])),
        ),
        Node(
            package="vla_ros",
            executable="sim_node",
            name="sim_node",
            namespace=namespace,
            parameters=[sim_params, sim_time],
            arguments=ros_args,
            output="screen",
            emulate_tty=True,
            condition=IfCondition(LaunchConfiguration("sim")),
        ),
    ]
    return LaunchDescription(arguments + nodes)
