"""vla_ros.runtime."""
