"""The executor node's logic without ROS: parameters, limit sources, arming policy, live changes.

:class:`ExecutorCore` owns the :class:`~vla_ros.control.controller.ChunkController` and decides
everything the node used to decide inline, so ``executor_node`` only converts messages and
``vla-ros eval`` replays through exactly the same object:

* the limit sources merged in one place (:meth:`ExecutorCore.limits_for`: explicit parameters win
  over the URDF, the URDF over nothing);
* the arming policy (refused without complete limits unless ``allow_unlimited``; refused with a
  joint outside its limits; ``armed_on_start`` ignored then), e-stop latch, disarm;
* live parameter changes: :meth:`ExecutorCore.apply_params` validates the whole new set first
  (spec, read-only, ranges, limits, the arming policy, the current command inside the new range)
  and only then applies it; nothing is rolled back because nothing is applied before it is valid;
* URDF updates (a URDF cannot be refused like a parameter: one that puts an armed robot outside
  its new limits disarms it).

Every method is thread-safe (one lock); a node may call them from any callback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vla_ros.control.chunk import Chunk, ChunkError
from vla_ros.control.controller import ChunkController, Command, ConfigError
from vla_ros.control.rtc import CommittedActions, committed_actions
from vla_ros.control.safety import JointLimits, LimitsError, arming_refusal
from vla_ros.control.urdf import UrdfError, UrdfLimits, parse_urdf_limits
from vla_ros.executor import params as ep
from vla_ros.util.faults import Fault
from vla_ros.util.ns import seconds_to_ns


@dataclass(frozen=True)
class Report:
    """A line for the node's log: ``level`` is ``info``, ``warning`` or ``error``; a ``cause``
    marks a fault to log once per episode (see :class:`~vla_ros.util.faults.FaultLog`)."""

    level: str
    text: str
    cause: str = ""


@dataclass(frozen=True)
class ParamChange:
    """Outcome of :meth:`ExecutorCore.apply_params`: accepted, or rejected with the reason."""

    accepted: bool
    reason: str = ""


@dataclass(frozen=True)
class ChunkReceipt:
    """Outcome of :meth:`ExecutorCore.receive_chunk`: buffered or not, the log lines of adopting
    its joints, and its faults (why it was refused, or its non-fatal faults)."""

    accepted: bool
    reports: tuple[Report, ...]
    faults: tuple[Fault, ...]


@dataclass(frozen=True)
class TickResult:
    """One control tick: the command (None: nothing known to hold), its faults, the armed state,
    and whether ``~/committed_actions`` is due after it (:meth:`ExecutorCore.tick`)."""

    command: Command | None
    faults: tuple[Fault, ...]
    armed: bool
    committed_due: bool = False


class ExecutorCore:
    """Parameters -> controller, limits, arming and live changes (see the module docstring).

    Args:
        values: every executor parameter by name (see :mod:`vla_ros.executor.params`).
        urdf: URDF limits to start from; default: parsed from ``values["robot_description"]``.

    Raises:
        ConfigError: unreadable ``robot_description`` or inconsistent parameters (naming them).
    """

    def __init__(self, values: Mapping[str, Any], urdf: UrdfLimits | Mapping | None = None) -> None:
        self.lock = threading.RLock()
        self.values: dict[str, Any] = dict(values)
        if urdf is None:
            try:
                urdf = ep.urdf_limits(self.values)
            except UrdfError as exc:
                raise ConfigError(f"robot_description: {exc}") from None
        self.urdf = urdf
        self.controller: ChunkController | None = None
        rate = float(self.values["committed_rate_hz"])
        #: ticks between ``~/committed_actions`` (0: never); ``rtc`` adds the tick after a chunk
        self.committed_every = max(1, round(float(self.values["control_rate_hz"]) / rate)) if rate > 0 else 0
        self._committed_due = False  # rtc: a chunk was accepted; what is committed is due next tick
        self._ticks = 0

    # ------------------------------------------------------------------ limits and arming policy
    def limits_for(self, values: Mapping[str, Any] | None = None, urdf: Any = None) -> JointLimits:
        """The one place the limit sources merge: parameters win over the URDF, the URDF over none.

        Raises:
            ConfigError: no joint names yet.
            LimitsError: inconsistent limits (naming the joint and the value).
        """
        if self.controller is None:
            raise ConfigError("no joint names yet (set joint_names or send a chunk)")
        values = self.values if values is None else values
        return ep.joint_limits(
            values, self.controller.config.joint_names, self.urdf if urdf is None else urdf
        )

    def refusal(
        self, limits: JointLimits | None = None, values: Mapping[str, Any] | None = None
    ) -> str | None:
        """Why the robot must not be armed with ``limits`` (default: the active ones), or None."""
        values = self.values if values is None else values
        if limits is None:
            if self.controller is None:
                return None
            limits = self.controller.limits
        return arming_refusal(limits, allow_unlimited=bool(values["allow_unlimited"]))

    def adopt(self, names: Sequence[str]) -> list[Report]:
        """Build the controller for ``names`` (from ``joint_names`` or the first chunk).

        ``armed_on_start`` arms it unless the limits are incomplete (then it starts disarmed and
        the returned error says why). Raises :class:`ConfigError` naming the bad parameter.
        """
        names = tuple(names)
        with self.lock:
            try:
                cfg = ep.controller_config(self.values, names)
                limits = ep.joint_limits(self.values, names, self.urdf)
            except (ConfigError, LimitsError) as exc:
                raise ConfigError(f"executor_node: {exc}") from None
            armed = bool(self.values["armed_on_start"])
            refusal = arming_refusal(limits, allow_unlimited=bool(self.values["allow_unlimited"]))
            reports = [Report("info", f"joints {list(names)}; limits {ep.describe_limits(limits)}")]
            if refusal is not None and armed:
                armed = False
                reports.append(Report("error", f"armed_on_start ignored, starting DISARMED: {refusal}"))
            elif refusal is not None:
                reports.append(
                    Report("warning", f"~/arm will be refused until the limits are complete: {refusal}")
                )
            elif any(limits.missing()):
                position, velocity = limits.missing()
                reports.append(
                    Report(
                        "warning",
                        f"allow_unlimited: true: armable without position limits for {position} and "
                        f"velocity limits for {velocity}; only for simulation/bench, never on a real robot",
                    )
                )
            self.controller = ChunkController(cfg, limits, armed=armed)
        return reports

    @property
    def armed(self) -> bool:
        """Whether commands may go to the robot."""
        return self.controller is not None and self.controller.armed

    def arm(self, t_ns: int | None) -> tuple[bool, str]:
        """Arm (refused without complete limits, with the e-stop held, or a joint outside its
        limits). Returns ``(ok, message)``."""
        with self.lock:
            if self.controller is None:
                return False, "no joint_names yet (no chunk received)"
            refusal = self.refusal()
            if refusal is not None:
                return False, refusal
            return self.controller.arm(t_ns)

    def disarm(self) -> tuple[bool, str]:
        """Disarm. Returns ``(ok, message)``."""
        with self.lock:
            if self.controller is None:
                return False, "no joint_names yet (no chunk received)"
            return self.controller.disarm()

    def set_estop(self, active: bool) -> bool:
        """Feed the e-stop input; returns True when this call newly latched it."""
        with self.lock:
            if self.controller is None:
                return False
            was = self.controller.estop_latched
            self.controller.set_estop(bool(active))
            return bool(active) and not was

    # ------------------------------------------------------------------ live changes
    def apply_params(self, changes: Mapping[str, Any]) -> ParamChange:
        """Validate ``changes`` (name -> value) as a whole, then apply them; nothing partial.

        Unknown names (e.g. ``use_sim_time``) are left to the caller. Rejected: read-only
        parameters, values out of range, inconsistent limits, limits that leave an armed robot
        without complete limits, and limits that would put the armed robot's command or measured
        position outside the new range.
        """
        new = dict(self.values)
        for name, value in changes.items():
            spec = ep.SPEC_BY_NAME.get(name)
            if spec is None:
                continue
            if spec.read_only:
                return ParamChange(False, f"{name} cannot change while running; restart the executor")
            value = list(value) if spec.is_array and value is not None else value
            if (msg := ep.check_value(spec, value)) is not None:
                return ParamChange(False, msg)
            new[name] = value
        with self.lock:
            ctl = self.controller
            if ctl is not None:
                try:
                    limits = self.limits_for(new)
                    conflict = ctl.limits_conflict(limits)
                except (LimitsError, ConfigError) as exc:
                    return ParamChange(False, str(exc))
                refusal = self.refusal(limits, new)
                if ctl.armed and refusal is not None:
                    return ParamChange(
                        False,
                        f"the executor is armed; these limits are incomplete ({refusal}); "
                        "disarm first or give finite limits",
                    )
                if conflict is not None:
                    return ParamChange(
                        False,
                        f"{conflict}; refused while armed: move the joint inside the new range first, "
                        "or disarm",
                    )
                # everything is valid: apply (none of these can fail now)
                ctl.set_speed_scale(new["speed_scale"])
                ctl.set_ensemble_coefficient(new["ensemble_coefficient"])
                ctl.set_blend_steps(new["blend_steps"])
                ctl.set_limits(limits)
            self.values = new
        return ParamChange(True)

    def apply_urdf(self, text: str, source: str) -> list[Report]:
        """A URDF (e.g. from the robot_description topic): its limits replace the previous URDF's.

        Unreadable, or leaving an armed robot without complete limits: ignored (a warning; the
        limits in force stay). Putting the armed robot's command or state outside the new limits:
        applied, and the robot is DISARMED (an error). ``source`` names where it came from.
        """
        try:
            urdf = parse_urdf_limits(text)
        except UrdfError as exc:
            text = f"ignored URDF on {source}: {exc}; publish the expanded URDF (run xacro)"
            return [Report("warning", text, cause="robot_description:urdf")]
        reports = [Report("warning", f"URDF on {source}: {line}") for line in getattr(urdf, "warnings", ())]
        with self.lock:
            ctl = self.controller
            limits = None
            if ctl is not None:
                try:
                    limits = self.limits_for(urdf=urdf)
                except LimitsError as exc:
                    refusal: str | None = str(exc)
                else:
                    refusal = self.refusal(limits) if ctl.armed else None
                if refusal is not None:
                    reports.append(
                        Report(
                            "warning",
                            f"ignored URDF on {source}, the limits in force stay: {refusal}; fix the URDF's "
                            "<limit> tags, or disarm (~/arm false) before publishing it",
                            cause="robot_description:limits",
                        )
                    )
                    return reports
                disarmed = ctl.set_limits(limits, on_conflict="disarm")
                if disarmed is not None:
                    reports.append(Report("error", f"URDF from {source}: {disarmed}"))
            self.urdf = urdf
        applied = f"; limits {ep.describe_limits(limits)}" if limits is not None else ""
        reports.append(
            Report("info", f"URDF from {source}: {len(urdf)} joints with limits {sorted(urdf)}{applied}")
        )
        return reports

    # ------------------------------------------------------------------ data path
    def update_state(
        self,
        stamp_ns: int,
        names: Sequence[str],
        positions: Sequence[float],
        *,
        arrival_clock: Callable[[], int] | None = None,
    ) -> None:
        """Merge a joint state (raises :class:`~vla_ros.control.state.StateError`).

        ``arrival_clock`` (ns; a node passes ``time.monotonic_ns``) judges liveness by arrival
        times, so a stopped ``/clock`` still trips it; it is set once, by the first state.
        """
        with self.lock:
            ctl = self.controller
            if ctl is None:
                return
            if arrival_clock is not None and ctl.state.liveness_clock is None:
                ctl.state.liveness_clock = arrival_clock
            ctl.update_state(stamp_ns, names, positions)

    def add_chunk(self, **chunk: Any) -> tuple[Chunk, list[Fault]]:
        """Buffer a chunk (``ChunkController.add_chunk`` arguments): the stored chunk and its
        non-fatal faults; raises ``ChunkError`` when it is refused."""
        with self.lock:
            if self.controller is None:
                raise ConfigError("no joint names yet: adopt() them before adding chunks")
            return self.controller.add_chunk(**chunk)

    def receive_chunk(self, **chunk: Any) -> ChunkReceipt:
        """A chunk from the topic (:meth:`add_chunk` arguments): the first one adopts its
        ``joint_names`` when ``joint_names`` was not set (:meth:`adopt`). Never raises: a chunk
        without joint names, joints that cannot be adopted, or a refused chunk is a fault in the
        receipt (``accepted`` False), to log once per episode."""
        reports: list[Report] = []
        names = tuple(chunk.get("joint_names") or ())
        with self.lock:
            if self.controller is None:
                if not names:
                    fault = Fault(cause="chunk_joints", message="chunk has no joint_names; ignored")
                    return ChunkReceipt(False, (), (fault,))
                try:
                    reports = self.adopt(names)
                except ConfigError as exc:
                    fault = Fault(cause="config", message=f"cannot adopt chunk joints: {exc}")
                    return ChunkReceipt(False, (), (fault,))
            try:
                _, faults = self.add_chunk(**chunk)
            except ChunkError as exc:
                fault = Fault(cause=exc.cause, message=f"rejected chunk: {exc}")
                return ChunkReceipt(False, tuple(reports), (fault,))
            # rtc: the policy's next inference must see the takeover of this chunk (docs/rtc.md)
            self._committed_due = self.values["mode"] == "rtc"
        return ChunkReceipt(True, tuple(reports), tuple(faults))

    def committed(self, t_ns: int) -> CommittedActions | None:
        """What the executor has committed to command around ``t_ns`` (``~/committed_actions``):
        the commands (:meth:`ChunkController.committed`: sent ones in the past, the chunk mode's
        targets through the safety filter ahead) on the control grid from ``committed_history_s``
        before ``t_ns`` to ``committed_horizon_s`` after it, as far as the buffered chunks cover (see
        :func:`vla_ros.control.rtc.committed_actions`); None before joints or without a plan."""
        with self.lock:
            ctl = self.controller
            if ctl is None:
                return None
            period = ctl.config.period_ns
            history = seconds_to_ns(self.values["committed_history_s"]) // period
            horizon = seconds_to_ns(self.values["committed_horizon_s"]) // period
            return committed_actions(
                ctl.committed_run(), ctl.config.joint_names, int(t_ns), period, history, horizon
            )

    def tick(self, t_ns: int) -> TickResult:
        """One control tick at ``t_ns`` (ns). ``committed_due``: every ``committed_every``-th tick
        and, in ``rtc`` mode, the first tick after an accepted chunk (publish what is committed
        after the command is out)."""
        with self.lock:
            if self.controller is None:
                return TickResult(None, (), False)
            cmd = self.controller.tick(t_ns)
            self._ticks += 1
            every = self.committed_every
            due = bool(every) and (self._committed_due or self._ticks % every == 0)
            if due:
                self._committed_due = False
            return TickResult(cmd, self.controller.last_faults, self.controller.armed, due)
