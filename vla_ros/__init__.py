"""vla_ros: run vision-language-action policies on ROS 2 robots.

Everything except :mod:`vla_ros.nodes` (and the generated :mod:`vla_ros.msg`) imports without ROS.
"""

__version__ = "0.1.0"
