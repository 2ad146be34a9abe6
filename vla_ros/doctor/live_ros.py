"""Sampling a running ROS graph with rclpy into a :class:`~vla_ros.doctor.live.LiveObservation`.

Imports rclpy at module import: import this module only when a live check runs.
"""

from __future__ import annotations

import importlib
import os
import time
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from vla_ros.doctor.live import (
    ACTION_CHUNK_TYPE,
    HIDDEN_TOPICS,
    LiveObservation,
    TopicExpectation,
    TopicSample,
    diagnostics_numbers,
)

# Compatible with every publisher: best effort + volatile never blocks a match.
PROBE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=50,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
MAX_PARAM_QUERIES = 32
#: ``policy_id`` prefix of an executor's ``~/committed_actions`` (``executor:<node>``, see
#: vla_ros.nodes.executor_node): ActionChunks that carry no inference latency.
EXECUTOR_POLICY_ID_PREFIX = "executor:"


def _msg_class(type_name: str) -> Any:
    pkg, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def _qos_dict(info: Any) -> dict[str, Any]:
    q = info.qos_profile
    ns = info.node_namespace.rstrip("/")
    return {
        "node": f"{ns}/{info.node_name}",
        "reliability": q.reliability.name,
        "durability": q.durability.name,
        "deadline_ns": int(q.deadline.nanoseconds),
        "liveliness": q.liveliness.name,
        "lease_ns": int(q.liveliness_lease_duration.nanoseconds),
    }


