"""vla_ros.control."""
