"""doctor_node: run the doctor's checks at start and periodically, publish them on /diagnostics.

Parameters: :data:`PARAMS` (declared with :func:`vla_ros.nodes.params.declare_parameters`; all
read-only after start), listed in docs/parameters.md (``make params-docs`` writes it from them).

Checks: every check registered in :mod:`vla_ros.doctor.registry` of the chosen groups, the same
set ``vla-ros doctor`` runs. With ``card`` and live sampling, the inference delay is judged from the
policy node's measured latency (``ActionChunk.inference_latency``, else its /diagnostics
``latency_p99_ms``).

Topics: publishes ``diagnostic_msgs/DiagnosticArray`` on ``/diagnostics`` (one status per check,
plus a summary). Service: ``~/run_checks`` (``std_srvs/Trigger``) runs the machine checks now and
answers with the summary (live results come from the last sampling window; a new one starts).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from vla_ros.doctor.diagnostics import (
    ERROR,
    OK,
    WARN,
    DiagEntry,
    check_entry,
    diagnostic_entries,
    node_options,
    static_options,
    trigger_reply,
)
from vla_ros.doctor.live import LiveObservation
from vla_ros.doctor.live_ros import LiveSampler
from vla_ros.doctor.params import PARAMS
from vla_ros.doctor.report import DoctorOptions, run_checks
from vla_ros.doctor.result import CheckResult, DoctorContext, Status
from vla_ros.nodes.params import declare_parameters
from vla_ros.nodes.run import run_node

_LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}


def _status(entry: DiagEntry, hardware_id: str) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=_LEVELS[entry.level],
        name=entry.name,
        message=entry.message,
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v) for k, v in entry.values],
    )


def to_diagnostic_status(r: CheckResult, hardware_id: str) -> DiagnosticStatus:
    """One check as a ``DiagnosticStatus`` (SKIP is level OK with status=SKIP in the values)."""
    return _status(check_entry(r), hardware_id)


def to_diagnostic_array(results: list[CheckResult], stamp: Any, hardware_id: str) -> DiagnosticArray:
    """A summary status (worst level) followed by one status per check."""
    arr = DiagnosticArray(status=[_status(e, hardware_id) for e in diagnostic_entries(results)])
    arr.header.stamp = stamp
    return arr


class DoctorNode(Node):
    """Publishes the doctor's checks on ``/diagnostics``; ``~/run_checks`` runs them on demand."""

    def __init__(
        self,
        node_name: str = "doctor_node",
        *,
        context: Any = None,
        parameter_overrides: list[Parameter] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(node_name, context=context, parameter_overrides=parameter_overrides, **kwargs)
        self.params = declare_parameters(self, PARAMS)
        self.opts = self._options()
        self.hardware_id = socket.gethostname()
        self.pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._lock = threading.Lock()
        self._running = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_live: list[CheckResult] = []
        self.last_results: list[CheckResult] = []
        self.runs = 0
        self.srv = self.create_service(
            Trigger, "~/run_checks", self._on_trigger, callback_group=ReentrantCallbackGroup()
        )
        period = float(self.params["period_s"])
        self._timer = None
        if period > 0:
            self._timer = self.create_timer(
                period, self._start_run, callback_group=MutuallyExclusiveCallbackGroup()
            )
        self._start_run()

    # -- configuration -------------------------------------------------------------------------
    def _options(self) -> DoctorOptions:
        p = self.params
        return node_options(
            expected_topics=p["expected_topics"],
            rate_tolerance=float(p["rate_tolerance"]),
            live_s=float(p["live_s"]),
            card=p["card"],
            workspace=p["workspace"],
            control_rate_hz=float(p["control_rate_hz"]),
            gpu=bool(p["gpu"]),
            groups=p["groups"],
            params=p["params_file"],
            namespace=self.get_namespace(),
        )

    def _static_opts(self) -> DoctorOptions:
        return static_options(self._options())

    # -- runs ----------------------------------------------------------------------------------
    def _start_run(self) -> None:
        with self._lock:
            if self._running or self._stop.is_set():
                return
            self._running = True
        self._thread = threading.Thread(target=self._run_full, name="doctor_run", daemon=True)
        self._thread.start()

    def _sample_live(self) -> LiveObservation | None:
        if self.opts.live_s <= 0 or "live" not in self.opts.groups:
            return None
        extra = ("/joint_states",) if self.opts.card else ()
        sampler = LiveSampler(self, self.opts.topics, extra_topics=extra)
        end = time.monotonic() + self.opts.live_s
        while time.monotonic() < end and not self._stop.is_set():
            sampler.poll()
            self._stop.wait(min(0.25, max(0.0, end - time.monotonic())))
        return sampler.finish()

    def _run_full(self) -> None:
        try:
            obs = self._sample_live()
            results = run_checks(DoctorContext(), self.opts, live_obs=obs)
            if obs is not None:
                self._last_live = [r for r in results if r.group == "live"]
            self._publish(results)
        except Exception as exc:  # never die silently in a thread
            if not self._stop.is_set():  # at shutdown the node's handles go away under us
                self.get_logger().error(f"doctor run failed: {exc!r}")
        finally:
            with self._lock:
                self._running = False

    def _publish(self, results: list[CheckResult]) -> None:
        if self._stop.is_set():
            return
        self.last_results = results
        self.runs += 1
        self.pub.publish(to_diagnostic_array(results, self.get_clock().now().to_msg(), self.hardware_id))
        bad = [r for r in results if r.status is Status.FAIL]
        for r in bad:
            self.get_logger().warning(f"{r.id}: {r.message} -- fix: {r.fix}", throttle_duration_sec=60.0)

    def _on_trigger(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        results = run_checks(DoctorContext(), self._static_opts()) + list(self._last_live)
        self._publish(results)
        response.success, response.message = trigger_reply(results)
        self._start_run()
        return response

    def destroy_node(self) -> None:
        """Stop background runs, then destroy the node."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run vla_ros doctor_node``: spin until Ctrl-C."""
    return run_node(DoctorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
