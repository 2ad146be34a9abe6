"""policy_node: camera images + joint states + instruction -> ActionChunk, on a worker thread.

Topics (relative names, so a namespace moves them; with none they are the canonical ones):

- subscribes ``camera/<name>/image_raw`` (sensor_msgs/Image) per card camera, or a topic ending
  in ``/compressed`` (sensor_msgs/CompressedImage), set with the ``cameras`` parameter;
  ``joint_states`` (sensor_msgs/JointState); ``vla/instruction`` (std_msgs/String)
- publishes ``vla/action_chunk`` (vla_ros/ActionChunk) and ``/diagnostics``

Callbacks only validate header fields (O(1)) and store a reference to the message. A worker
thread assembles the observation (staleness rule and stamps: :mod:`vla_ros.perception.observation`),
converts images (views, no copies for 8-bit encodings; the runtime resizes to the card's size),
runs the runtime and publishes a chunk stamped with the observation stamp. Any bad input, a
stale or missing input, an inference error or a non-finite output publishes nothing, is logged
once per cause (and once when it clears) and is reported on ``/diagnostics``.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import deque
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String

from vla_ros.nodes.params import ParamSpec, declare_parameters
from vla_ros.perception import (
    FaultLog,
    ImageFormatError,
    MissingJointError,
    ObservationAssembler,
    ObservationError,
    ObservationRejected,
    StalenessLimits,
    check_image_fields,
    msg_to_rgb8,
    ns_to_stamp,
    seconds_to_ns,
    stamp_to_ns,
)
from vla_ros.runtime.errors import NonFiniteOutputError
from vla_ros.runtime.observation import Observation

QOS_CHOICES = ("sensor_data", "reliable", "best_effort")

PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("card", "", "Policy card folder (made by `vla-ros export`); required", read_only=True),
    ParamSpec(
        "backend",
        "onnxruntime",
        "Runtime backend",
        read_only=True,
        choices=("onnxruntime", "torch", "tensorrt"),
    ),
    ParamSpec(
        "device",
        "auto",
        "Backend device: onnxruntime providers ('auto', 'cpu', 'cuda', "
        "comma list) or torch device ('cpu', 'cuda'); 'auto' = the backend's default",
        read_only=True,
    ),
    ParamSpec("threads", 0, "Backend CPU threads; 0 = the backend's default", read_only=True, range=(0, 64)),
    ParamSpec(
        "cameras",
        [],
        "Camera topics as 'name=topic' entries, one per card camera; a "
        "camera left out uses camera/<name>/image_raw; a topic ending in /compressed is "
        "read as sensor_msgs/CompressedImage",
        type="string_array",
        read_only=True,
    ),
    ParamSpec(
        "state_joints",
        [],
        "joint_states names for the card's state vector, in the card's "
        "order (renames the card's joints for this robot); empty = the card's "
        "state_joints",
        type="string_array",
        read_only=True,
    ),
    ParamSpec(
        "action_joints",
        [],
        "Joint names written into each ActionChunk, in the card's "
        "action order; empty = the card's action_joints",
        type="string_array",
        read_only=True,
    ),
    ParamSpec("instruction", "", "Language instruction; replaced by each std_msgs/String on vla/instruction"),
    ParamSpec(
        "rate_hz",
        0.0,
        "Inference rate; 0 = as fast as possible (whenever a new "
        "observation is ready and the previous inference has finished)",
        range=(0.0, 1000.0),
    ),
    ParamSpec(
        "image_staleness_s",
        0.2,
        "Maximum age of each camera's newest image, against the node clock",
        range=(0.001, 60.0),
    ),
    ParamSpec(
        "state_staleness_s",
        0.1,
        "Maximum age of the newest joint_states, against the node clock",
        range=(0.001, 60.0),
    ),
    ParamSpec(
        "future_tolerance_s",
        0.05,
        "How far a stamp may be ahead of the node clock before it is rejected (clock skew)",
        range=(0.0, 10.0),
    ),
    ParamSpec(
        "obs_history_dt_s",
        0.0,
        "Spacing of observation history frames when the card has obs_history > 1; 0 = the card's dt",
        read_only=True,
        range=(0.0, 10.0),
    ),
    ParamSpec(
        "depth_max_m",
        2.0,
        "Depth images (16UC1 mm, 32FC1 m) map [0, depth_max_m] to [0, 255]",
        range=(0.01, 100.0),
    ),
    ParamSpec(
        "image_qos", "sensor_data", "QoS of the camera subscriptions", read_only=True, choices=QOS_CHOICES
    ),
    ParamSpec(
        "state_qos",
        "sensor_data",
        "QoS of the joint_states subscription",
        read_only=True,
        choices=QOS_CHOICES,
    ),
    ParamSpec("qos_depth", 5, "History depth of the input subscriptions", read_only=True, range=(1, 1000)),
    ParamSpec(
        "chunk_qos_depth",
        10,
        "History depth of the reliable vla/action_chunk publisher",
        read_only=True,
        range=(1, 1000),
    ),
    ParamSpec(
        "warmup",
        3,
        "Inferences on a synthetic observation before subscribing",
        read_only=True,
        range=(0, 1000),
    ),
    ParamSpec(
        "diagnostics_period_s", 1.0, "Period of the /diagnostics status", read_only=True, range=(0.05, 60.0)
    ),
)

_DYNAMIC_STALENESS = ("image_staleness_s", "state_staleness_s", "future_tolerance_s")


def _qos(kind: str, depth: int) -> QoSProfile:
    if kind == "sensor_data":
        q = QoSProfile(depth=depth)
        q.reliability = qos_profile_sensor_data.reliability
        q.durability = qos_profile_sensor_data.durability
        q.history = qos_profile_sensor_data.history
        return q
    rel = ReliabilityPolicy.RELIABLE if kind == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(depth=depth, reliability=rel)


def parse_cameras(entries: list[str], card_cameras: tuple[str, ...]) -> dict[str, str]:
    """``['name=topic', ...]`` -> ``{name: topic}`` for every card camera (defaults filled in).

    Raises ``ValueError`` naming a malformed entry, a camera the card does not have, or a
    duplicate.
    """
    topics = {name: f"camera/{name}/image_raw" for name in card_cameras}
    seen: set[str] = set()
    for entry in entries:
        name, sep, topic = entry.partition("=")
        name, topic = name.strip(), topic.strip()
        if not sep or not name or not topic:
            raise ValueError(
                f"parameter cameras: entry {entry!r} is not 'name=topic' (e.g. 'wrist=/wrist_cam/image_raw')"
            )
        if name not in topics:
            raise ValueError(
                f"parameter cameras: camera {name!r} is not in the policy card, whose cameras "
                f"are {list(card_cameras)}; use those names"
            )
        if name in seen:
            raise ValueError(f"parameter cameras: camera {name!r} is listed twice")
        seen.add(name)
        topics[name] = topic
    return topics


def _percentiles(values: list[int]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(np.asarray(values, dtype=np.float64), (50, 99))
    return float(p50) / 1e6, float(p99) / 1e6


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
        self.p = declare_parameters(self, PARAMS)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self.faults = FaultLog()
        self.runtime = runtime if runtime is not None else self._load_runtime()
        card = self.runtime.card
        io = card.io
        self.card = card
        self.policy_id = card.policy_id
        self.state_joints = self._joint_names("state_joints", card.state_joints)
        self.action_joints = self._joint_names("action_joints", card.action_joints)
        self.camera_topics = parse_cameras(self.p["cameras"], tuple(io.camera_names))
        history_dt = self.p["obs_history_dt_s"] or io.dt
        self.assembler = ObservationAssembler(
            tuple(io.camera_names),
            self.state_joints,
            limits=self._limits(self.p),
            history=io.obs_history,
            history_dt_ns=seconds_to_ns(history_dt) if io.obs_history > 1 else 0,
        )
        self._instruction: str = self.p["instruction"]
        self._period_s = 1.0 / self.p["rate_hz"] if self.p["rate_hz"] > 0 else 0.0
        self._depth_max_m: float = self.p["depth_max_m"]
        dt_sec, dt_nsec = ns_to_stamp(seconds_to_ns(io.dt))
        self._dt = Duration(sec=dt_sec, nanosec=dt_nsec)
        self._seq = 0
        self._lock = threading.Lock()  # guards the counters and timing windows below
        self.chunks_published = 0
        self.non_finite_outputs = 0
        self.inference_errors = 0
        self.stale_observations = 0
        self.rejected_messages = 0
        #: per published chunk: (stamp->publish ns, runtime.infer ns, worker step ns)
        self.timings: deque[tuple[int, int, int]] = deque(maxlen=4096)
        self._last_diag = (time.monotonic(), 0)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        if self.p["warmup"]:
            self.runtime.warmup(self.p["warmup"])
        from vla_ros.msg import ActionChunk  # colcon-built message

        self._ActionChunk = ActionChunk
        self.chunk_pub = self.create_publisher(
            ActionChunk,
            "vla/action_chunk",
            QoSProfile(depth=self.p["chunk_qos_depth"], reliability=ReliabilityPolicy.RELIABLE),
        )
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        image_qos = _qos(self.p["image_qos"], self.p["qos_depth"])
        for name, topic in self.camera_topics.items():
            if topic.endswith("/compressed"):
                self.create_subscription(CompressedImage, topic, self._compressed_callback(name), image_qos)
            else:
                self.create_subscription(Image, topic, self._image_callback(name), image_qos)
        self.create_subscription(
            JointState,
            "joint_states",
            self._on_joint_state,
            _qos(self.p["state_qos"], self.p["qos_depth"]),
        )
        self.create_subscription(String, "vla/instruction", self._on_instruction, 10)
        self.create_timer(self.p["diagnostics_period_s"], self._publish_diagnostics)
        self._worker = threading.Thread(target=self._run, name="policy_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"policy {self.policy_id} on {self.p['backend']}: cameras {self.camera_topics}, "
            f"{len(self.state_joints)} state joints, horizon {io.horizon} x {io.action_dim} "
            f"every {'new observation' if not self._period_s else f'{1 / self._period_s:g} Hz'}"
        )

    # ---- set-up ------------------------------------------------------------------------------

    def _load_runtime(self) -> Any:
        from vla_ros.runtime import load_runtime  # heavy: torch/onnxruntime

        card = self.p["card"]
        if not card:
            raise ValueError(
                f"{self.get_name()}: parameter 'card' is empty; set it to a policy card folder "
                "made by `vla-ros export` (in the params YAML or with -p card:=/path/to/card)"
            )
        backend = self.p["backend"]
        opts: dict[str, Any] = {}
        if self.p["threads"]:
            opts["threads"] = self.p["threads"]
        if backend == "onnxruntime":
            opts["providers"] = self.p["device"]
        elif backend == "torch" and self.p["device"] != "auto":
            opts["device"] = self.p["device"]
        return load_runtime(card, backend=backend, **opts)

    def _joint_names(self, param: str, card_names: list[str]) -> tuple[str, ...]:
        names = self.p[param] or list(card_names)
        if len(names) != len(card_names):
            raise ValueError(
                f"parameter {param} has {len(names)} names {names} but the card has "
                f"{len(card_names)} ({list(card_names)}); list one robot joint per card joint, "
                "in the card's order, or leave it empty"
            )
        return tuple(names)

    @staticmethod
    def _limits(p: dict[str, Any]) -> StalenessLimits:
        return StalenessLimits(
            image_ns=seconds_to_ns(p["image_staleness_s"]),
            state_ns=seconds_to_ns(p["state_staleness_s"]),
            future_ns=seconds_to_ns(p["future_tolerance_s"]),
        )

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        values = {p.name: p.value for p in params}
        if "instruction" in values:
            self._instruction = str(values["instruction"])
        if "rate_hz" in values:
            rate = float(values["rate_hz"])
            self._period_s = 1.0 / rate if rate > 0 else 0.0
        if "depth_max_m" in values:
            self._depth_max_m = float(values["depth_max_m"])
        if any(k in values for k in _DYNAMIC_STALENESS):
            merged = {k: values.get(k, self.get_parameter(k).value) for k in _DYNAMIC_STALENESS}
            self.assembler.limits = self._limits(merged)
        self._wake.set()
        return SetParametersResult(successful=True)

    # ---- faults ------------------------------------------------------------------------------

    def _fault(self, cause: str, message: str, *, error: bool = False) -> None:
        if self.faults.raise_(cause, message):
            log = self.get_logger().error if error else self.get_logger().warning
            log(message)

    def _recover(self, cause: str) -> None:
        if self.faults.clear(cause):
            self.get_logger().info(f"recovered: {cause}")

    # ---- callbacks: cheap, never block --------------------------------------------------------

    def _image_callback(self, camera: str):
        source = f"camera {camera!r}"
        cause_prefix = f"image:{camera}"

        def callback(msg: Image) -> None:
            try:
                check_image_fields(
                    msg.encoding, msg.height, msg.width, msg.step, len(msg.data), source=source
                )
            except ImageFormatError as exc:
                with self._lock:
                    self.rejected_messages += 1
                self._fault(f"{cause_prefix}:{exc.cause.rsplit(':', 1)[-1]}", f"rejected image: {exc}")
                return
            stamp = msg.header.stamp
            self.assembler.push_image(camera, stamp_to_ns(stamp.sec, stamp.nanosec), msg)
            self._wake.set()

        return callback

    def _compressed_callback(self, camera: str):
        def callback(msg: CompressedImage) -> None:
            stamp = msg.header.stamp
            self.assembler.push_image(camera, stamp_to_ns(stamp.sec, stamp.nanosec), msg)
            self._wake.set()

        return callback

    def _on_joint_state(self, msg: JointState) -> None:
        stamp = msg.header.stamp
        try:
            self.assembler.push_joint_state(stamp_to_ns(stamp.sec, stamp.nanosec), msg.name, msg.position)
        except ObservationError as exc:
            with self._lock:
                self.rejected_messages += 1
            self._fault(exc.cause, f"rejected joint_states: {exc}")
            return
        self._wake.set()

    def _on_instruction(self, msg: String) -> None:
        self._instruction = msg.data

    # ---- worker ------------------------------------------------------------------------------

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            period = self._period_s
            if period > 0:
                next_t += period
                delay = next_t - time.monotonic()
                if delay < 0:  # overran: skip the missed ticks instead of bursting
                    next_t = time.monotonic()
                elif self._stop.wait(delay):
                    break
            else:
                # wake on new data; re-check staleness at least every 100 ms without data
                self._wake.wait(0.1)
                self._wake.clear()
                next_t = time.monotonic()
            if self._stop.is_set():
                break
            try:
                self.step()
            except Exception as exc:  # never let the worker die: log once, hold
                self._fault("worker:exception", f"policy worker error: {exc!r}", error=True)

    def step(self) -> bool:
        """One worker iteration; returns True when a chunk was published."""
        t_start = time.perf_counter_ns()
        now_ns = self.get_clock().now().nanoseconds
        try:
            assembly = self.assembler.assemble(now_ns)
        except ObservationRejected as rejected:
            causes = {f"input:{e.cause}" for e in rejected.errors}
            for gone in self.faults.clear_except("input:", keep=causes):
                self.get_logger().info(f"recovered: {gone}")
            for err in rejected.errors:
                if err.cause.endswith(":missing") and not isinstance(err, MissingJointError):
                    if self.faults.raise_(f"input:{err.cause}", f"waiting: {err}"):
                        self.get_logger().info(f"waiting: {err}")
                else:
                    self._fault(f"input:{err.cause}", f"no chunk: {err}")
            if any(":stale" in c or ":future" in c for c in causes):
                with self._lock:
                    self.stale_observations += 1
            return False
        for gone in self.faults.clear_except("input:"):
            self.get_logger().info(f"recovered: {gone}")
        if not self.assembler.is_new(assembly):
            return False

        images: dict[str, np.ndarray] = {}
        for camera, entries in assembly.images.items():
            try:
                frames = [
                    msg_to_rgb8(e.item, depth_max_m=self._depth_max_m, source=f"camera {camera!r}")
                    for e in entries
                ]
            except ImageFormatError as exc:
                self.assembler.mark_consumed(assembly)  # do not retry the same bad message
                with self._lock:
                    self.rejected_messages += 1
                self._fault(f"image:{camera}:convert", f"rejected image: {exc}")
                return False
            self._recover(f"image:{camera}:convert")
            images[camera] = frames[0] if len(frames) == 1 else np.stack(frames)
        state = assembly.state[0] if assembly.state.shape[0] == 1 else assembly.state
        obs = Observation(
            images=images, state=state, instruction=self._instruction, stamp_ns=assembly.stamp_ns
        )
        self.assembler.mark_consumed(assembly)
        t_infer = time.perf_counter_ns()
        try:
            actions = self.runtime.infer(obs)
        except Exception as exc:
            t_done = time.perf_counter_ns()
            if isinstance(exc, NonFiniteOutputError):
                with self._lock:
                    self.non_finite_outputs += 1
                self._fault("output:non_finite", f"no chunk: {exc}", error=True)
            else:
                with self._lock:
                    self.inference_errors += 1
                self._fault("inference:error", f"no chunk: inference failed: {exc!r}", error=True)
            return False
        t_done = time.perf_counter_ns()
        actions = np.asarray(actions, dtype=np.float32)
        if not np.isfinite(actions).all():
            with self._lock:
                self.non_finite_outputs += 1
            self._fault("output:non_finite", "no chunk: the policy returned NaN/Inf actions", error=True)
            return False
        self._recover("output:non_finite")
        self._recover("inference:error")
        self._publish(actions, assembly.stamp_ns, t_start, t_done - t_infer)
        return True

    def _publish(self, actions: np.ndarray, stamp_ns: int, t_start: int, infer_ns: int) -> None:
        msg = self._ActionChunk()
        sec, nsec = ns_to_stamp(stamp_ns)
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
        msg.policy_id = self.policy_id
        msg.seq = self._seq
        msg.joint_names = list(self.action_joints)
        msg.dt = self._dt
        msg.horizon, msg.action_dim = int(actions.shape[0]), int(actions.shape[1])
        msg.actions = array("f", np.ascontiguousarray(actions).tobytes())
        msg.action_mode = self.card.io.action_mode
        latency = self.get_clock().now().nanoseconds - stamp_ns
        lsec, lnsec = ns_to_stamp(max(0, latency))
        msg.inference_latency.sec, msg.inference_latency.nanosec = lsec, lnsec
        self.chunk_pub.publish(msg)
        self._seq += 1
        with self._lock:
            self.chunks_published += 1
            self.timings.append((latency, infer_ns, time.perf_counter_ns() - t_start))

    # ---- diagnostics -------------------------------------------------------------------------

    def diagnostic_status(self) -> DiagnosticStatus:
        """The node's current DiagnosticStatus (also published on /diagnostics)."""
        now = time.monotonic()
        with self._lock:
            recent = list(self.timings)[-256:]
            published = self.chunks_published
            counts = {
                "chunks_published": published,
                "stale_observations": self.stale_observations,
                "rejected_messages": self.rejected_messages,
                "non_finite_outputs": self.non_finite_outputs,
                "inference_errors": self.inference_errors,
            }
        t_prev, n_prev = self._last_diag
        self._last_diag = (now, published)
        rate = (published - n_prev) / (now - t_prev) if now > t_prev else 0.0
        lat50, lat99 = _percentiles([r[0] for r in recent])
        inf50, inf99 = _percentiles([r[1] for r in recent])
        active = self.faults.active()
        values = [
            KeyValue(key="policy_id", value=self.policy_id),
            KeyValue(key="backend", value=str(self.p["backend"])),
            KeyValue(key="chunk_rate_hz", value=f"{rate:.2f}"),
            KeyValue(key="latency_p50_ms", value=f"{lat50:.3f}"),
            KeyValue(key="latency_p99_ms", value=f"{lat99:.3f}"),
            KeyValue(key="infer_p50_ms", value=f"{inf50:.3f}"),
            KeyValue(key="infer_p99_ms", value=f"{inf99:.3f}"),
        ]
        values += [KeyValue(key=k, value=str(v)) for k, v in counts.items()]
        for source, c in self.assembler.counters().items():
            values.append(KeyValue(key=f"dropped:{source}", value=str(c["dropped"])))
            values.append(KeyValue(key=f"received:{source}", value=str(c["received"])))
        values += [KeyValue(key=f"fault:{k}", value=f.message) for k, f in sorted(active.items())]
        blocking = [k for k in active if k.startswith(("input:", "output:", "inference:", "worker:"))]
        if blocking:
            level = DiagnosticStatus.ERROR
            message = "no chunks: " + "; ".join(active[k].message for k in sorted(blocking))
        elif active:
            level = DiagnosticStatus.WARN
            message = "; ".join(active[k].message for k in sorted(active))
        else:
            level = DiagnosticStatus.OK
            message = f"ok: {rate:.1f} chunks/s, latency p50 {lat50:.1f} ms"
        return DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: policy",
            message=message[:1000],
            hardware_id=self.policy_id,
            values=values,
        )

    def _publish_diagnostics(self) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = [self.diagnostic_status()]
        self.diag_pub.publish(arr)

    # ---- teardown ----------------------------------------------------------------------------

    def destroy_node(self) -> None:
        """Stop the worker thread (finishing its current inference), then destroy the node."""
        self._stop.set()
        self._wake.set()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=10.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run vla_ros policy_node``: spin until Ctrl-C, then shut down cleanly."""
    rclpy.init(args=args)
    node = None
    try:
        node = PolicyNode()
        executor = MultiThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
