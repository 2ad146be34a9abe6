"""package.xml is a valid format-3 ament_cmake manifest with the rosdep keys a robot needs."""

from __future__ import annotations

from pathlib import Path

from catkin_pkg.package import parse_package

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_is_valid_and_declares_the_ros_dependencies():
    pkg = parse_package(str(ROOT / "package.xml"))  # validates (raises InvalidPackage)
    assert pkg.name == "vla_ros" and pkg.package_format == 3
    assert pkg.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [g.name for g in pkg.member_of_groups]
    run_deps = {d.name for d in pkg.exec_depends} | {d.name for d in pkg.build_depends}
    for key in (
        "rclpy",
        "std_msgs",
        "sensor_msgs",
        "trajectory_msgs",
        "diagnostic_msgs",
        "std_srvs",
        "launch_ros",
        "rosidl_default_runtime",
        "python3-numpy",
        "python3-yaml",
    ):
        assert key in run_deps, f"package.xml lacks the dependency {key}"
    assert "rosidl_default_generators" in {d.name for d in pkg.buildtool_depends}
