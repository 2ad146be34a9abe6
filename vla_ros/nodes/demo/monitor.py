"""The demo's monitor node: records what flows on the topics and drives the episodes.

It subscribes to ``joint_states``, ``vla/joint_command`` and ``vla/action_chunk`` (the time
series of the report), optionally to every topic of the run as raw CDR for the MCAP recording
(:class:`vla_ros.nodes.demo.recorder.McapRecorder`), and is the client of the graph's own
interfaces for the episodes: ``<executor>/arm`` (std_srvs/SetBool) and ``<sim>/set_parameters``
(the sim's live ``target``). Its callbacks only
store; the episode loop (:mod:`vla_ros.nodes.demo.episodes`) runs on the caller's thread while an
executor spins the node elsewhere.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from vla_ros.msg import ActionChunk
from vla_ros.nodes.demo.config import DemoError
from vla_ros.nodes.demo.recorder import McapRecorder
from vla_ros.util.ns import msg_to_ns

#: topics never recorded (ROS bookkeeping, not the run)
SKIP_TOPICS = ("/rosout", "/parameter_events")


class DemoMonitor:
    """A node in the demo's context; see the module docstring.

    ``joint_names`` orders the recorded positions; ``executor`` and ``sim`` are the node names
    whose services it calls.
    """

    def __init__(
        self, context: Any, joint_names: list[str], *, executor: str = "executor_node", sim: str = "sim_node"
    ) -> None:
        self.node = Node("vla_demo_monitor", context=context)
        self.joint_names = list(joint_names)
        self.lock = threading.Lock()
        self.states: list[tuple[int, np.ndarray]] = []  # (stamp ns, positions)
        self.commands: list[tuple[int, np.ndarray]] = []
        self.chunks: list[tuple[int, int, int]] = []  # (arrival ns, stamp ns, last action's time ns)
        self.recorder: McapRecorder | None = None
        n = self.node
        n.create_subscription(JointState, "joint_states", self._on_state, qos_profile_sensor_data)
        n.create_subscription(JointState, "vla/joint_command", self._on_command, 10)
        n.create_subscription(ActionChunk, "vla/action_chunk", self._on_chunk, 10)
        self._arm = n.create_client(SetBool, f"/{executor}/arm")
        self._params = n.create_client(SetParameters, f"/{sim}/set_parameters")

    def now_ns(self) -> int:
        """The ROS clock now (the timebase of the header stamps)."""
        return self.node.get_clock().now().nanoseconds

    # ---- topics ------------------------------------------------------------------------------

    def _positions(self, msg: JointState) -> np.ndarray | None:
        index = {name: i for i, name in enumerate(msg.name)}
        if len(msg.position) != len(msg.name) or not all(n in index for n in self.joint_names):
            return None
        return np.array([msg.position[index[n]] for n in self.joint_names], dtype=np.float64)

    def _on_state(self, msg: JointState) -> None:
        q = self._positions(msg)
        if q is not None:
            with self.lock:
                self.states.append((msg_to_ns(msg.header.stamp), q))

    def _on_command(self, msg: JointState) -> None:
        q = self._positions(msg)
        if q is not None:
            with self.lock:
                self.commands.append((msg_to_ns(msg.header.stamp), q))

    def _on_chunk(self, msg: ActionChunk) -> None:
        stamp = msg_to_ns(msg.header.stamp)
        dt_ns = int(msg.dt.sec) * 1_000_000_000 + int(msg.dt.nanosec)
        last = stamp + max(int(msg.horizon) - 1, 0) * dt_ns
        with self.lock:
            self.chunks.append((self.now_ns(), stamp, last))

    def latest_state(self) -> np.ndarray | None:
        """The newest measured positions (None before the first joint_states)."""
        with self.lock:
            return self.states[-1][1].copy() if self.states else None

    def chunk_count(self) -> int:
        """Action chunks received so far."""
        with self.lock:
            return len(self.chunks)

    # ---- recording ---------------------------------------------------------------------------

    def record(self, recorder: McapRecorder, publishers: dict[str, tuple[type, QoSProfile]]) -> None:
        """Subscribe raw to each ``topic -> (message class, publisher QoS)`` into ``recorder``.

        The subscription takes the publisher's reliability and durability (a reliable
        subscription does not match a best-effort camera), with a deeper history.
        """
        self.recorder = recorder
        for topic, (msg_class, qos) in publishers.items():
            sub_qos = QoSProfile(
                depth=max(qos.depth, 50), reliability=qos.reliability, durability=qos.durability
            )

            def callback(data: bytes, topic: str = topic) -> None:
                recorder.write(topic, self.now_ns(), data)

            self.node.create_subscription(msg_class, topic, callback, sub_qos, raw=True)

    # ---- the graph's services ----------------------------------------------------------------

    def _call(self, client: Any, request: Any, what: str, timeout_s: float) -> Any:
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise DemoError(f"{what}: service {client.srv_name} not available after {timeout_s:g} s")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout_s):
            raise DemoError(f"{what}: no reply from {client.srv_name} within {timeout_s:g} s")
        return future.result()

    def set_armed(self, armed: bool, timeout_s: float = 5.0) -> None:
        """Arm or disarm the executor; raises :class:`DemoError` with its reason when refused."""
        reply = self._call(self._arm, SetBool.Request(data=armed), "arm" if armed else "disarm", timeout_s)
        if not reply.success:
            raise DemoError(f"the executor refused to {'arm' if armed else 'disarm'}: {reply.message}")

    def set_target(self, target: np.ndarray, timeout_s: float = 5.0) -> None:
        """The sim's ``target`` parameter (the marker the cameras show)."""
        value = ParameterValue(
            type=ParameterType.PARAMETER_DOUBLE_ARRAY, double_array_value=[float(v) for v in target]
        )
        request = SetParameters.Request(parameters=[ParameterMsg(name="target", value=value)])
        reply = self._call(self._params, request, "set the sim target", timeout_s)
        result = reply.results[0]
        if not result.successful:
            raise DemoError(f"sim_node refused target {list(target)}: {result.reason}")

    def destroy(self) -> None:
        """Destroy the node (the recorder is closed by its owner)."""
        self.node.destroy_node()
