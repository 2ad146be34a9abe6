"""Test configuration shared by the whole suite.

ROS tests are marked ``@pytest.mark.ros`` and use the ``ros`` fixture (see support/ros_harness.py). Under
``make test`` (VLA_ROS_REQUIRE_ROS=1) a missing rclpy or missing colcon-built messages is an error,
never a silent skip; elsewhere (a pip install without ROS) those tests skip and say why.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the shared helpers: support.*

# Keep test traffic on this machine and off any robot's DDS domain: one domain per test process
# (subprocesses started by tests inherit it), discovery restricted to localhost.
if "VLA_ROS_TEST_DOMAIN_ID" in os.environ:
    os.environ["ROS_DOMAIN_ID"] = os.environ["VLA_ROS_TEST_DOMAIN_ID"]
else:
    os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_LOCALHOST_ONLY", None)


def _ros_problem() -> str | None:
    """Why real-ROS tests cannot run here, or None when they can."""
    try:
        import rclpy  # noqa: F401
    except Exception as exc:  # ImportError or a missing shared library
        return f"rclpy does not import ({exc}); run the tests through ./env.sh after make setup"
    try:
        from vla_ros.msg import ActionChunk  # noqa: F401
    except Exception as exc:
        return f"vla_ros.msg does not import ({exc}); run 'make setup' (colcon build) first"
    return None


ROS_PROBLEM = _ros_problem()


def pytest_report_header(config: pytest.Config) -> str:
    """Name the ROS 2 lane in the header: make test runs the ROS tests on Kilted and on Jazzy."""
    if ROS_PROBLEM is not None:
        return f"ROS 2: none ({ROS_PROBLEM})"
    from importlib.metadata import PackageNotFoundError, version

    try:
        rclpy_version = version("ros-rclpy")
    except PackageNotFoundError:
        rclpy_version = "from the sourced distro"
    return f"ROS 2 distro: {os.environ.get('ROS_DISTRO', '?')} (rclpy {rclpy_version})"


def pytest_configure(config: pytest.Config) -> None:
    if ROS_PROBLEM and os.environ.get("VLA_ROS_REQUIRE_ROS") == "1":
        raise pytest.UsageError(f"VLA_ROS_REQUIRE_ROS=1 but real-ROS tests cannot run: {ROS_PROBLEM}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ROS_PROBLEM is None:
        return
    skip = pytest.mark.skip(reason=f"real-ROS test skipped: {ROS_PROBLEM}")
    for item in items:
        if "ros" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def ros():
    """A fresh rclpy context with a background MultiThreadedExecutor (see support.ros_harness.RosHarness)."""
    from support.ros_harness import RosHarness

    harness = RosHarness()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (sources, config/, launch/, install/)."""
    return HERE.parent
