"""executor_node: turns ActionChunks into joint commands at a fixed control rate, safely.

A thin rclpy adapter around :class:`vla_ros.control.controller.ChunkController`: it declares the
parameters (see :mod:`vla_ros.control.executor_params` and config/executor.yaml), converts messages
to integer-nanosecond calls, runs the controller on a timer and publishes the command.

Topics (all remappable): subscribes ``joint_states`` (sensor_msgs/JointState),
``vla/action_chunk`` (vla_ros/ActionChunk), ``vla/estop`` (std_msgs/Bool), ``robot_description``
(std_msgs/String, reliable + transient local as robot_state_publisher latches it; each URDF
received replaces the URDF limits, explicit limit parameters still win); publishes one of
``vla/joint_command`` (JointState), ``commands`` (Float64MultiArray) or ``joint_trajectory``
(JointTrajectory) per ``output_type``, ``~/command_preview`` (JointState) and ``/diagnostics``.
Service ``~/arm`` (std_srvs/SetBool): true arms (clears a latched e-stop once released), false
disarms. The node starts DISARMED unless ``armed_on_start`` is true: nothing reaches the robot
until someone arms it. Disarmed, it computes but publishes commands only to the preview topic
(if enabled); armed, it publishes every tick (holds included).

Arming needs limits: unless every joint has finite position limits and a finite velocity limit
(parameters or robot_description; a URDF ``continuous`` joint needs only the velocity limit), the
node refuses ``~/arm`` (the reply and one log line say what is missing), ignores
``armed_on_start`` (starts disarmed and says why once), reports ERROR on /diagnostics, and, while
armed, rejects limit changes that would leave a joint unlimited. ``allow_unlimited: true``
(read-only) lifts this for simulation and benchmarks; never set it on a real robot.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from typing import Any

import rclpy
from builtin_interfaces.msg import Duration
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (
    SetParametersResult,
)
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import (
    Executor,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.control import executor_params as ep
from vla_ros.control.chunk import ChunkError
from vla_ros.control.controller import ChunkController, Command, ConfigError
from vla_ros.control.safety import JointLimits, LimitsError, arming_refusal
from vla_ros.control.state import StateError
from vla_ros.control.urdf import UrdfError, parse_urdf_limits
from vla_ros.msg import ActionChunk
from vla_ros.nodes.params import declare_parameters
from vla_ros.nodes.run import run_node
from vla_ros.util.faults import Fault, FaultLog
from vla_ros.util.ns import msg_to_ns, ns_to_stamp, seconds_to_ns

ERROR_CAUSES = (
    "estop",
    "tracking_error",
    "tracking_error_disarm",
    "clock_backwards",
    "nonfinite_state",
    "state_outside_limits",
)
#: a fault cause that clears and stays away this long is logged again when it returns
FAULT_RECUR_AFTER_NS = 1_000_000_000


class ExecutorNode(Node):
    """The executor node. Accepts ``context`` and ``parameter_overrides`` like any rclpy Node."""

    def __init__(
        self,
        node_name: str = "executor_node",
        *,
        context: Any = None,
        parameter_overrides: list[Parameter] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(node_name, context=context, parameter_overrides=parameter_overrides, **kwargs)
        self._lock = threading.Lock()
        try:
            self.values: dict[str, Any] = declare_parameters(self, ep.SPECS)
        except (ValueError, rclpy.exceptions.InvalidParameterValueException) as exc:
            raise ConfigError(f"{node_name} parameters invalid: {exc}") from None
        try:
            self._urdf = ep.urdf_limits(self.values)
        except UrdfError as exc:
            raise ConfigError(f"robot_description: {exc}") from None
        for line in getattr(self._urdf, "warnings", ()):
            self.get_logger().warning(f"robot_description: {line}")
        self.faults = FaultLog(
            repeat_interval_ns=seconds_to_ns(self.values["log_repeat_s"]),
            recur_after_ns=FAULT_RECUR_AFTER_NS,
        )
        self.controller: ChunkController | None = None
        names = tuple(self.values["joint_names"] or ())
        if names:
            self._build_controller(names)
        self.dry_run = bool(self.values["dry_run"])
        self.tick_times_ns: deque[int] = deque(maxlen=100_000)  # monotonic, for jitter stats
        self.tick_durations_ns: deque[int] = deque(maxlen=100_000)
        self.last_command: Command | None = None
        self.published = 0

        cb_io = MutuallyExclusiveCallbackGroup()
        cb_timer = MutuallyExclusiveCallbackGroup()
        best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.create_subscription(
            JointState, "joint_states", self._on_joint_state, best_effort, callback_group=cb_io
        )
        self.create_subscription(ActionChunk, "vla/action_chunk", self._on_chunk, 10, callback_group=cb_io)
        self.create_subscription(Bool, "vla/estop", self._on_estop, 10, callback_group=cb_io)
        self.create_service(SetBool, "~/arm", self._on_arm, callback_group=cb_io)
        if self.values["robot_description_topic"]:
            latched = QoSProfile(
                depth=1,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL,
            )
            self.create_subscription(
                String,
                self.values["robot_description_topic"],
                self._on_robot_description,
                latched,
                callback_group=cb_io,
            )
        out = self.values["output_type"]
        if out == "joint_state":
            self._out_pub = self.create_publisher(JointState, "vla/joint_command", 10)
        elif out == "float64_multi_array":
            self._out_pub = self.create_publisher(Float64MultiArray, "commands", 10)
        else:
            self._out_pub = self.create_publisher(JointTrajectory, "joint_trajectory", 10)
        self._preview_pub = self.create_publisher(JointState, "~/command_preview", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        period = 1.0 / float(self.values["control_rate_hz"])
        self._timer = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.overruns = 0
        sim_time = bool(self.get_parameter("use_sim_time").value)
        if self.values["timer"] == "thread" and not sim_time:
            self._start_control_thread()
        else:
            if self.values["timer"] == "thread":
                self.get_logger().info("use_sim_time: control runs on a ROS timer, not a thread")
            self._timer = self.create_timer(period, self._on_tick, callback_group=cb_timer)
        # /diagnostics on a steady clock: a /clock that stops (use_sim_time) must not silence it
        self._diag_timer = self.create_timer(
            float(self.values["diagnostics_period_s"]),
            self._publish_diagnostics,
            callback_group=cb_io,
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )
        self.get_logger().info(
            f"executor ready: {self.values['control_rate_hz']:g} Hz, mode "
            f"{self.values['mode']}, output {out}, "
            f"{'DRY RUN, ' if self.dry_run else ''}"
            f"{'armed' if self.armed else 'DISARMED (call ~/arm to enable)'}"
        )

    # ------------------------------------------------------------------ parameters
    def _build_controller(self, names: tuple[str, ...]) -> None:
        try:
            cfg = ep.controller_config(self.values, names)
            limits = ep.joint_limits(self.values, names, self._urdf)
        except (ConfigError, LimitsError) as exc:
            raise ConfigError(f"executor_node: {exc}") from None
        armed = bool(self.values["armed_on_start"])
        refusal = self._arming_refusal(limits)
        self.get_logger().info(f"joints {list(names)}; limits {ep.describe_limits(limits)}")
        if refusal is not None and armed:
            armed = False
            self.get_logger().error(f"armed_on_start ignored, starting DISARMED: {refusal}")
        elif refusal is not None:
            self.get_logger().warning(f"~/arm will be refused until the limits are complete: {refusal}")
        elif any(limits.missing()):
            position, velocity = limits.missing()
            self.get_logger().warning(
                f"allow_unlimited: true: armable without position limits for {position} and velocity "
                f"limits for {velocity}; only for simulation/bench, never on a real robot"
            )
        self.controller = ChunkController(cfg, limits, armed=armed)

    def _arming_refusal(self, limits: JointLimits, values: dict[str, Any] | None = None) -> str | None:
        """Why the robot must not be armed with ``limits`` (None: it may); see module docstring."""
        values = self.values if values is None else values
        return arming_refusal(limits, allow_unlimited=bool(values["allow_unlimited"]))

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        new = dict(self.values)
        for p in params:
            spec = ep.SPEC_BY_NAME.get(p.name)
            if spec is None:
                continue  # e.g. use_sim_time: rclpy handles it
            if spec.read_only:
                return SetParametersResult(
                    successful=False,
                    reason=f"{p.name} cannot change while running; restart the executor",
                )
            value = list(p.value) if spec.is_array and p.value is not None else p.value
            if (msg := ep.check_value(spec, value)) is not None:
                return SetParametersResult(successful=False, reason=msg)
            new[p.name] = value
        with self._lock:
            ctl = self.controller
            if ctl is not None:
                try:
                    limits = ep.joint_limits(new, ctl.config.joint_names, self._urdf)
                except LimitsError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
                refusal = self._arming_refusal(limits, new)
                if ctl.armed and refusal is not None:
                    return SetParametersResult(
                        successful=False,
                        reason=f"the executor is armed; these limits are incomplete ({refusal}); "
                        "disarm first or give finite limits",
                    )
                try:
                    ctl.set_speed_scale(new["speed_scale"])
                    ctl.set_ensemble_coefficient(new["ensemble_coefficient"])
                    ctl.set_blend_steps(new["blend_steps"])
                    ctl.set_limits(limits)
                except (LimitsError, ConfigError) as exc:
                    # restore what may have been applied before the failure
                    ctl.set_speed_scale(self.values["speed_scale"])
                    ctl.set_ensemble_coefficient(self.values["ensemble_coefficient"])
                    ctl.set_blend_steps(self.values["blend_steps"])
                    return SetParametersResult(successful=False, reason=str(exc))
            self.values = new
        changed = ", ".join(f"{p.name}={p.value}" for p in params)
        self.get_logger().info(f"parameters changed: {changed}")
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ inputs
    @property
    def armed(self) -> bool:
        """Whether commands go to the command topic."""
        return self.controller is not None and self.controller.armed

    def _fault(self, fault: Fault) -> None:
        line = self.faults.report(fault.cause, fault.message, time.monotonic_ns())
        if line is None:
            return
        base = fault.cause.split(":", 1)[0]
        if base in ERROR_CAUSES:
            self.get_logger().error(line)
        else:
            self.get_logger().warning(line)

    def _on_joint_state(self, msg: JointState) -> None:
        """Merge a joint state; a rejected one (duplicate names, ...) is logged once and counted
        (``fault.<cause>`` on /diagnostics). Liveness is judged on the steady clock."""
        ctl = self.controller
        if ctl is None:
            return
        try:
            with self._lock:
                if ctl.state.liveness_clock is None:  # arrival times: a stopped /clock still trips it
                    ctl.state.liveness_clock = time.monotonic_ns
                ctl.update_state(msg_to_ns(msg.header.stamp), msg.name, msg.position)
        except StateError as exc:
            self._fault(Fault(cause=exc.cause, message=str(exc)))

    def _on_chunk(self, msg: ActionChunk) -> None:
        names = tuple(msg.joint_names)
        if self.controller is None:
            if not names:
                self._fault(Fault(cause="chunk_joints", message="chunk has no joint_names; ignored"))
                return
            with self._lock:
                if self.controller is None:
                    try:
                        self._build_controller(names)
                    except ConfigError as exc:
                        self._fault(Fault(cause="config", message=f"cannot adopt chunk joints: {exc}"))
                        return
        ctl = self.controller
        assert ctl is not None
        try:
            with self._lock:
                _, faults = ctl.add_chunk(
                    stamp_ns=msg_to_ns(msg.header.stamp),
                    dt_ns=msg_to_ns(msg.dt),
                    joint_names=names,
                    actions=msg.actions,
                    action_mode=msg.action_mode or "absolute",
                    horizon=msg.horizon,
                    action_dim=msg.action_dim,
                    policy_id=msg.policy_id,
                    seq=msg.seq,
                )
        except ChunkError as exc:
            self._fault(Fault(cause=exc.cause, message=f"rejected chunk: {exc}"))
            return
        for f in faults:
            self._fault(f)

    def _on_robot_description(self, msg: String) -> None:
        """A URDF from the topic: its limits replace the previous URDF's (parameters still win).

        A URDF that cannot be read, or that would leave an armed robot without complete limits,
        is ignored with one warning and the limits in force stay.
        """
        topic = self.values["robot_description_topic"]
        try:
            urdf = parse_urdf_limits(msg.data)
        except UrdfError as exc:
            self._fault(
                Fault(
                    cause="robot_description:urdf",
                    message=f"ignored URDF on {topic}: {exc}; publish the expanded URDF (run xacro)",
                )
            )
            return
        for line in urdf.warnings:
            self.get_logger().warning(f"URDF on {topic}: {line}")
        refusal: str | None = None
        disarmed: str | None = None
        limits: JointLimits | None = None
        with self._lock:  # decide and apply under the lock; log after releasing it
            ctl = self.controller
            if ctl is not None:
                try:
                    limits = ep.joint_limits(self.values, ctl.config.joint_names, urdf)
                except LimitsError as exc:
                    refusal = str(exc)
                else:
                    refusal = self._arming_refusal(limits) if ctl.armed else None
                if refusal is None:
                    # a URDF cannot be refused like a parameter: one that puts the armed robot's
                    # command or state outside its limits disarms it
                    disarmed = ctl.set_limits(limits, on_conflict="disarm")
            if refusal is None:
                self._urdf = urdf
        if disarmed is not None:
            self.get_logger().error(f"URDF from {topic}: {disarmed}")
        if refusal is not None:
            self._fault(
                Fault(
                    cause="robot_description:limits",
                    message=f"ignored URDF on {topic}, the limits in force stay: {refusal}; fix the "
                    "URDF's <limit> tags, or disarm (~/arm false) before publishing it",
                )
            )
            return
        applied = f"; limits {ep.describe_limits(limits)}" if limits is not None else ""
        self.get_logger().info(f"URDF from {topic}: {len(urdf)} joints with limits {sorted(urdf)}{applied}")

    def _on_estop(self, msg: Bool) -> None:
        ctl = self.controller
        if ctl is None:
            return
        with self._lock:
            was = ctl.estop_latched
            ctl.set_estop(bool(msg.data))
        if msg.data and not was:
            self._fault(Fault(cause="estop", message="e-stop received: holding and disarmed until re-armed"))

    def _on_arm(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        ctl = self.controller
        if ctl is None:
            response.success, response.message = False, "no joint_names yet (no chunk received)"
            return response
        with self._lock:
            refusal = self._arming_refusal(ctl.limits) if request.data else None
            if refusal is not None:
                ok, message = False, refusal
            elif request.data:
                ok, message = ctl.arm(self.get_clock().now().nanoseconds)
            else:
                ok, message = ctl.disarm()
        response.success, response.message = ok, message
        # one call site per severity (rclpy refuses to change a call site's severity)
        if not ok:
            self.get_logger().error(f"~/arm(True): {message}")
        else:
            self.get_logger().info(f"~/arm({request.data}): {message}")
        return response

    # ------------------------------------------------------------------ the tick
    def _start_control_thread(self) -> None:
        interval = float(self.values["gil_switch_interval_s"])
        if interval > 0:
            sys.setswitchinterval(interval)
        self._thread = threading.Thread(
            target=self._control_loop, name=f"{self.get_name()}-control", daemon=True
        )
        self._thread.start()

    def _control_loop(self) -> None:
        """Tick on absolute deadlines of the steady clock; overruns skip ticks, never burst."""
        prio = int(self.values["thread_priority"])
        if prio > 0:
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))
            except (PermissionError, OSError, AttributeError) as exc:
                self._fault(
                    Fault(
                        cause="rt_priority",
                        message=f"SCHED_FIFO priority {prio} not granted ({exc}); "
                        "running at normal priority (see docs: rtprio limits)",
                    )
                )
        period = round(1e9 / float(self.values["control_rate_hz"]))
        deadline = time.monotonic_ns() + period
        while not self._stop.is_set():
            delay = deadline - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay * 1e-9)  # plain sleep: wakes more precisely than Event.wait
                if self._stop.is_set():
                    break
            try:
                self._on_tick()
            except Exception as exc:  # never let the control thread die silently
                self._fault(Fault(cause="tick_exception", message=f"control tick raised {exc!r}"))
            deadline += period
            late = time.monotonic_ns() - deadline
            if late > 0:
                skipped = late // period + 1
                self.overruns += int(skipped)
                deadline += skipped * period

    def destroy_node(self) -> None:
        """Stop the control thread, then destroy the node."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        super().destroy_node()

    def _on_tick(self) -> None:
        start = time.monotonic_ns()
        self.tick_times_ns.append(start)
        try:
            self._tick()
        finally:
            self.tick_durations_ns.append(time.monotonic_ns() - start)

    def _tick(self) -> None:
        ctl = self.controller
        if ctl is None:
            return
        now_ns = self.get_clock().now().nanoseconds
        with self._lock:
            cmd = ctl.tick(now_ns)
            faults = ctl.last_faults  # for None too: why nothing is commanded
            armed = ctl.armed
        for f in faults:
            self._fault(f)
        self.faults.settle({f.cause for f in faults}, time.monotonic_ns())
        if cmd is None:
            return
        self.last_command = cmd
        if self.dry_run or self.values["publish_preview"]:
            self._preview_pub.publish(self._joint_state(cmd))
        if armed and not self.dry_run:
            self._out_pub.publish(self._output(cmd))
            self.published += 1

    def _joint_state(self, cmd: Command) -> JointState:
        msg = JointState()
        msg.header.stamp = rclpy.time.Time(nanoseconds=cmd.t_ns).to_msg()
        msg.name = list(cmd.joint_names)
        msg.position = cmd.positions.tolist()
        msg.velocity = cmd.velocities.tolist()
        return msg

    def _output(self, cmd: Command) -> Any:
        kind = self.values["output_type"]
        if kind == "joint_state":
            return self._joint_state(cmd)
        if kind == "float64_multi_array":
            return Float64MultiArray(data=cmd.positions.tolist())
        msg = JointTrajectory()
        msg.header.stamp = rclpy.time.Time(nanoseconds=cmd.t_ns).to_msg()
        msg.joint_names = list(cmd.joint_names)
        points = cmd.trajectory or ((ctl_period(self), cmd.positions),)
        for t_from, q in points:
            sec, nanosec = ns_to_stamp(t_from)
            msg.points.append(
                JointTrajectoryPoint(positions=q.tolist(), time_from_start=Duration(sec=sec, nanosec=nanosec))
            )
        return msg

    def _publish_diagnostics(self) -> None:
        ctl = self.controller
        status = DiagnosticStatus(name=f"{self.get_name()}: executor", hardware_id="vla_ros")
        cmd = self.last_command
        refusal = None
        estop_latched = False
        buffered = 0
        limits_state = "unknown (no joint names yet)"
        if ctl is not None:
            with self._lock:
                refusal = self._arming_refusal(ctl.limits)
                estop_latched = ctl.estop_latched
                buffered = len(ctl.buffer)
                missing = any(ctl.limits.missing())
            limits_state = "incomplete" if refusal else "unlimited (allow_unlimited)" if missing else "ok"
        if ctl is None:
            status.level, status.message = DiagnosticStatus.WARN, "waiting for joint names"
        elif refusal is not None:
            status.level, status.message = DiagnosticStatus.ERROR, refusal
        elif estop_latched:
            status.level, status.message = DiagnosticStatus.ERROR, "e-stop latched"
        elif cmd is None or cmd.holding:
            reason = ", ".join(f.cause for f in cmd.faults) if cmd is not None else "no state"
            status.level, status.message = DiagnosticStatus.WARN, f"holding ({reason})"
        else:
            status.level, status.message = DiagnosticStatus.OK, "running"
        values = {
            "armed": str(self.armed),
            "dry_run": str(self.dry_run),
            "live_chunks": str(0 if cmd is None else cmd.n_live),
            "buffered_chunks": str(buffered),
            "limits": limits_state,
            "published": str(self.published),
        }
        values.update({f"fault.{k}": str(v) for k, v in sorted(self.faults.snapshot().items())})
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def ctl_period(node: ExecutorNode) -> int:
    """The control period in ns."""
    assert node.controller is not None
    return node.controller.config.period_ns


