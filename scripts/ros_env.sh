# Sourced (bash) by env.sh and scripts/setup.sh: activate the project venv, the ROS 2 wheels (when
# the venv carries them) and, unless "nobuild" is passed, the colcon install.
#   source scripts/ros_env.sh ROOT VENV [nobuild]
_vr_root=$1
_vr_venv=$2
_vr_mode=$3
export VIRTUAL_ENV="$_vr_venv"
case ":$PATH:" in *":$_vr_venv/bin:"*) ;; *) export PATH="$_vr_venv/bin:$PATH" ;; esac
_vr_site=$(ls -d "$_vr_venv"/lib/python3*/site-packages 2>/dev/null | head -n 1)
if [ -n "$_vr_site" ] && [ -d "$_vr_site/ros_wheels_bootstrapper" ]; then
  # ROS 2 from PyPI wheels (Kilted, or Jazzy in the second lane): the venv prefix is the ROS prefix.
  _vr_distro=$(cat "$_vr_venv/.vla_ros_distro" 2>/dev/null || echo kilted)
  export ROS_DISTRO="${ROS_DISTRO:-$_vr_distro}" ROS_VERSION=2 ROS_PYTHON_VERSION=3
  case ":${AMENT_PREFIX_PATH:-}:" in *":$_vr_venv:"*) ;;
    *) export AMENT_PREFIX_PATH="$_vr_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;; esac
  case ":${CMAKE_PREFIX_PATH:-}:" in *":$_vr_venv:"*) ;;
    *) export CMAKE_PREFIX_PATH="$_vr_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}" ;; esac
  export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
  # What ros_wheels_bootstrapper would otherwise re-exec the interpreter to set up.
  _vr_ld="$_vr_venv/lib"
  for _vr_d in "$_vr_site"/ros_*.libs; do [ -d "$_vr_d" ] && _vr_ld="$_vr_ld:$_vr_d"; done
  case ":${LD_LIBRARY_PATH:-}:" in *":$_vr_venv/lib:"*) ;;
    *) export LD_LIBRARY_PATH="$_vr_ld${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
  export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
  export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
fi
_vr_install=${VLA_ROS_INSTALL:-$_vr_root/install}
if [ "$_vr_mode" != nobuild ] && [ -f "$_vr_install/setup.bash" ]; then
  # colcon's setup scripts read unset variables; relax nounset around them.
  _vr_u=$(set +o | grep nounset); set +u
  # shellcheck disable=SC1091
  source "$_vr_install/setup.bash"
  eval "$_vr_u"
fi
# Fast DDS: a shared-memory segment that holds camera frames (config/fastdds_large_data.xml).
case "${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}" in rmw_fastrtps_cpp|rmw_fastrtps_dynamic_cpp)
  if [ -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}" ] && [ -f "$_vr_root/config/fastdds_large_data.xml" ]; then
    export FASTDDS_DEFAULT_PROFILES_FILE="$_vr_root/config/fastdds_large_data.xml"
  fi ;;
esac
unset _vr_root _vr_venv _vr_mode _vr_site _vr_ld _vr_d _vr_u _vr_distro _vr_install
