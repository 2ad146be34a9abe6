"""executor_node: turns ActionChunks into joint commands at a fixed control rate, safely.

A thin rclpy adapter around :class:`vla_ros.control.controller.ChunkController`: it declares the
parameters (see :mod:`vla_ros.executor.params` and config/executor.yaml), converts messages
to integer-nanosecond calls, runs the controller on a timer and publishes the command.

Topics (all remappable): subscribes ``joint_states`` (sensor_msgs/JointState),
``vla/action_chunk`` (vla_ros/ActionChunk), ``vla/estop`` (std_msgs/Bool), ``robot_description``
(std_msgs/String, reliable + transient local as robot_state_publisher latches it; each URDF
received replaces the URDF limits, explicit limit parameters still win); publishes one of
``vla/joint_command`` (JointState), ``commands`` (Float64MultiArray) or ``joint_trajectory``
(JointTrajectory) per ``output_type``, ``~/command_preview`` (JointState), ``/diagnostics`` and
``~/committed_actions`` (vla_ros/ActionChunk, reliable, depth 1): what the executor has committed
to command, for real-time chunking and horizon-triggered inference in policy_node. Its
``header.stamp`` is the time of its first action, ``dt`` the control period, ``actions`` the
chunk mode's absolute targets on the control grid from ``committed_history_s`` before the tick
to ``committed_horizon_s`` after it (as far as the buffered chunks reach; the last action is the
end of what the executor can still execute), ``policy_id`` ``executor:<node>``. Published every
``1 / committed_rate_hz`` (and in ``rtc`` mode at the first tick after each accepted chunk), while
subscribed, after the tick's command (it costs ~1 ms for ``latest``, ~6 ms for
``temporal_ensemble`` with 50 live chunks of 6 joints, 1.3 s at 100 Hz, on a loaded 2-core VM).
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
from array import array
from collections import deque
from typing import Any

import numpy as np
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

from vla_ros.control.chunk import ChunkError
from vla_ros.control.controller import ChunkController, Command, ConfigError
from vla_ros.control.state import StateError
from vla_ros.executor import params as ep
from vla_ros.executor.core import ExecutorCore, Report
from vla_ros.executor.health import executor_health
from vla_ros.msg import ActionChunk
from vla_ros.nodes.params import declare_parameters
from vla_ros.nodes.run import destroy_half_built, run_node
from vla_ros.util.faults import Fault, FaultLog
from vla_ros.util.ns import msg_to_ns, ns_to_stamp, seconds_to_ns
from vla_ros.util.ticker import Ticker

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
        # set before anything can raise: rclpy destroys a half-built node at shutdown
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        try:
            self._build()
        except BaseException:
            destroy_half_built(self)
            raise

    def _build(self) -> None:
        try:
            values: dict[str, Any] = declare_parameters(self, ep.SPECS)
        except (ValueError, rclpy.exceptions.InvalidParameterValueException) as exc:
            raise ConfigError(f"{self.get_name()} parameters invalid: {exc}") from None
        self.core = ExecutorCore(values)
        for line in getattr(self.core.urdf, "warnings", ()):
            self.get_logger().warning(f"robot_description: {line}")
        self.faults = FaultLog(
            repeat_interval_ns=seconds_to_ns(self.values["log_repeat_s"]),
            recur_after_ns=FAULT_RECUR_AFTER_NS,
        )
        names = tuple(self.values["joint_names"] or ())
        if names:
            self._log(self.core.adopt(names))
        self.dry_run = bool(self.values["dry_run"])
        self.tick_times_ns: deque[int] = deque(maxlen=100_000)  # monotonic, for jitter stats
        self.tick_durations_ns: deque[int] = deque(maxlen=100_000)
        self.last_command: Command | None = None
        self.published = 0
        self.committed_published = 0
        self._committed_due = False  # a chunk was accepted: publish what is committed next tick
        self._ticks = 0
        rate = float(self.values["committed_rate_hz"])
        self._committed_every = max(1, round(float(self.values["control_rate_hz"]) / rate)) if rate > 0 else 0

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
        self._committed_pub = self.create_publisher(
            ActionChunk, "~/committed_actions", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        )
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        period = 1.0 / float(self.values["control_rate_hz"])
        self._timer = None
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
    @property
    def values(self) -> dict[str, Any]:
        """The parameter values in force (the core's)."""
        return self.core.values

    @property
    def controller(self) -> ChunkController | None:
        """The chunk controller (None until the joint names are known)."""
        return self.core.controller

    @property
    def armed(self) -> bool:
        """Whether commands go to the command topic."""
        return self.core.armed

    def _log(self, reports: list[Report]) -> None:
        for r in reports:  # one call site per severity (rclpy fixes a call site's severity)
            if r.level == "error":
                self.get_logger().error(r.text)
            elif r.level == "warning":
                self.get_logger().warning(r.text)
            else:
                self.get_logger().info(r.text)

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        result = self.core.apply_params({p.name: p.value for p in params})
        if not result.accepted:
            return SetParametersResult(successful=False, reason=result.reason)
        changed = ", ".join(f"{p.name}={p.value}" for p in params)
        self.get_logger().info(f"parameters changed: {changed}")
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ inputs
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
            with self.core.lock:
                if ctl.state.liveness_clock is None:  # arrival times: a stopped /clock still trips it
                    ctl.state.liveness_clock = time.monotonic_ns
                self.core.update_state(msg_to_ns(msg.header.stamp), msg.name, msg.position)
        except StateError as exc:
            self._fault(Fault(cause=exc.cause, message=str(exc)))

    def _on_chunk(self, msg: ActionChunk) -> None:
        names = tuple(msg.joint_names)
        if self.controller is None:
            if not names:
                self._fault(Fault(cause="chunk_joints", message="chunk has no joint_names; ignored"))
                return
            with self.core.lock:
                if self.controller is None:
                    try:
                        self._log(self.core.adopt(names))
                    except ConfigError as exc:
                        self._fault(Fault(cause="config", message=f"cannot adopt chunk joints: {exc}"))
                        return
        try:
            _, faults = self.core.add_chunk(
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
        # rtc: the policy's next inference must see the takeover of this chunk (see the docstring)
        self._committed_due = self.values["mode"] == "rtc"
        for f in faults:
            self._fault(f)

    def _on_robot_description(self, msg: String) -> None:
        """A URDF from the topic (see :meth:`ExecutorCore.apply_urdf`); an ignored one is one
        warning per episode, the rest is logged as the core reports it."""
        reports = self.core.apply_urdf(msg.data, self.values["robot_description_topic"])
        for r in reports:
            if r.cause:
                self._fault(Fault(cause=r.cause, message=r.text))
            else:
                self._log([r])

    def _on_estop(self, msg: Bool) -> None:
        if self.core.set_estop(bool(msg.data)):
            self._fault(Fault(cause="estop", message="e-stop received: holding and disarmed until re-armed"))

    def _on_arm(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if request.data:
            ok, message = self.core.arm(self.get_clock().now().nanoseconds)
        else:
            ok, message = self.core.disarm()
        response.success, response.message = ok, message
        # one call site per severity (rclpy refuses to change a call site's severity)
        if not ok:
            self.get_logger().error(f"~/arm({request.data}): {message}")
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
        ticker = Ticker(period, first_ns=time.monotonic_ns() + period)
        while not self._stop.is_set():
            delay = ticker.delay_ns(time.monotonic_ns())
            if delay > 0:
                time.sleep(delay * 1e-9)  # plain sleep: wakes more precisely than Event.wait
                if self._stop.is_set():
                    break
            try:
                self._on_tick()
            except Exception as exc:  # never let the control thread die silently
                self._fault(Fault(cause="tick_exception", message=f"control tick raised {exc!r}"))
            self.overruns += ticker.advance(time.monotonic_ns())  # skips missed ticks, counts them

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
        if self.controller is None:
            return
        res = self.core.tick(self.get_clock().now().nanoseconds)
        for f in res.faults:  # for a None command too: why nothing is commanded
            self._fault(f)
        self.faults.settle({f.cause for f in res.faults}, time.monotonic_ns())
        cmd = res.command
        if cmd is not None:
            self.last_command = cmd
            if self.dry_run or self.values["publish_preview"]:
                self._preview_pub.publish(self._joint_state(cmd))
            if res.armed and not self.dry_run:
                self._out_pub.publish(self._output(cmd))
                self.published += 1
        # after the command is out: computing what is committed must not delay it
        self._ticks += 1
        every = self._committed_every
        if every and (self._committed_due or self._ticks % every == 0):
            self._committed_due = False
            self._publish_committed(None if cmd is None else cmd.t_ns)

    def _publish_committed(self, t_ns: int | None) -> None:
        """``~/committed_actions`` at tick time ``t_ns`` (nothing without a plan or a subscriber)."""
        if t_ns is None or self._committed_pub.get_subscription_count() == 0:
            return
        committed = self.core.committed(t_ns)
        if committed is None:
            return
        msg = ActionChunk()
        msg.header.stamp.sec, msg.header.stamp.nanosec = ns_to_stamp(committed.start_ns)
        msg.policy_id = f"executor:{self.get_fully_qualified_name()}"
        msg.seq = self.committed_published
        msg.joint_names = list(committed.joint_names)
        msg.dt.sec, msg.dt.nanosec = ns_to_stamp(committed.dt_ns)
        msg.horizon, msg.action_dim = committed.actions.shape
        msg.actions = array("f", np.ascontiguousarray(committed.actions, dtype=np.float32).tobytes())
        msg.action_mode = "absolute"
        self._committed_pub.publish(msg)
        self.committed_published += 1

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
        health = executor_health(
            self.core,
            self.last_command,
            dry_run=self.dry_run,
            published=self.published,
            faults=self.faults.snapshot(),
        )
        status = DiagnosticStatus(name=f"{self.get_name()}: executor", hardware_id="vla_ros")
        status.level = bytes([health.level])
        status.message = health.message
        status.values = [KeyValue(key=k, value=v) for k, v in health.values.items()]
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