def make_executor(node: ExecutorNode, context: Any = None) -> Executor:
    """The rclpy executor the node runs on in production (also used by the benchmark).

    With ``timer: thread`` the control tick has its own thread, so one executor thread serves
    the subscriptions (fewer threads competing for the GIL); with ``timer: ros_timer`` two
    threads, the timer in its own callback group, so a message being deserialized does not
    delay a tick behind it.
    """
    executor: Executor
    if node.values["timer"] == "thread":
        executor = SingleThreadedExecutor(context=context)
    else:
        executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)
    return executor


def spin(node: ExecutorNode, executor: Executor) -> None:
    """Spin ``executor`` in the calling thread.

    With ``thread_priority`` > 0 this thread (and threads it starts) first gets SCHED_FIFO one
    below the control thread: the threads that hold the GIL between ticks are then never
    preempted by ordinary processes while the control thread waits for the GIL (priority
    inversion would otherwise cost milliseconds of jitter on a loaded machine).
    """
    prio = int(node.values["thread_priority"])
    if prio > 1:
        # without rtprio rights the control thread reports it once; spin at normal priority
        with contextlib.suppress(PermissionError, OSError, AttributeError):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio - 1))
    executor.spin()


def main(args: list[str] | None = None) -> int:
    """Run the executor node until Ctrl-C (control thread + one executor thread)."""
    return run_node(ExecutorNode, args, spin=lambda node: spin(node, make_executor(node)))


if __name__ == "__main__":
    raise SystemExit(main())
