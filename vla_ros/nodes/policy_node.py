"""policy_node: camera images + joint states + instruction -> ActionChunk, on a worker thread.

Topics (relative names, so a namespace moves them; with none they are the canonical ones):

- subscribes ``camera/<name>/image_raw`` (sensor_msgs/Image) per card camera, or a topic ending
  in ``/compressed`` (sensor_msgs/CompressedImage), set with the ``cameras`` parameter;
  ``joint_states`` (sensor_msgs/JointState); ``vla/instruction`` (std_msgs/String)
- subscribes ``executor_node/committed_actions`` (vla_ros/ActionChunk, parameter
  ``committed_actions_topic``): what the executor has committed to command; each inference
  carries it resampled onto the new chunk's grid for the first ``d`` steps (real-time chunking;
  ``d`` the inference delay estimate, reported on /diagnostics as ``delay_steps`` / ``delay_ns``)
- publishes ``vla/action_chunk`` (vla_ros/ActionChunk) and ``/diagnostics``

Inference runs at ``rate_hz`` (0: on new data) or, with ``inference_trigger: horizon``, when the
executor has fewer than ``d + horizon_margin_steps`` chunk steps of actions left
(:mod:`vla_ros.policy.worker`; real-time chunking: docs/rtc.md).

Callbacks only validate header fields (O(1)) and store a reference to the message; camera topics
are taken as serialized bytes and read in place (:mod:`vla_ros.perception.cdr`). The policy
logic (observation, staleness, inference, the fault rule: nothing published, one log line per
cause) is :class:`vla_ros.policy.PolicyStep`, which offline evaluation runs on bag time; this
node is the rclpy adapter: parameters, subscriptions, the worker thread, publishing and
/diagnostics (message conversion: :mod:`vla_ros.nodes.messages`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String

from vla_ros.nodes import messages
from vla_ros.nodes.params import declare_parameters
from vla_ros.nodes.run import destroy_half_built, log_at, run_node, spin_single_threaded
from vla_ros.perception import FaultLog, ImageFormatError, ObservationAssembler
from vla_ros.perception.cdr import read_image_message
from vla_ros.policy import ChunkResult, PolicyStep, RateMeter, parse_cameras
from vla_ros.policy.from_params import LIVE_PARAMS, apply_params, runtime_from_params, step_from_params
from vla_ros.policy.health import not_loaded_status, step_status
from vla_ros.policy.params import PARAMS
from vla_ros.policy.worker import run_worker
from vla_ros.util.ns import msg_to_ns


def _qos(kind: str, depth: int) -> QoSProfile:
    if kind == "sensor_data":
        q = QoSProfile(depth=depth)
        q.reliability = qos_profile_sensor_data.reliability
        q.durability = qos_profile_sensor_data.durability
        q.history = qos_profile_sensor_data.history
        return q
    rel = ReliabilityPolicy.RELIABLE if kind == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(depth=depth, reliability=rel)


class PolicyNode(Node):
    """The policy node; see the module docstring. ``runtime`` injects a loaded runtime."""

    def __init__(
        self,
        *,
        context: Context | None = None,
        parameter_overrides: list[Parameter] | None = None,
        node_name: str = "policy_node",
        namespace: str | None = None,
        runtime: Any | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            node_name,
            context=context,
            namespace=namespace,
            parameter_overrides=parameter_overrides,
            **kwargs,
        )
        try:
            self._build(runtime)
        except BaseException:
            destroy_half_built(self)
            raise

    def _build(self, runtime: Any | None) -> None:
        self.p = declare_parameters(self, PARAMS)
        self._configure_memory()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self.policy: PolicyStep | None = None
        self.load_error: str | None = None
        self._retry_timer = None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # a steady timer: /diagnostics keeps reporting (e.g. a stopped /clock) when sim time stands still
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(self.p["diagnostics_period_s"], self._publish_diagnostics, clock=steady)
        if runtime is not None:
            self._activate(runtime)
        elif not self._try_load():
            # a card that is missing, corrupt or built for another GPU must not take the node
            # down: report ERROR on /diagnostics, publish nothing, and retry
            self._retry_timer = self.create_timer(self.p["load_retry_s"], self._retry_load)

    def _configure_memory(self) -> None:
        from vla_ros.util.memory import keep_heap, lock_memory

        for wanted, apply in ((self.p["keep_heap"], keep_heap), (self.p["lock_memory"], lock_memory)):
            if not wanted:
                continue
            result = apply()
            (self.get_logger().info if result.applied else self.get_logger().warning)(result.detail)

    def _try_load(self) -> bool:
        """Load the runtime from the card and activate; False (logged once per message) on failure."""
        from vla_ros.contract.errors import VlaRosError

        try:
            runtime = runtime_from_params(self.p, self.get_name())
        except VlaRosError as exc:
            message = f"cannot load policy card {self.p['card']!r}: {exc}"
            if message != self.load_error:
                self.get_logger().error(f"{message}; retrying every {self.p['load_retry_s']:g} s")
            self.load_error = message
            return False
        self._activate(runtime)
        return True

    def _retry_load(self) -> None:
        try:
            loaded = self._try_load()
        except ValueError as exc:  # the card loaded but does not fit the parameters: needs a fix
            self.load_error = str(exc)
            self.get_logger().error(f"{exc}; not retrying until the node is restarted")
            loaded = True
        if loaded and self._retry_timer is not None:
            self._retry_timer.cancel()
            self.destroy_timer(self._retry_timer)
            self._retry_timer = None

    def _activate(self, runtime: Any) -> None:
        """Everything that depends on the card: joints, cameras, subscriptions, the worker."""
        for name in LIVE_PARAMS:
            self.p[name] = self.get_parameter(name).value  # changed while waiting for the card
        self.runtime = runtime
        self.card = card = runtime.card
        self.policy_id = card.policy_id
        self.camera_topics = parse_cameras(self.p["cameras"], tuple(card.io.camera_names))
        # input liveness on the steady clock: a stopped /clock trips it
        policy = step_from_params(runtime, self.p, log=self._log, liveness_clock=time.monotonic_ns)
        self.state_joints = policy.assembler.state_joints
        self.action_joints = policy.action_joints
        self._period_s = 1.0 / self.p["rate_hz"] if self.p["rate_hz"] > 0 else 0.0
        self._rate = RateMeter(time.monotonic())
        #: the policy logic (ROS-free); the node only feeds it and publishes what it returns
        self.policy = policy
        self.load_error = None

        if self.p["warmup"]:
            self.runtime.warmup(self.p["warmup"])
        from vla_ros.msg import ActionChunk  # colcon-built message

        self.chunk_pub = self.create_publisher(
            ActionChunk,
            "vla/action_chunk",
            QoSProfile(depth=self.p["chunk_qos_depth"], reliability=ReliabilityPolicy.RELIABLE),
        )
        image_qos = _qos(self.p["image_qos"], self.p["qos_depth"])
        for name, topic in self.camera_topics.items():
            kind = CompressedImage if topic.endswith("/compressed") else Image
            raw = bool(self.p["zero_copy_images"])
            callback = self._raw_image_callback(name, kind) if raw else self._image_callback(name)
            self.create_subscription(kind, topic, callback, image_qos, raw=raw)
        self.create_subscription(
            JointState,
            "joint_states",
            self._on_joint_state,
            _qos(self.p["state_qos"], self.p["qos_depth"]),
        )
        self.create_subscription(String, "vla/instruction", self._on_instruction, 10)
        if self.p["committed_actions_topic"]:
            self.create_subscription(
                ActionChunk,
                self.p["committed_actions_topic"],
                self._on_committed,
                QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE),
            )
        self._worker = threading.Thread(target=self._run, name="policy_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"policy {self.policy_id} on {self.p['backend']}: cameras {self.camera_topics}, "
            f"{len(self.state_joints)} state joints, horizon {card.io.horizon} x {card.io.action_dim} "
            f"every {'new observation' if not self._period_s else f'{1 / self._period_s:g} Hz'}"
        )

    # ---- views of the policy step's state (tests, benchmarks) --------------------------------

    @property
    def assembler(self) -> ObservationAssembler:
        """The observation assembler (latest messages, staleness, history)."""
        return self.policy.assembler

    @property
    def faults(self) -> FaultLog:
        """Active fault causes (log-once bookkeeping)."""
        return self.policy.faults

    @property
    def timings(self) -> deque[tuple[int, int, int]]:
        """Per published chunk: (stamp->publish ns, runtime.infer ns, worker step ns)."""
        return self.policy.stats.timings

    # ---- set-up ------------------------------------------------------------------------------

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        if self.policy is None:  # not active yet: _activate reads the parameters then
            return SetParametersResult(successful=True)
        values = {p.name: p.value for p in params}
        apply_params(self.policy, values, lambda name: self.get_parameter(name).value)
        if "rate_hz" in values:
            rate = float(values["rate_hz"])
            self._period_s = 1.0 / rate if rate > 0 else 0.0
        if "horizon_margin_steps" in values:
            self.p["horizon_margin_steps"] = int(values["horizon_margin_steps"])
        self._wake.set()
        return SetParametersResult(successful=True)

    def _log(self, level: str, message: str) -> None:
        log_at(self.get_logger(), level, message)

    # ---- callbacks: cheap, never block --------------------------------------------------------

    def _image_callback(self, camera: str):
        def callback(msg: Image | CompressedImage) -> None:
            stamp = msg.header.stamp
            if self.policy.push_image(camera, msg_to_ns(stamp), msg):
                self._wake.set()

        return callback

    def _raw_image_callback(self, camera: str, kind: type):
        source = f"camera {camera!r}"

        def callback(buf: bytes) -> None:
            try:
                msg = read_image_message(buf, kind, source=source)
            except ImageFormatError as exc:
                self.policy.reject_image(camera, exc)
                return
            stamp = msg.header.stamp
            if self.policy.push_image(camera, msg_to_ns(stamp), msg):
                self._wake.set()

        return callback

    def _on_joint_state(self, msg: JointState) -> None:
        stamp = msg.header.stamp
        if self.policy.push_joint_state(msg_to_ns(stamp), msg.name, msg.position):
            self._wake.set()

    def _on_instruction(self, msg: String) -> None:
        self.policy.instruction = msg.data

    def _on_committed(self, msg: Any) -> None:
        now_ns = self.get_clock().now().nanoseconds
        self.policy.push_committed(now_ns, *messages.committed_arguments(msg))

    # ---- worker ------------------------------------------------------------------------------

    def _run(self) -> None:
        horizon = self.p["inference_trigger"] == "horizon"
        run_worker(
            self.step,
            self._stop,
            self._wake,
            period_s=lambda: self._period_s,
            horizon_due=self._horizon_due if horizon else None,
            on_error=self._worker_raised,
        )

    def _horizon_due(self) -> bool:
        now_ns = self.get_clock().now().nanoseconds
        return self.policy.horizon_due(now_ns, self.p["horizon_margin_steps"])

    def _worker_raised(self, exc: Exception) -> None:
        # never let the worker die: log once, hold
        self.policy.fault("worker:exception", f"policy worker error: {exc!r}", level="error")

    def step(self) -> bool:
        """One worker iteration at the node clock's time; returns True when a chunk was published."""
        result = self.policy.run(self.get_clock().now().nanoseconds)
        if not isinstance(result, ChunkResult):
            return False
        self._publish(result)
        return True

    def _publish(self, result: ChunkResult) -> None:
        latency = self.get_clock().now().nanoseconds - result.stamp_ns
        self.chunk_pub.publish(messages.result_chunk(result, latency))
        self.policy.record_published(result, latency)

    # ---- diagnostics -------------------------------------------------------------------------

    def diagnostic_status(self) -> DiagnosticStatus:
        """The node's current DiagnosticStatus (also published on /diagnostics)."""
        name = f"{self.get_fully_qualified_name()}: policy"
        if self.policy is None:
            card = str(self.p["card"])
            level, message, values = not_loaded_status(card, self.load_error, self.p["load_retry_s"])
            return messages.diagnostic_status(name, level, message, card, values)
        backend = str(self.p["backend"])
        level, message, values = step_status(
            self.policy, backend=backend, rate=self._rate, now_s=time.monotonic()
        )
        return messages.diagnostic_status(name, level, message, self.policy_id, values)

    def _publish_diagnostics(self) -> None:
        stamp_ns = self.get_clock().now().nanoseconds
        self.diag_pub.publish(messages.diagnostic_array(self.diagnostic_status(), stamp_ns))

    # ---- teardown ----------------------------------------------------------------------------

    def destroy_node(self) -> None:
        """Stop the worker thread (finishing its current inference), then destroy the node."""
        self._stop.set()
        self._wake.set()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=10.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run vla_ros policy_node``: spin until Ctrl-C, then shut down cleanly.

    A single-threaded executor: every callback only stores a message (inference runs on the
    worker thread), and rclpy's MultiThreadedExecutor adds ~1.5 ms p50 and ~20 ms p99 to the
    delivery of two 640x480 frames on a 2-core machine (``benchmarks/bench_pipeline.py``).
    """
    return run_node(PolicyNode, args, spin=spin_single_threaded)


if __name__ == "__main__":
    raise SystemExit(main())
