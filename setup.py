"""pip-installable ROS-free part of vla_ros (spine, export, runtime, eval, doctor, CLI).

On a robot, build the package with colcon instead (package.xml, CMakeLists.txt): that also
generates the messages and installs the nodes.
"""

from setuptools import setup

setup()
