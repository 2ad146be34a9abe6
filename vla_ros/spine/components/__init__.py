"""vla_ros.spine.components."""
