"""executor_node: turns ActionChunks into joint commands at a fixed control rate, safely.

The rclpy adapter around :class:`vla_ros.executor.core.ExecutorCore` (arming policy, limit
sources, live parameter changes; read there) and its
:class:`~vla_ros.control.controller.ChunkController`: it declares the parameters
(:mod:`vla_ros.executor.params`, docs/parameters.md), converts messages
(:mod:`vla_ros.nodes.messages`), runs the tick on a control thread or a timer and publishes.

Topics (all remappable): subscribes ``joint_states`` (sensor_msgs/JointState),
``vla/action_chunk`` (vla_ros/ActionChunk), ``vla/estop`` (std_msgs/Bool), ``robot_description``
(std_msgs/String, reliable + transient local as robot_state_publisher latches it; each URDF
received replaces the URDF limits, explicit limit parameters still win); publishes one of
``vla/joint_command`` (JointState), ``commands`` (Float64MultiArray) or ``joint_trajectory``
(JointTrajectory) per ``output_type``, ``~/command_preview`` (JointState), ``/diagnostics`` and
``~/committed_actions`` (vla_ros/ActionChunk, reliable, depth 1; what the executor has committed
to command, for real-time chunking: docs/rtc.md), every ``1 / committed_rate_hz`` and in ``rtc``
mode at the first tick after each accepted chunk, while subscribed, after the tick's command.
Service ``~/arm`` (std_srvs/SetBool): true arms (clears a latched e-stop once released), false
disarms.

The node starts DISARMED unless ``armed_on_start`` is true; disarmed, it computes but publishes
commands only to the preview topic (if enabled); armed, it publishes every tick (holds
included). Arming needs finite limits for every joint (parameters or robot_description) unless
``allow_unlimited`` (simulation and benchmarks only): see :class:`ExecutorCore` and
docs/robots.md.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import Executor, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import SetBool

from vla_ros.control.controller import ChunkController, Command, ConfigError
from vla_ros.control.state import StateError
from vla_ros.executor import params as ep
from vla_ros.executor.core import ExecutorCore, Report
from vla_ros.executor.health import executor_health, fault_log, fault_report
from vla_ros.msg import ActionChunk
from vla_ros.nodes import messages
from vla_ros.nodes.params import declare_parameters
from vla_ros.nodes.run import destroy_half_built, fifo_priority, log_at, run_node
from vla_ros.util.faults import Fault
from vla_ros.util.ns import msg_to_ns
from vla_ros.util.ticker import Ticker, run_periodic


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
        self._ticker: Ticker | None = None
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
        self.faults = fault_log(self.values)
        names = tuple(self.values["joint_names"] or ())
        if names:
            self._log(self.core.adopt(names))
        self.dry_run = bool(self.values["dry_run"])
        self.tick_times_ns: deque[int] = deque(maxlen=100_000)  # monotonic, for jitter stats
        self.tick_durations_ns: deque[int] = deque(maxlen=100_000)
        self.last_command: Command | None = None
        self.published = 0
        self.committed_published = 0
        self._create_interfaces()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f"executor ready: {self.values['control_rate_hz']:g} Hz, mode "
            f"{self.values['mode']}, output {self.values['output_type']}, "
            f"{'DRY RUN, ' if self.dry_run else ''}"
            f"{'armed' if self.armed else 'DISARMED (call ~/arm to enable)'}"
        )

    def _create_interfaces(self) -> None:
        """Subscriptions, the ~/arm service, publishers, the control tick and the diagnostics timer."""
        cb_io = MutuallyExclusiveCallbackGroup()
        cb_timer = MutuallyExclusiveCallbackGroup()
        best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.create_subscription(
            JointState, "joint_states", self._on_joint_state, best_effort, callback_group=cb_io
        )
        self.create_subscription(ActionChunk, "vla/action_chunk", self._on_chunk, 10, callback_group=cb_io)
        self.create_subscription(Bool, "vla/estop", self._on_estop, 10, callback_group=cb_io)
        self.create_service(SetBool, "~/arm", self._on_arm, callback_group=cb_io)
        if topic := self.values["robot_description_topic"]:
            latched = QoSProfile(
                depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
            )
            self.create_subscription(String, topic, self._on_robot_description, latched, callback_group=cb_io)
        out_type, out_topic = messages.OUTPUT_TOPICS[self.values["output_type"]]
        self._out_pub = self.create_publisher(out_type, out_topic, 10)
        self._preview_pub = self.create_publisher(JointState, "~/command_preview", 10)
        self._committed_pub = self.create_publisher(
            ActionChunk, "~/committed_actions", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        )
        self._diag_pub = self.create_publisher(messages.DiagnosticArray, "/diagnostics", 10)
        self._timer = None
        sim_time = bool(self.get_parameter("use_sim_time").value)
        if self.values["timer"] == "thread" and not sim_time:
            self._start_control_thread()
        else:
            if self.values["timer"] == "thread":
                self.get_logger().info("use_sim_time: control runs on a ROS timer, not a thread")
            period = 1.0 / float(self.values["control_rate_hz"])
            self._timer = self.create_timer(period, self._on_tick, callback_group=cb_timer)
        # /diagnostics on a steady clock: a /clock that stops (use_sim_time) must not silence it
        self._diag_timer = self.create_timer(
            float(self.values["diagnostics_period_s"]),
            self._publish_diagnostics,
            callback_group=cb_io,
            clock=Clock(clock_type=ClockType.STEADY_TIME),
        )

    # ------------------------------------------------------------------ views of the core
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

    @property
    def overruns(self) -> int:
        """Control-thread deadlines skipped because a tick ended after them (util.ticker's rule)."""
        return 0 if self._ticker is None else self._ticker.missed

    # ------------------------------------------------------------------ logging
    def _log(self, reports: list[Report] | tuple[Report, ...]) -> None:
        for r in reports:
            log_at(self.get_logger(), r.level, r.text)

    def _fault(self, fault: Fault) -> None:
        report = fault_report(self.faults, fault, time.monotonic_ns())
        if report is not None:
            self._log([report])

    # ------------------------------------------------------------------ callbacks
    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        result = self.core.apply_params({p.name: p.value for p in params})
        if not result.accepted:
            return SetParametersResult(successful=False, reason=result.reason)
        changed = ", ".join(f"{p.name}={p.value}" for p in params)
        self.get_logger().info(f"parameters changed: {changed}")
        return SetParametersResult(successful=True)

    def _on_joint_state(self, msg: JointState) -> None:
        """A rejected joint state (duplicate names, ...) is logged once and counted
        (``fault.<cause>`` on /diagnostics). Liveness is judged on the steady clock."""
        try:
            self.core.update_state(
                msg_to_ns(msg.header.stamp), msg.name, msg.position, arrival_clock=time.monotonic_ns
            )
        except StateError as exc:
            self._fault(Fault(cause=exc.cause, message=str(exc)))

    def _on_chunk(self, msg: ActionChunk) -> None:
        receipt = self.core.receive_chunk(**messages.chunk_arguments(msg))
        self._log(receipt.reports)
        for f in receipt.faults:
            self._fault(f)

    def _on_robot_description(self, msg: String) -> None:
        """A URDF from the topic (see :meth:`ExecutorCore.apply_urdf`); an ignored one is one
        warning per episode, the rest is logged as the core reports it."""
        for r in self.core.apply_urdf(msg.data, self.values["robot_description_topic"]):
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
        period = round(1e9 / float(self.values["control_rate_hz"]))
        self._ticker = Ticker(period, first_ns=time.monotonic_ns() + period)
        self._thread = threading.Thread(
            target=self._control_loop, name=f"{self.get_name()}-control", daemon=True
        )
        self._thread.start()

    def _control_loop(self) -> None:
        """Tick on absolute deadlines of the steady clock; overruns skip ticks, never burst."""
        prio = int(self.values["thread_priority"])
        if (exc := fifo_priority(prio)) is not None:
            message = (
                f"SCHED_FIFO priority {prio} not granted ({exc}); "
                "running at normal priority (see docs: rtprio limits)"
            )
            self._fault(Fault(cause="rt_priority", message=message))
        assert self._ticker is not None
        run_periodic(self._ticker, self._on_tick, self._stop, on_error=self._tick_raised)

    def _tick_raised(self, exc: Exception) -> None:
        # never let the control thread die silently
        self._fault(Fault(cause="tick_exception", message=f"control tick raised {exc!r}"))

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
        res = self.core.tick(self.get_clock().now().nanoseconds)
        for f in res.faults:  # for a None command too: why nothing is commanded
            self._fault(f)
        self.faults.settle({f.cause for f in res.faults}, time.monotonic_ns())
        cmd = res.command
        if cmd is not None:
            self.last_command = cmd
            if self.dry_run or self.values["publish_preview"]:
                self._preview_pub.publish(messages.joint_state(cmd))
            if res.armed and not self.dry_run:
                out = messages.command_message(cmd, self.values["output_type"], ctl.config.period_ns)
                self._out_pub.publish(out)
                self.published += 1
        if res.committed_due:  # after the command is out: it must not delay the command
            self._publish_committed(None if cmd is None else cmd.t_ns)

    def _publish_committed(self, t_ns: int | None) -> None:
        """``~/committed_actions`` at tick time ``t_ns`` (nothing without a plan or a subscriber)."""
        if t_ns is None or self._committed_pub.get_subscription_count() == 0:
            return
        committed = self.core.committed(t_ns)
        if committed is None:
            return
        policy_id = f"executor:{self.get_fully_qualified_name()}"
        self._committed_pub.publish(messages.committed_chunk(committed, policy_id, self.committed_published))
        self.committed_published += 1

    def _publish_diagnostics(self) -> None:
        health = executor_health(
            self.core,
            self.last_command,
            dry_run=self.dry_run,
            published=self.published,
            faults=self.faults.snapshot(),
        )
        name = f"{self.get_name()}: executor"
        status = messages.diagnostic_status(
            name, health.level, health.message, "vla_ros", health.values.items()
        )
        self._diag_pub.publish(messages.diagnostic_array(status, self.get_clock().now().nanoseconds))


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
        fifo_priority(prio - 1)
    executor.spin()


def main(args: list[str] | None = None) -> int:
    """Run the executor node until Ctrl-C (control thread + one executor thread)."""
    return run_node(ExecutorNode, args, spin=lambda node: spin(node, make_executor(node)))


if __name__ == "__main__":
    raise SystemExit(main())
