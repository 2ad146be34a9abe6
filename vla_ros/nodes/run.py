"""The ``main()`` every vla_ros node executable shares: init, build, spin, clean shutdown."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import (
    Executor,
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node

from vla_ros.util.dds import use_large_data_profile


def _default_spin(node: Node) -> None:
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    executor.spin()


def spin_single_threaded(node: Node) -> None:
    """Spin ``node`` on a SingleThreadedExecutor (for nodes whose callbacks never block)."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.spin()


def run_node(
    make_node: Callable[[], Node],
    args: list[str] | None = None,
    spin: Callable[[Node], None] | None = None,
) -> int:
    """Init (with the Fast DDS large-data profile), build the node, spin, destroy, shut down.

    :func:`use_large_data_profile` runs before ``rclpy.init(args)``; spinning lasts until
    Ctrl-C or shutdown.

    ``spin(node)`` defaults to a MultiThreadedExecutor; a node with its own threading (the executor
    node's real-time control thread) passes its own. A node that fails to build raises: a bad
    configuration must stop the process with its message, not leave a half-built node running.
    """
    use_large_data_profile()  # before the first participant exists
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


__all__ = ["Executor", "run_node", "spin_single_threaded"]
