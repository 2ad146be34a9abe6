"""vla_ros: policy_node + executor_node (+ doctor_node, + sim_node), one process each.

    ros2 launch vla_ros vla.launch.py params_file:=/path/to/robot.yaml namespace:=robot1

The same parameter YAML drives ``vla-ros bringup PARAMS.yaml`` (all nodes in one process).
Its sections are keyed ``/**/<node_name>`` so they apply under any ``namespace``.
"""

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the nodes."""
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    use_sim_time = LaunchConfiguration("use_sim_time")
    log_level = LaunchConfiguration("log_level")
    sim_params = PathJoinSubstitution([FindPackageShare("vla_ros"), "config", "sim.yaml"])

    arguments = [
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([FindPackageShare("vla_ros"), "config", "vla.yaml"]),
            description="ROS 2 parameter YAML for policy_node, executor_node and doctor_node "
            "(the same file `vla-ros bringup` takes); set policy_node.card in it",
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
            parameters=[params_file, sim_time],
            arguments=ros_args,
            output="screen",
            emulate_tty=True,
        ),
        Node(
            package="vla_ros",
            executable="executor_node",
            name="executor_node",
            namespace=namespace,
            parameters=[params_file, sim_time],
            arguments=ros_args,
            output="screen",
            emulate_tty=True,
        ),
        Node(
            package="vla_ros",
            executable="doctor_node",
            name="doctor_node",
            namespace=namespace,
            parameters=[params_file, sim_time],
            arguments=ros_args,
            output="screen",
            emulate_tty=True,
            condition=IfCondition(LaunchConfiguration("doctor")),
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
