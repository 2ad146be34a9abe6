"""The ``main()`` every vla_ros node executable shares: init, build, spin, clean shutdown."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node


def _default_spin(node: Node) -> None:
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    executor.spin()


def run_node(
    make_node: Callable[[], Node],
    args: list[str] | None = None,
    spin: Callable[[Node], None] | None = None,
) -> int:
    """``rclpy.init(args)``, build the node, spin until Ctrl-C or shutdown, destroy, shut down.

    ``spin(node)`` defaults to a MultiThreadedExecutor; a node with its own threading (the executor
    node's real-time control thread) passes its own. A node that fails to build raises: a bad
    configuration must stop the process with its message, not leave a half-built node running.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        (spin or _default_spin)(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


__all__ = ["Executor", "run_node"]