class LiveSampler:
    """Subscribes to the topics under test on ``node`` and records what arrives.

    Call :meth:`poll` periodically while the node's executor spins (it subscribes to topics as
    they are discovered and asks other nodes for ``use_sim_time``), then :meth:`finish`.
    """

    def __init__(
        self,
        node: Node,
        expected: list[TopicExpectation],
        extra_topics: tuple[str, ...] = (),
        max_topics: int = 24,
    ) -> None:
        self.node = node
        self.expected = expected
        self.extra = tuple(extra_topics)
        self.max_topics = max_topics
        self.samples: dict[str, TopicSample] = {}
        self._subs: dict[str, Any] = {}
        self._param_futures: dict[str, Any] = {}
        self._clients: list[Any] = []
        self._queried: set[str] = set()
        self._clock_sub: Any = None
        self.clock_messages = 0
        self._diag_sub: Any = None
        self.diagnostics_latency_ms: dict[str, float] = {}
        self.diagnostics_delay_ns: dict[str, int] = {}
        self.started = time.monotonic()

    # -- discovery ----------------------------------------------------------------------------
    def _targets(self, graph: dict[str, list[str]]) -> list[str]:
        names = [e.name for e in self.expected] + list(self.extra)
        if not self.expected:
            names += [n for n in sorted(graph) if n not in HIDDEN_TOPICS]
        names += [n for n, ts in graph.items() if ACTION_CHUNK_TYPE in ts]
        return list(dict.fromkeys(names))[: self.max_topics]

    def poll(self) -> None:
        """Subscribe to newly discovered targets and query nodes' ``use_sim_time``."""
        graph = dict(self.node.get_topic_names_and_types())
        for name in self._targets(graph):
            sample = self.samples.setdefault(name, TopicSample(name))
            if name in self._subs or name not in graph:
                continue
            sample.types = list(graph[name])
            try:
                cls = _msg_class(graph[name][0])
            except (ImportError, AttributeError, ValueError) as exc:
                sample.error = f"cannot import message type {graph[name][0]}: {exc}"
                self._subs[name] = None
                continue
            self._subs[name] = self.node.create_subscription(cls, name, self._callback(sample), PROBE_QOS)
        if self._clock_sub is None and "/clock" in graph:
            self._subscribe_clock()
        if self._diag_sub is None and "/diagnostics" in graph:
            self._subscribe_diagnostics()
        self._query_params()

    def _subscribe_clock(self) -> None:
        """Count /clock messages: a /clock with publishers but no messages stands still."""
        from rosgraph_msgs.msg import Clock

        def count(_msg: Any) -> None:
            self.clock_messages += 1

        self._clock_sub = self.node.create_subscription(Clock, "/clock", count, PROBE_QOS)

    def _subscribe_diagnostics(self) -> None:
        """Keep the latest ``latency_p99_ms`` and ``delay_ns`` each policy node reports on /diagnostics."""
        from diagnostic_msgs.msg import DiagnosticArray

        def record(msg: Any) -> None:
            statuses = [(s.name, {kv.key: kv.value for kv in s.values}) for s in msg.status]
            self.diagnostics_latency_ms.update(diagnostics_numbers(statuses, "latency_p99_ms"))
            delay = diagnostics_numbers(statuses, "delay_ns")
            self.diagnostics_delay_ns.update({k: round(v) for k, v in delay.items()})

        self._diag_sub = self.node.create_subscription(DiagnosticArray, "/diagnostics", record, PROBE_QOS)

    def _callback(self, sample: TopicSample) -> Any:
        clock = self.node.get_clock()

        def cb(msg: Any) -> None:
            sample.receive_ns.append(time.monotonic_ns())
            # An ActionChunk's header stamp is the observation's (a policy's chunk) or its first
            # committed action's (an executor's ~/committed_actions), never its send time: it says
            # nothing about clocks, so only other stamped messages measure the clock offset.
            is_chunk = hasattr(msg, "inference_latency") and hasattr(msg, "policy_id")
            header = getattr(msg, "header", None)
            stamp = getattr(header, "stamp", None)
            if stamp is not None:
                stamp_ns = int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
                if stamp_ns == 0:
                    sample.zero_stamps += 1
                elif not is_chunk:
                    sample.offsets_ns.append(clock.now().nanoseconds - stamp_ns)
            names = getattr(msg, "name", None)
            if isinstance(names, list | tuple) and names and isinstance(names[0], str):
                for n in names:
                    if n not in sample.joint_names:
                        sample.joint_names.append(n)
            lat = getattr(msg, "inference_latency", None)
            committed = str(getattr(msg, "policy_id", "")).startswith(EXECUTOR_POLICY_ID_PREFIX)
            if lat is not None and hasattr(lat, "nanosec") and not committed:
                sample.inference_latency_ns.append(int(lat.sec) * 1_000_000_000 + int(lat.nanosec))

        return cb

    def _query_params(self) -> None:
        from rcl_interfaces.srv import GetParameters

        me = f"{self.node.get_namespace().rstrip('/')}/{self.node.get_name()}"
        for name, ns in self.node.get_node_names_and_namespaces():
            full = f"{ns.rstrip('/')}/{name}"
            if full == me or full in self._queried or len(self._queried) >= MAX_PARAM_QUERIES:
                continue
            client = self.node.create_client(GetParameters, f"{full}/get_parameters")
            if not client.service_is_ready():
                self.node.destroy_client(client)
                continue
            self._queried.add(full)
            self._clients.append(client)
            self._param_futures[full] = client.call_async(GetParameters.Request(names=["use_sim_time"]))

    # -- result -------------------------------------------------------------------------------
    def finish(self) -> LiveObservation:
        """Collect graph endpoints and QoS, tear down subscriptions, return the observation."""
        window = time.monotonic() - self.started
        me = f"{self.node.get_namespace().rstrip('/')}/{self.node.get_name()}"
        wanted = {e.name for e in self.expected} | set(self.extra)
        for name, sample in list(self.samples.items()):
            sample.publishers = [_qos_dict(i) for i in self.node.get_publishers_info_by_topic(name)]
            sample.subscribers = [
                d
                for d in (_qos_dict(i) for i in self.node.get_subscriptions_info_by_topic(name))
                if d["node"] != me
            ]
            own = sample.publishers and all(p["node"] == me for p in sample.publishers)
            if own and name not in wanted:
                del self.samples[name]  # only this node publishes it (doctor_node's /diagnostics)
        sim_nodes = []
        if self.node.get_parameter("use_sim_time").value:
            sim_nodes.append(me)
        for full, fut in self._param_futures.items():
            if fut.done() and fut.exception() is None:
                vals = fut.result().values
                if vals and vals[0].type == 1 and vals[0].bool_value:  # PARAMETER_BOOL
                    sim_nodes.append(full)
        clock_pubs = [_qos_dict(i)["node"] for i in self.node.get_publishers_info_by_topic("/clock")]
        obs = LiveObservation(
            window_s=window,
            topics=self.samples,
            clock_publishers=self.node.count_publishers("/clock"),
            clock_publisher_nodes=sorted(set(clock_pubs)),
            clock_messages=self.clock_messages if self._clock_sub is not None else None,
            sim_time_nodes=sim_nodes,
            nodes_queried=sorted(self._queried),
            nodes=sorted(f"{ns.rstrip('/')}/{n}" for n, ns in self.node.get_node_names_and_namespaces()),
            diagnostics_latency_ms=dict(self.diagnostics_latency_ms),
            diagnostics_delay_ns=dict(self.diagnostics_delay_ns),
        )
        self.close()
        return obs

    def close(self) -> None:
        """Destroy the subscriptions and clients this sampler made."""
        for sub in self._subs.values():
            if sub is not None:
                self.node.destroy_subscription(sub)
        for c in self._clients:
            self.node.destroy_client(c)
        if self._clock_sub is not None:
            self.node.destroy_subscription(self._clock_sub)
            self._clock_sub = None
        if self._diag_sub is not None:
            self.node.destroy_subscription(self._diag_sub)
            self._diag_sub = None
        self._subs.clear()
        self._clients.clear()


def sample_graph(
    expected: list[TopicExpectation],
    window_s: float,
    extra_topics: tuple[str, ...] = (),
    discovery_s: float = 1.0,
    use_sim_time: bool = False,
) -> LiveObservation:
    """Join the graph with a short-lived node for ``discovery_s + window_s`` seconds and sample
    it (used by ``vla-ros doctor --live``)."""
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    context = Context()
    try:
        rclpy.init(context=context)
    except Exception as exc:
        return LiveObservation(window_s, error=f"rclpy.init failed: {exc}")
    node = None
    executor = SingleThreadedExecutor(context=context)
    try:
        node = Node(
            f"vla_ros_doctor_{os.getpid()}",
            context=context,
            parameter_overrides=[Parameter("use_sim_time", value=use_sim_time)],
        )
        executor.add_node(node)
        end_discovery = time.monotonic() + discovery_s
        while time.monotonic() < end_discovery:  # let discovery fill the graph first
            executor.spin_once(timeout_sec=0.05)
        sampler = LiveSampler(node, expected, extra_topics)
        sampler.poll()
        end = time.monotonic() + window_s
        next_poll = time.monotonic() + 0.25
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.02)
            if time.monotonic() >= next_poll:
                sampler.poll()
                next_poll = time.monotonic() + 0.25
        return sampler.finish()
    finally:
        executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.shutdown(context=context)
