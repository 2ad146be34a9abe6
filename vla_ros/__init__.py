"""vla_ros: run vision-language-action policies on ROS 2 robots.

Everything except :mod:`vla_ros.nodes` (and the generated :mod:`vla_ros.msg`) imports without ROS.
"""

from pkgutil import extend_path

# The colcon build installs this package next to the generated message package (vla_ros.msg and
# its type-support libraries). When the sources come first on sys.path (a checkout, a pip editable
# install), let Python find those generated modules in the install too.
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
