"""A small harness for tests against real ROS 2: real rclpy contexts, nodes, topics and DDS.

Each :class:`RosHarness` owns its own rclpy context and a MultiThreadedExecutor spinning in a
background thread, so tests never call ``spin_once`` by hand and callbacks run as they do on a
robot. Waiting is always bounded by a timeout; a timeout fails the test with what did arrive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, ShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile


class Collector:
    """Collects every message received on one subscription, thread-safely."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.messages: list[Any] = []
        self.stamps_ns: list[int] = []  # receive times, time.monotonic_ns()
        self._cond = threading.Condition()

    def __call__(self, msg: Any) -> None:
        with self._cond:
            self.messages.append(msg)
            self.stamps_ns.append(time.monotonic_ns())
            self._cond.notify_all()

    def wait_for(self, n: int = 1, timeout: float = 5.0) -> list[Any]:
        """Return the first ``n`` messages, or fail saying how many arrived within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.topic}: {len(self.messages)} of {n} messages arrived in {timeout} s"
                    )
                self._cond.wait(left)
            return list(self.messages[:n])

    def clear(self) -> None:
        """Forget what was received so far."""
        with self._cond:
            self.messages.clear()
            self.stamps_ns.clear()


class RosHarness:
    """One rclpy context + a background MultiThreadedExecutor; :meth:`close` tears it all down."""

    def __init__(self, domain_id: int | None = None, num_threads: int = 4) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = MultiThreadedExecutor(num_threads=num_threads, context=self.context)
        self._nodes: list[Node] = []
        self._helper: Node | None = None
        self._stopping = threading.Event()
        #: exceptions raised by callbacks (the spin loop goes on; close() reports them)
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._spin, name="ros-harness-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        # spin_once in a loop, not spin(): a callback that raises (e.g. a timer of a node the test
        # just destroyed) must not end the spinning for every other node of the test
        while not self._stopping.is_set() and self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except (ExternalShutdownException, ShutdownException):
                break
            except Exception as exc:
                if self._stopping.is_set() or not self.context.ok():
                    break
                self.errors.append(exc)

    @property
    def helper(self) -> Node:
        """A node owned by the harness for test publishers and subscriptions."""
        if self._helper is None:
            self._helper = self.make_node(f"test_helper_{id(self):x}")
        return self._helper

    def make_node(self, name: str, **kwargs: Any) -> Node:
        """Create a plain node in this context and spin it."""
        return self.add_node(Node(name, context=self.context, **kwargs))

    def add_node(self, node: Node) -> Node:
        """Spin a node the test constructed (with ``context=harness.context``)."""
        self._nodes.append(node)
        self.executor.add_node(node)
        return node

    def remove_node(self, node: Node) -> None:
        """Stop spinning and destroy a node (simulates the node going away)."""
        self.executor.remove_node(node)
        if node in self._nodes:
            self._nodes.remove(node)
        node.destroy_node()

    def subscribe(self, topic: str, msg_type: type, qos: QoSProfile | int = 10) -> Collector:
        """Subscribe the helper node to ``topic``; returns the :class:`Collector`."""
        collector = Collector(topic)
        self.helper.create_subscription(msg_type, topic, collector, qos)
        return collector

    def publisher(self, topic: str, msg_type: type, qos: QoSProfile | int = 10) -> Any:
        """A publisher on the helper node."""
        return self.helper.create_publisher(msg_type, topic, qos)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll ``predicate`` every 5 ms until it holds (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.005)
        return bool(predicate())

    def wait_for_subscribers(self, pub: Any, n: int = 1, timeout: float = 5.0) -> None:
        """Fail unless ``pub`` is matched by ``n`` subscriptions within ``timeout`` (discovery)."""
        if not self.wait_until(lambda: pub.get_subscription_count() >= n, timeout):
            raise AssertionError(
                f"{pub.topic_name}: {pub.get_subscription_count()} of {n} subscribers after {timeout} s"
            )

    def close(self) -> None:
        """Shut the executor down, destroy every node, shut the context down.

        Raises AssertionError if a callback raised during the test, other than a callback of a
        node the test destroyed on purpose (rclpy's InvalidHandle).
        """
        self._stopping.set()
        for node in self._nodes:
            self.executor.remove_node(node)
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(timeout=2.0)
        for node in reversed(self._nodes):
            node.destroy_node()
        self._nodes.clear()
        if self.context.ok():
            rclpy.shutdown(context=self.context)
        real = [e for e in self.errors if not isinstance(e, InvalidHandle)]
        if real:
            raise AssertionError(f"callbacks raised during the test: {real!r}")
