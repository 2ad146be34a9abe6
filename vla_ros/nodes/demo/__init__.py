"""``vla-ros demo`` / ``make demo``: the sim task through the real node graph, then a report folder.

:mod:`.app` (the command), :mod:`.config` (YAML, task, chunk mode), :mod:`.episodes` (the episode
loop on the live graph), :mod:`.monitor` (the monitor node), :mod:`.record` and :mod:`.report`
(the report folder, ROS-free), :mod:`.recorder` (the MCAP recording), :mod:`.latency` (injected
inference latency). See docs/demo.md.
"""

from vla_ros.nodes.demo.app import add_arguments, main, run

__all__ = ["add_arguments", "main", "run"]
