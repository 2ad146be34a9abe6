"""vla_ros.sim."""
