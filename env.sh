#!/usr/bin/env bash
# Run a command inside the vla_ros environment: the project venv (.venv), the ROS 2 libraries it
# needs, and the colcon install (install/). Examples:
#   ./env.sh python -c "from vla_ros.msg import ActionChunk; import rclpy"
#   ./env.sh vla-ros doctor
#   ./env.sh bash          # an interactive shell in the environment
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=${VLA_ROS_VENV:-$ROOT/.venv}
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$ROOT/install/setup.bash" ]; then
  echo "env.sh: the environment is not set up ($VENV or $ROOT/install missing); run 'make setup' first" >&2
  exit 1
fi
if [ $# -eq 0 ]; then
  echo "usage: ./env.sh CMD [ARGS...]   (e.g. ./env.sh python, ./env.sh vla-ros doctor)" >&2
  exit 2
fi
# shellcheck source=scripts/ros_env.sh
source "$ROOT/scripts/ros_env.sh" "$ROOT" "$VENV"
exec "$@"
