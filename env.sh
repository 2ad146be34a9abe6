#!/usr/bin/env bash
# Run a command inside the vla_ros environment: the project venv (.venv), the ROS 2 libraries it
# needs, and the colcon install (install/). Examples:
#   ./env.sh python -c "from vla_ros.msg import ActionChunk; import rclpy"
#   ./env.sh vla-ros doctor
#   ./env.sh bash          # an interactive shell in the environment
#   VLA_ROS_DISTRO=jazzy ./env.sh CMD   # the Jazzy lane (make setup ROS=jazzy): .venv-jazzy, install-jazzy/
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "${VLA_ROS_DISTRO:-kilted}" in
  kilted) _suffix="" ;;
  jazzy) _suffix="-jazzy" ;;
  *) echo "env.sh: VLA_ROS_DISTRO=$VLA_ROS_DISTRO has no lane here; use kilted (default) or jazzy" >&2; exit 2 ;;
esac
VENV=${VLA_ROS_VENV:-$ROOT/.venv$_suffix}
export VLA_ROS_INSTALL=$ROOT/install$_suffix
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VLA_ROS_INSTALL/setup.bash" ]; then
  echo "env.sh: the environment is not set up ($VENV or $VLA_ROS_INSTALL missing); run 'make setup${_suffix:+ ROS=jazzy}' first" >&2
  exit 1
fi
if [ $# -eq 0 ]; then
  echo "usage: ./env.sh CMD [ARGS...]   (e.g. ./env.sh python, ./env.sh vla-ros doctor)" >&2
  exit 2
fi
# shellcheck source=scripts/ros_env.sh
source "$ROOT/scripts/ros_env.sh" "$ROOT" "$VENV"
exec "$@"
