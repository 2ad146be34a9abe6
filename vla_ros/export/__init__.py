"""vla_ros.export."""
