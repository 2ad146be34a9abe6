#!/usr/bin/env bash
# `make setup`: idempotent set-up of the vla_ros development environment.
#
#   - A ROS 2 distro is sourced (ROS_DISTRO set and rclpy importable): use it. A venv is made with
#     --system-site-packages for the project's Python dependencies only; colcon is the distro's.
#   - Otherwise: a venv with pinned ROS 2 wheels from PyPI (CPython 3.11 only), the project's
#     pinned Python dependencies, the wheels' baked CMake paths repaired, then `colcon build`.
#     ROS=kilted (default): .venv, build/, install/. ROS=jazzy: .venv-jazzy, build-jazzy/,
#     install-jazzy/ (the second lane of `make test`; ./env.sh runs in it with VLA_ROS_DISTRO=jazzy).
#
# A second run with nothing changed skips pip (a stamp file holds the hash of the requirement files)
# and leaves colcon to its own incremental build.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WHEELS_DISTRO=${ROS:-${VLA_ROS_DISTRO:-kilted}}
case "$WHEELS_DISTRO" in
  kilted) SUFFIX="" ;;
  jazzy) SUFFIX="-jazzy" ;;
  *) printf '[setup] ERROR: ROS=%s is not a wheels lane here\n[setup]   fix: use ROS=kilted (default) or ROS=jazzy\n' "$WHEELS_DISTRO" >&2; exit 1 ;;
esac
VENV=${VLA_ROS_VENV:-$ROOT/.venv$SUFFIX}
BUILD_BASE=$ROOT/build$SUFFIX
INSTALL_BASE=$ROOT/install$SUFFIX
LOG_BASE=$ROOT/log$SUFFIX

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$1" >&2; [ $# -gt 1 ] && printf '[setup]   fix: %s\n' "$2" >&2; exit 1; }

need_tool() {  # need_tool CMD WHAT FIX
  command -v "$1" >/dev/null 2>&1 || die "no $2 found ('$1' is not on PATH)" "$3"
}

need_tool cmake "CMake (needed by colcon to build msg/)" "install it: apt-get install cmake (Debian/Ubuntu)"
need_tool cc "C compiler (needed to build the message type support)" "install it: apt-get install build-essential"
need_tool c++ "C++ compiler (needed to build the message type support)" "install it: apt-get install build-essential"

mode=wheels
if [ -n "${ROS_DISTRO:-}" ] && python3 -c 'import rclpy' >/dev/null 2>&1; then
  mode=system
fi

# ---- pick the interpreter ---------------------------------------------------------------------
if [ "$mode" = system ]; then
  PY=$(command -v python3) || die "ROS_DISTRO=$ROS_DISTRO is sourced but python3 is missing" \
    "install the distro's python3"
  ok=$("$PY" -c 'import sys; print(int(sys.version_info >= (3, 10)))')
  [ "$ok" = 1 ] || die "python3 is $("$PY" -V 2>&1); vla_ros needs Python 3.10+" \
    "use a ROS 2 distro built for Python 3.10+ (Humble or newer)"
else
  PY=${VLA_ROS_PYTHON:-}
  if [ -z "$PY" ]; then
    for cand in python3.11 python3; do
      if command -v "$cand" >/dev/null 2>&1 && \
         [ "$("$cand" -c 'import sys; print(sys.version_info[:2] == (3, 11))' 2>/dev/null)" = True ]; then
        PY=$(command -v "$cand"); break
      fi
    done
  fi
  if [ -z "$PY" ]; then
    found=$(python3 -V 2>&1 || echo "no python3")
    die "no ROS 2 distro is sourced and no CPython 3.11 was found (python3 is: $found); the ROS 2 Kilted wheels exist for CPython 3.11 only" \
      "either 'source /opt/ros/<distro>/setup.bash' (Humble/Jazzy/Kilted, Python 3.10+) and rerun, or install python3.11 (or set VLA_ROS_PYTHON=/path/to/python3.11)"
  fi
  "$PY" -c 'import venv, ensurepip' 2>/dev/null || die "$PY cannot create virtual environments" \
    "install the venv module: apt-get install python3.11-venv"
fi
say "mode: $mode (python: $PY)"

# ---- the venv ---------------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  if [ "$mode" = system ]; then "$PY" -m venv --system-site-packages "$VENV"; else "$PY" -m venv "$VENV"; fi
fi
VPY=$VENV/bin/python

reqs=(requirements/python.txt)
constraints=requirements/constraints.txt
if [ "$mode" = wheels ]; then
  reqs+=("requirements/ros-$WHEELS_DISTRO-wheels.txt")
  [ "$WHEELS_DISTRO" = kilted ] || constraints=requirements/constraints-$WHEELS_DISTRO.txt
fi
stamp=$VENV/.vla_ros_requirements.sha256
want=$(cat "${reqs[@]}" "$constraints" | sha256sum | cut -d' ' -f1)-$mode
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing pinned requirements (${reqs[*]})"
  args=()
  for r in "${reqs[@]}"; do args+=(-r "$r"); done
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VPY" -m pip install --quiet "${args[@]}" -c "$constraints"
  echo "$want" > "$stamp"
else
  say "requirements up to date"
fi

# ---- repair the wheels' baked CMake paths (no root needed) ------------------------------------
cmake_args=(-DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF -Wno-dev)
if [ "$mode" = wheels ]; then
  "$VPY" "$ROOT/scripts/fix_wheel_paths.py" "$VENV"
  # CMake refuses to export an include path inside the source tree, and .venv is inside it.
  cmake_args+=(-DPython3_NumPy_INCLUDE_DIR="$("$VPY" "$ROOT/scripts/fix_wheel_paths.py" "$VENV" --numpy-include)")
fi

# ---- colcon build -----------------------------------------------------------------------------
# shellcheck source=scripts/ros_env.sh
[ "$mode" = wheels ] && echo "$WHEELS_DISTRO" > "$VENV/.vla_ros_distro"
source "$ROOT/scripts/ros_env.sh" "$ROOT" "$VENV" nobuild
colcon_cmd=(colcon)
[ "$mode" = wheels ] && colcon_cmd=("$VENV/bin/colcon")
say "colcon build"
"${colcon_cmd[@]}" --log-base "$LOG_BASE" build --base-paths "$ROOT" --build-base "$BUILD_BASE" \
  --install-base "$INSTALL_BASE" --packages-select vla_ros \
  --event-handlers console_direct- console_cohesion- summary+ status- \
  --cmake-args "${cmake_args[@]}"
[ -d "$INSTALL_BASE/vla_ros/lib/vla_ros" ] || die "colcon build did not produce $INSTALL_BASE/vla_ros/lib/vla_ros" \
  "read $LOG_BASE/latest_build/vla_ros/stdout_stderr.log"
say "done: run commands in the environment with ./env.sh CMD"
