"""vla_ros.doctor."""
