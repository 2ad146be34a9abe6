"""vla_ros.eval."""
