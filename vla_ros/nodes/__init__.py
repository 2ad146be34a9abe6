"""vla_ros.nodes."""
