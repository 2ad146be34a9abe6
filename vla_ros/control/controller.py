"""The executor's whole tick as one pure object: buffer -> combine -> interpolate -> safety.

:class:`ChunkController` is driven with integer nanosecond times only (no ROS, no wall clock), so
unit tests and offline rosbag evaluation run exactly the code the executor node runs::

    ctl = ChunkController(ControllerConfig(joint_names=("j1", "j2"), period_ns=5_000_000), limits)
    ctl.update_state(stamp_ns, names, positions)
    ctl.add_chunk(stamp_ns=..., dt_ns=..., joint_names=..., actions=...)
    cmd = ctl.tick(t_ns)          # Command or None (nothing known to hold yet)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vla_ros.contract.errors import VlaRosError
from vla_ros.contract.io_spec import ACTION_MODES
from vla_ros.control.buffer import ChunkBuffer
from vla_ros.control.chunk import (
    Chunk,
    ChunkError,
    make_chunk,
    reorder,
    sample_stack,
)
from vla_ros.control.commanded import CommandHistory, filtered_plan
from vla_ros.control.ensemble import MODES, blend_weight, temporal_ensemble
from vla_ros.control.rtc import Takeover, bridged_sample, handover_index, takeover
from vla_ros.control.safety import (
    JointLimits,
    LimitsError,
    SafetyFilter,
    check_speed_scale,
    describe_outside,
    outside_limits,
)
from vla_ros.control.state import JointStateTracker
from vla_ros.util.faults import Fault

#: chunks starting further than this ahead of the last tick are rejected (clock mismatch)
DEFAULT_MAX_FUTURE_NS = 10_000_000_000
#: the largest action spacing accepted by default (policies run at 1-100 Hz: dt 0.01-1 s)
DEFAULT_MAX_CHUNK_DT_NS = 1_000_000_000
#: the longest chunk (``(H - 1) * dt``) accepted by default; ACT 100 x 20 ms = 2 s, Diffusion
#: Policy 16 x 0.1 s = 1.6 s, pi0 50 x 20 ms = 1 s
DEFAULT_MAX_CHUNK_SPAN_NS = 10_000_000_000
#: ``max_chunks: 0`` (auto) never holds more than this many chunks
AUTO_MAX_CHUNKS_CAP = 4096


class ConfigError(VlaRosError, ValueError):
    """Invalid controller configuration."""


@dataclass(frozen=True)
class ControllerConfig:
    """Executor settings (the node's parameters, in nanoseconds).

    Attributes:
        joint_names: controlled joints, in output order.
        period_ns: control period.
        mode: ``temporal_ensemble`` | ``latest`` | ``blend`` | ``rtc`` (real-time chunking: a new
            chunk takes over at the end of what was committed, :mod:`vla_ros.control.rtc`).
        ensemble_coefficient: ACT's ``m`` in ``exp(-m*i)``; >= 0.
        blend_steps: ticks of cross-fade at a chunk switch in ``blend`` mode, and in ``rtc``
            when a new chunk does not continue what was committed; >= 0.
        rtc_tolerance: ``rtc``: how far (joint units, max over joints) a new chunk's action may
            be from what the executor planned for its time and still continue it; >= 0.
        rtc_handover_steps: ``rtc``: chunk action points the velocity-continuous hand-over from
            the committed actions spans (its end: the ``n``-th action point after the
            takeover); >= 1. 1 keeps a stream of agreeing chunks exact when the chunk step is
            the control period; 2 gave smaller seams in docs/latency.md (300 ms: 0.0106 vs
            0.0138 rad) but bends agreeing chunks' paths between action points.
        time_offset_ns: added to every chunk stamp (action 0 is due at stamp + offset).
        max_chunk_age_ns: a chunk is used only this long after its start (0 = whole horizon).
        max_chunks: buffer capacity (flood protection); 0 = auto: as many as overlap when one
            chunk arrives per control period (``ceil(span / period) + 1``, see
            :func:`chunks_needed`), at most :data:`AUTO_MAX_CHUNKS_CAP`.
        max_chunk_dt_ns: chunks with a larger action spacing are rejected.
        max_chunk_span_ns: chunks covering longer than this (``(H - 1) * dt``) are rejected.
        tracking_error_timeout_ns: a tracking error (the robot further than ``max_jump`` from
            every allowed command) lasting this long while armed disarms; shorter ones (an
            outlier sample) only hold the previous command.
        state_timeout_ns: joint state older than this holds the robot (0 = never stale).
        delta_state_tolerance_ns: how far a state stamp may be from a delta chunk's stamp.
        max_future_ns: chunks starting further ahead of the last tick are rejected.
        trajectory_points: future points to add to each command (for JointTrajectory output).
        trajectory_dt_ns: spacing of those points (0 = the control period).
        speed_scale: in (0, 1], scales the velocity (and squared, acceleration) limits.
    """

    joint_names: tuple[str, ...]
    period_ns: int
    mode: str = "temporal_ensemble"
    ensemble_coefficient: float = 0.01
    blend_steps: int = 5
    rtc_tolerance: float = 0.01
    rtc_handover_steps: int = 1
    time_offset_ns: int = 0
    max_chunk_age_ns: int = 0
    max_chunks: int = 0
    max_chunk_dt_ns: int = DEFAULT_MAX_CHUNK_DT_NS
    max_chunk_span_ns: int = DEFAULT_MAX_CHUNK_SPAN_NS
    tracking_error_timeout_ns: int = 200_000_000
    state_timeout_ns: int = 500_000_000
    delta_state_tolerance_ns: int = 50_000_000
    max_future_ns: int = DEFAULT_MAX_FUTURE_NS
    trajectory_points: int = 0
    trajectory_dt_ns: int = 0
    speed_scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        if not self.joint_names:
            raise ConfigError("joint_names is empty; list the joints the executor commands")
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ConfigError(f"joint_names has duplicates: {list(self.joint_names)}")
        if self.period_ns <= 0:
            raise ConfigError(f"period_ns must be > 0, got {self.period_ns}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not self.ensemble_coefficient >= 0:
            raise ConfigError(f"ensemble_coefficient must be >= 0, got {self.ensemble_coefficient}")
        if not 0 <= self.rtc_tolerance < float("inf"):
            raise ConfigError(f"rtc_tolerance must be finite and >= 0, got {self.rtc_tolerance}")
        if self.rtc_handover_steps < 1:
            raise ConfigError(f"rtc_handover_steps must be >= 1 chunk step, got {self.rtc_handover_steps}")
        for name in (
            "blend_steps",
            "max_chunk_age_ns",
            "state_timeout_ns",
            "trajectory_points",
            "trajectory_dt_ns",
            "delta_state_tolerance_ns",
            "tracking_error_timeout_ns",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_chunks < 0:
            raise ConfigError(f"max_chunks must be >= 0 (0 = auto), got {self.max_chunks}")
        for name in ("max_chunk_dt_ns", "max_chunk_span_ns"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        check_speed_scale(self.speed_scale)


@dataclass(frozen=True)
class Command:
    """One tick's output.

    Attributes:
        t_ns: the tick time.
        joint_names: output joint order.
        positions: commanded positions.
        velocities: commanded velocities (finite difference of the filtered commands).
        holding: True when this is a hold (no live chunk, e-stop, bad input, ...).
        faults: why it holds or what was limited this tick.
        n_live: number of chunks that contributed.
        trajectory: future ``(time_from_t_ns, positions)`` points after this one, already
            safety-filtered (empty unless ``trajectory_points`` > 0 and not holding).
    """

    t_ns: int
    joint_names: tuple[str, ...]
    positions: np.ndarray
    velocities: np.ndarray
    holding: bool
    faults: tuple[Fault, ...] = ()
    n_live: int = 0
    trajectory: tuple[tuple[int, np.ndarray], ...] = field(default=())


class ChunkController:
    """Chunk buffer, mode (ensemble/latest/blend), interpolation and safety filter in one object.

    It starts disarmed unless ``armed=True``; being disarmed changes nothing in the computation
    (the node decides whether to publish), but arming resets the filter to the measured state.
    """

    def __init__(self, config: ControllerConfig, limits: JointLimits, armed: bool = False) -> None:
        if tuple(limits.names) != config.joint_names:
            raise ConfigError(
                f"limits are for joints {list(limits.names)} but the controller commands "
                f"{list(config.joint_names)}; build JointLimits with the same joint_names"
            )
        self.config = config
        self.buffer = ChunkBuffer(config.max_chunks or AUTO_MAX_CHUNKS_CAP, config.max_chunk_age_ns)
        self.state = JointStateTracker(config.joint_names, config.state_timeout_ns)
        self.filter = SafetyFilter(limits, config.period_ns, config.speed_scale)
        self.armed = bool(armed)
        self.estop_latched = False
        self.estop_input = False
        self.last_tick_ns: int | None = None
        #: the faults of the latest tick (also when it returned None: why nothing is commanded)
        self.last_faults: tuple[Fault, ...] = ()
        self._blend_current: int | None = None
        self._blend_from: int | None = None
        self._blend_step = 0
        self._tracking_since_ns: int | None = None
        #: rtc: takeover of each buffered chunk by uid (chunks without one take over at once)
        self._takeovers: dict[int, Takeover] = {}
        #: chunks refused because all their actions were already in the past (never replayed)
        self.expired_chunks = 0
        #: rtc: chunks whose prefix did not continue what was committed (cross-faded instead)
        self.rtc_mismatches = 0
        #: rtc: the commands sent (what :meth:`committed` reports for past times), 2 s of ticks
        self._sent = CommandHistory(max(1, (2 * 10**9) // config.period_ns))

    # ------------------------------------------------------------------ inputs
    @property
    def limits(self) -> JointLimits:
        """The active joint limits."""
        return self.filter.limits

    def set_limits(self, limits: JointLimits, *, on_conflict: str = "refuse") -> str | None:
        """Replace the limits; returns a message when the change disarmed the robot, else None.

        Disarmed, the limits are always accepted (a previous command outside them is forgotten:
        the filter restarts from the measured state on arming). Armed, a change that would put
        the current command or the measured position outside the new range either raises
        (``on_conflict="refuse"``: a live parameter change) or disarms (``"disarm"``: a URDF
        arriving late, which cannot be refused). Nothing outside the limits is ever commanded.

        Raises:
            ConfigError: other joints than the controller's.
            LimitsError: inconsistent limits, or a refused conflict (naming the joint, the value
                and the new range).
        """
        if on_conflict not in ("refuse", "disarm"):
            raise ConfigError(f"on_conflict must be 'refuse' or 'disarm', got {on_conflict!r}")
        problem = self.limits_conflict(limits)
        if problem is None:
            if self.filter.last_command is not None and outside_limits(limits, self.filter.last_command):
                self.filter.reset(None)  # disarmed: restart from the measured state on arming
            self.filter.set_limits(limits)
            return None
        if on_conflict == "refuse":
            raise LimitsError(
                f"{problem}; refused while armed: move the joint inside the new range first, or disarm"
            )
        self.armed = False
        self.filter.reset(None)
        self.filter.set_limits(limits)
        return f"{problem}; DISARMED (nothing outside the limits is commanded); re-arm inside the limits"

    def limits_conflict(self, limits: JointLimits) -> str | None:
        """Why ``limits`` cannot replace the active ones while armed, or None (checks only).

        Armed, the current command and the measured position must be inside the new range.

        Raises:
            ConfigError: other joints than the controller's.
            LimitsError: inconsistent limits.
        """
        if tuple(limits.names) != self.config.joint_names:
            raise ConfigError(f"limits joints {list(limits.names)} != {list(self.config.joint_names)}")
        limits.validate()
        if not self.armed:
            return None
        cmd = self.filter.last_command
        measured = None if self.last_tick_ns is None else self.state.current(self.last_tick_ns)
        if cmd is not None and (out := outside_limits(limits, cmd)):
            return describe_outside("the new limits would put the current command", out)
        if measured is not None and (out := outside_limits(limits, measured)):
            return describe_outside("the new limits would put the measured position", out)
        return None

    def set_speed_scale(self, value: float) -> None:
        """Change the speed scale (validated, in (0, 1])."""
        self.filter.speed_scale = check_speed_scale(value)

    def set_ensemble_coefficient(self, value: float) -> None:
        """Change ACT's ``m`` (>= 0)."""
        if not float(value) >= 0:
            raise ConfigError(f"ensemble_coefficient must be >= 0, got {value}")
        self.config = _replace(self.config, ensemble_coefficient=float(value))

    def set_blend_steps(self, value: int) -> None:
        """Change the cross-fade length (>= 0)."""
        if int(value) < 0:
            raise ConfigError(f"blend_steps must be >= 0, got {value}")
        self.config = _replace(self.config, blend_steps=int(value))

    def update_state(self, stamp_ns: int, names: Sequence[str], positions: Sequence[float]) -> None:
        """Merge a joint state message (raises :class:`~vla_ros.control.state.StateError`)."""
        self.state.update(stamp_ns, names, positions)

    def add_chunk(
        self,
        *,
        stamp_ns: int,
        dt_ns: int,
        joint_names: Sequence[str],
        actions: Sequence[float] | np.ndarray,
        action_mode: str = "absolute",
        horizon: int | None = None,
        action_dim: int | None = None,
        policy_id: str = "",
        seq: int = 0,
    ) -> tuple[Chunk, list[Fault]]:
        """Validate and buffer one chunk; returns (the stored chunk, non-fatal faults).

        Raises :class:`ChunkError` (with a ``cause``) when the chunk is refused: malformed,
        non-finite, other joints, unknown action mode, delta without a state at its stamp,
        entirely in the past, or implausibly far in the future.
        """
        if action_mode not in ACTION_MODES:
            raise ChunkError(
                f"chunk action_mode {action_mode!r} unknown; use one of {ACTION_MODES}",
                cause="chunk_mode",
            )
        chunk = make_chunk(
            stamp_ns=stamp_ns,
            dt_ns=dt_ns,
            joint_names=joint_names,
            actions=actions,
            horizon=horizon,
            action_dim=action_dim,
            time_offset_ns=self.config.time_offset_ns,
            policy_id=policy_id,
            seq=seq,
        )
        if chunk.dt_ns > self.config.max_chunk_dt_ns:
            raise ChunkError(
                f"chunk seq {seq} from {policy_id or '?'} has dt {chunk.dt_ns / 1e9:g} s, more than "
                f"max_chunk_dt {self.config.max_chunk_dt_ns / 1e9:g} s; rejected (check the card's dt "
                "and the units of the chunk's dt, or raise max_chunk_dt_s)",
                cause="chunk_span",
            )
        if chunk.span_ns > self.config.max_chunk_span_ns:
            raise ChunkError(
                f"chunk seq {seq} from {policy_id or '?'} covers {chunk.span_ns / 1e9:g} s (horizon "
                f"{chunk.horizon} x dt {chunk.dt_ns / 1e9:g} s), more than max_chunk_span "
                f"{self.config.max_chunk_span_ns / 1e9:g} s; rejected (check the card's horizon and dt, "
                "or raise max_chunk_span_s)",
                cause="chunk_span",
            )
        chunk = reorder(chunk, self.config.joint_names)
        if action_mode == "delta":
            base = self.state.at(chunk.stamp_ns, self.config.delta_state_tolerance_ns)
            if base is None:
                raise ChunkError(
                    f"delta chunk stamped {chunk.stamp_ns} ns but no complete joint state within "
                    f"{self.config.delta_state_tolerance_ns} ns of it; chunk rejected",
                    cause="chunk_delta_no_state",
                )
            arr = chunk.actions + base[None, :]
            if not np.all(np.isfinite(arr)):
                raise ChunkError("delta chunk + state is non-finite; rejected", cause="chunk_nonfinite")
            arr.setflags(write=False)
            chunk = _replace(chunk, actions=arr)
        if self.last_tick_ns is not None:
            # expired: it covers no time after the last tick (every action already in the past);
            # refused and counted, never replayed from its first action
            if chunk.end_ns <= self.last_tick_ns + 1:
                self.expired_chunks += 1
                raise ChunkError(
                    f"chunk seq {seq} from {policy_id or '?'} has all its actions in the past (its "
                    f"last is due at {chunk.end_ns - 1} ns, the executor is at {self.last_tick_ns} ns: "
                    "inference slower than the chunk horizon, or clocks differ); dropped",
                    cause="chunk_stale",
                )
            if chunk.start_ns - self.last_tick_ns > self.config.max_future_ns:
                raise ChunkError(
                    f"chunk seq {seq} starts {(chunk.start_ns - self.last_tick_ns) / 1e9:.1f} s "
                    "ahead of the executor clock; check use_sim_time / clock sync; ignored",
                    cause="chunk_future",
                )
        needed = chunks_needed(chunk, self.config.period_ns)
        if self.config.max_chunks == 0:
            period = self.config.period_ns
            needed_live = max([needed, *(chunks_needed(c, period) for c in self.buffer.chunks)])
            self.buffer.max_chunks = min(needed_live, AUTO_MAX_CHUNKS_CAP)
        take = self._rtc_takeover(chunk) if self.config.mode == "rtc" else None
        stored, dropped = self.buffer.add(chunk)
        faults = []
        if take is not None:
            live_uids = {c.uid for c in self.buffer.chunks}
            self._takeovers = {u: t for u, t in self._takeovers.items() if u in live_uids}
            self._takeovers[stored.uid] = take
            if take.blend:
                self.rtc_mismatches += 1
                faults.append(
                    Fault(
                        cause="rtc_prefix_mismatch",
                        message=f"rtc: chunk seq {seq} from {policy_id or '?'} does not continue what "
                        f"was committed (|action - committed| = {take.error:.4g} > rtc_tolerance "
                        f"{self.config.rtc_tolerance:g}): cross-fading over {self.config.blend_steps} "
                        "ticks instead (a policy without RTC conditioning, stale committed actions, or "
                        "a delay estimate too short)",
                    )
                )
        if dropped:
            capacity = self.buffer.max_chunks
            if needed > capacity:
                faults.append(
                    Fault(
                        cause="chunk_buffer_small",
                        message=f"a chunk of {chunk.horizon} actions x {chunk.dt_ns / 1e9:g} s overlaps "
                        f"{needed} chunks when one arrives per control period, but max_chunks="
                        f"{capacity}: the oldest (in temporal_ensemble the highest-weighted) "
                        f"predictions are dropped; set max_chunks >= {needed} or 0 (auto)",
                    )
                )
            else:
                faults.append(
                    Fault(
                        cause="chunk_flood",
                        message=f"chunk buffer full (max_chunks={capacity}); dropped {len(dropped)} "
                        "oldest chunk(s); the policy publishes faster than the control rate needs",
                    )
                )
        return stored, faults

    def set_estop(self, active: bool) -> bool:
        """Feed the e-stop input; ``True`` latches a hold (and disarms). Returns the latch state."""
        self.estop_input = bool(active)
        if active:
            self.estop_latched = True
            self.armed = False
        return self.estop_latched

    def arm(self, t_ns: int | None = None) -> tuple[bool, str]:
        """Arm (clears a latched e-stop if its input is released). Returns (ok, message)."""
        if self.estop_input:
            return False, "cannot arm: e-stop input is still active; release it first"
        if self.armed:  # re-arming must not reset the filter: the command would jump to the state
            return True, "already armed"
        t = self.last_tick_ns if t_ns is None else t_ns
        measured = None if t is None else self.state.current(t)
        if measured is not None and (out := outside_limits(self.limits, measured)):
            return False, (
                "refusing to arm: "
                + describe_outside("measured position", out)
                + "; move the joint inside its limits (or fix the limits / the joint calibration)"
            )
        self.estop_latched = False
        self.armed = True
        self.filter.reset(measured)
        return True, "armed" + ("" if measured is not None else " (waiting for joint states)")

    def disarm(self) -> tuple[bool, str]:
        """Disarm. Returns (ok, message)."""
        self.armed = False
        return True, "disarmed"

    def reset(self) -> None:
        """Forget chunks, state history and blend state (the clock jumped)."""
        self.buffer.clear()
        self.state.clear()
        self._blend_current = self._blend_from = None
        self._blend_step = 0
        self._takeovers.clear()
        self._sent.clear()

    def plan(self, t_ns: int) -> np.ndarray | None:
        """The combined target for time ``t_ns`` from the chunks buffered now (before the safety
        filter; no state changes), or None when no chunk covers it. In ``rtc`` it includes the
        pending takeovers: what the executor has committed to, absent new chunks."""
        live = self.buffer.live(int(t_ns))
        if not live:
            return None
        return self._combine(live, int(t_ns), advance=False)

    def committed(self, t_ns: int) -> np.ndarray | None:
        """What the executor commands at ``t_ns`` (rad, ``[n_joints]``): at or before the last
        tick the command it sent (:class:`~vla_ros.control.commanded.CommandHistory`, linear
        between ticks; the plan before the history), after it :meth:`plan` through the safety
        filter tick by tick from the last command (:func:`~vla_ros.control.commanded.filtered_plan`).
        Equal to :meth:`plan` while the limits do not bind; when they do (a chunk planned from
        rest asking for more than ``max_velocity``) it is what real-time chunking must continue,
        not the plan. None when no chunk covers ``t_ns``.
        """
        t_ns = int(t_ns)
        last = self._sent.last_ns
        if last is not None and t_ns <= last:
            sent = self._sent.at(t_ns)
            return sent if sent is not None else self.plan(t_ns)
        if last is None or self.filter.last_command is None:
            return self.plan(t_ns)
        return filtered_plan(self.plan, self.filter.copy(), last, t_ns, self.config.period_ns)

    def committed_run(self) -> Callable[[int], np.ndarray | None]:
        """:meth:`committed` for a run of times asked in increasing order (``~/committed_actions``):
        future times on the control grid of the last tick continue one copy of the filter, so a
        run of ``n`` grid points costs ``n`` filter steps; calling :meth:`committed` per point
        steps from the last tick each time (``n^2 / 2``: ~100 ms for 1 s at 100 Hz, on the
        control thread). Any other time is :meth:`committed` itself; the values are the same
        (the same steps on the same grid)."""
        last = self._sent.last_ns
        period = int(self.config.period_ns)
        state: dict[str, Any] = {"sim": None, "t": None}

        def run(t_ns: int) -> np.ndarray | None:
            t = int(t_ns)
            if last is None or self.filter.last_command is None or t <= last or (t - last) % period:
                return self.committed(t)
            sim, tk = state["sim"], state["t"]
            if sim is None or t < tk:
                sim, tk = self.filter.copy(), last
            pos = filtered_plan(self.plan, sim, tk, t, period)
            state["sim"], state["t"] = (sim, t) if pos is not None else (None, None)
            return pos

        return run

    def handover_end_ns(self, chunk: Chunk) -> int | None:
        """``rtc``: the time (ns) by which buffered ``chunk`` has fully taken over: the end of its
        hand-over (its first action point after the takeover, :func:`~vla_ros.control.rtc.bridged_sample`),
        or the takeover plus ``blend_steps`` ticks when it is cross-faded in. None in the other
        modes and for a chunk without a takeover (it is used from the next tick on)."""
        take = self._takeovers.get(chunk.uid)
        if take is None:
            return None
        if take.blend:
            return take.t_ns + self.config.blend_steps * self.config.period_ns
        j = handover_index(chunk, take)
        return take.t_ns if j >= chunk.horizon else chunk.start_ns + j * chunk.dt_ns

    def _rtc_takeover(self, chunk: Chunk) -> Takeover:
        next_tick = chunk.start_ns if self.last_tick_ns is None else self.last_tick_ns + self.config.period_ns
        return takeover(
            chunk,
            self.committed,
            next_tick,
            self.config.rtc_tolerance,
            period_ns=self.config.period_ns,
            handover_steps=self.config.rtc_handover_steps,
        )

    # ------------------------------------------------------------------ the tick
    def tick(self, t_ns: int) -> Command | None:
        """Compute the command for time ``t_ns``; None when nothing is known to hold at.

        Either way :attr:`last_faults` holds this tick's faults (for None: why, e.g. no state).
        """
        t_ns = int(t_ns)
        faults: list[Fault] = []
        if self.last_tick_ns is not None and t_ns < self.last_tick_ns:
            faults.append(
                Fault(
                    cause="clock_backwards",
                    message=f"clock jumped backwards by {(self.last_tick_ns - t_ns) / 1e9:.3f} s; "
                    "dropped all chunks and joint states, holding",
                )
            )
            self.reset()
        self.last_tick_ns = t_ns
        self.buffer.prune(t_ns)
        measured = self.state.current(t_ns)
        if measured is None:
            faults.append(state_fault(self.state.missing(t_ns), self.state.seen_any))
            return self._hold(t_ns, None, faults)
        if self.estop_latched:
            faults.append(Fault(cause="estop", message="e-stop latched; holding until re-armed"))
            return self._hold(t_ns, measured, faults)
        if out := outside_limits(self.limits, measured):
            was_armed, self.armed = self.armed, False
            faults.append(
                Fault(
                    cause="state_outside_limits:" + ",".join(name for name, *_ in out),
                    message=describe_outside("measured position", out)
                    + ("; DISARMED" if was_armed else "; arming is refused")
                    + ": nothing is commanded outside the limits; move the joint inside its limits "
                    "(or fix the limits / the joint calibration), then arm",
                )
            )
            return self._hold(t_ns, None, faults)
        live = self.buffer.live(t_ns)
        if not live:
            faults.append(
                Fault(cause="no_live_chunk", message="no live action chunk covers the current time; holding")
            )
            self._blend_current = None
            return self._hold(t_ns, measured, faults)
        target = self._combine(live, t_ns, advance=True)
        res = self.filter.filter(target, measured)
        if res is None:  # unreachable: a measured state outside the limits returned above
            return self._hold(t_ns, None, faults)
        if "tracking_error" not in res.reasons:
            self._tracking_since_ns = None
        elif self._tracking_since_ns is None:
            self._tracking_since_ns = t_ns
        elif self.armed and t_ns - self._tracking_since_ns >= self.config.tracking_error_timeout_ns:
            self.armed = False
            faults.append(
                Fault(
                    cause="tracking_error_disarm",
                    message=f"the robot has been further than max_jump from the command for "
                    f"{(t_ns - self._tracking_since_ns) / 1e9:.3f} s (blocked, moved by hand, or "
                    "reset): DISARMED; re-arm to continue from the measured position",
                )
            )
        for reason in res.reasons:
            if reason in ("tracking_error", "nonfinite_target", "nonfinite_state"):
                faults.append(
                    Fault(
                        cause=reason,
                        message="safety filter: tracking error (the measured state is further than "
                        "max_jump from every command the velocity limit allows: blocked, moved by "
                        "hand, or an outlier sample); holding the previous command"
                        if reason == "tracking_error"
                        else f"safety filter: {reason.replace('_', ' ')}; holding",
                    )
                )
        traj: tuple[tuple[int, np.ndarray], ...] = ()
        if self.config.trajectory_points > 0 and not res.held:
            traj = self._lookahead(t_ns, res.positions)
        self.last_faults = tuple(faults)
        self._sent.record(t_ns, res.positions)
        return Command(
            t_ns=t_ns,
            joint_names=self.config.joint_names,
            positions=res.positions,
            velocities=res.velocities,
            holding=res.held,
            faults=tuple(faults),
            n_live=len(live),
            trajectory=traj,
        )

    def _hold(self, t_ns: int, measured: np.ndarray | None, faults: list[Fault]) -> Command | None:
        self.last_faults = tuple(faults)
        res = self.filter.hold(measured)
        if res is None:
            return None
        self._sent.record(t_ns, np.full(len(self.config.joint_names), np.nan))  # no chunk: nothing committed
        return Command(
            t_ns=t_ns,
            joint_names=self.config.joint_names,
            positions=res.positions,
            velocities=res.velocities,
            holding=True,
            faults=tuple(faults),
        )

    def _combine(self, live: list[Chunk], t_ns: int, advance: bool) -> np.ndarray:
        mode = self.config.mode
        if mode == "temporal_ensemble":
            return temporal_ensemble(sample_stack(live, t_ns), self.config.ensemble_coefficient)
        if mode == "rtc":
            return self._rtc(live, t_ns, advance)
        newest = live[-1]
        if mode == "latest":
            return newest.sample(t_ns)  # type: ignore[return-value]
        # blend
        if advance:
            if self._blend_current != newest.uid:
                if self._blend_current is not None:
                    self._blend_from = self._blend_current
                    self._blend_step = 0
                self._blend_current = newest.uid
            else:
                self._blend_step += 1
            step = self._blend_step
        else:
            step = self._blend_step + 1
        new = newest.sample(t_ns)
        old_chunk = next((c for c in live if c.uid == self._blend_from), None)
        w = blend_weight(step, self.config.blend_steps)
        if old_chunk is None or w >= 1.0:
            return new  # type: ignore[return-value]
        old = old_chunk.sample(t_ns)
        return (1.0 - w) * old + w * new  # type: ignore[operator]

    def _rtc_value(self, chunk: Chunk, t_ns: int) -> np.ndarray:
        take = self._takeovers.get(chunk.uid)
        value = chunk.sample(t_ns) if take is None else bridged_sample(chunk, take, t_ns)
        return value  # type: ignore[return-value]  # live chunks cover t_ns

    def _rtc(self, live: list[Chunk], t_ns: int, advance: bool) -> np.ndarray:
        """``rtc``: the newest chunk whose takeover time has come (bridged, see
        :mod:`vla_ros.control.rtc`); a chunk that did not continue the committed actions is
        cross-faded in over ``blend_steps`` ticks instead."""
        takes = self._takeovers
        ready = [c for c in live if c.uid not in takes or takes[c.uid].t_ns <= t_ns]
        active = ready[-1] if ready else live[-1]
        take = takes.get(active.uid)
        mismatch = take is not None and take.blend
        if advance:
            if self._blend_current != active.uid:
                self._blend_from = self._blend_current if mismatch else None
                self._blend_step = 0
                self._blend_current = active.uid
            else:
                self._blend_step += 1
            step, source = self._blend_step, self._blend_from
        elif active.uid == self._blend_current:
            last = self.last_tick_ns if self.last_tick_ns is not None else t_ns
            step = self._blend_step + max(1, (t_ns - last) // self.config.period_ns)
            source = self._blend_from
        else:
            step = (t_ns - take.t_ns) // self.config.period_ns if take is not None else 0
            source = self._blend_current if mismatch else None
        new = self._rtc_value(active, t_ns)
        old_chunk = None if source is None else next((c for c in live if c.uid == source), None)
        w = blend_weight(step, self.config.blend_steps)
        if old_chunk is None or w >= 1.0:
            return new
        return (1.0 - w) * self._rtc_value(old_chunk, t_ns) + w * new

    def _lookahead(self, t_ns: int, start: np.ndarray) -> tuple[tuple[int, np.ndarray], ...]:
        dt = self.config.trajectory_dt_ns or self.config.period_ns
        sim = self.filter.copy(dt)
        prev = start
        out = []
        for j in range(1, self.config.trajectory_points + 1):
            tj = t_ns + j * dt
            live = self.buffer.live(tj)
            if not live:
                break
            target = self._combine(live, tj, advance=False)
            res = sim.filter(target, prev)
            if res is None or res.held:
                break
            prev = res.positions
            out.append((j * dt, res.positions))
        return tuple(out)


def chunks_needed(chunk: Chunk, period_ns: int) -> int:
    """How many chunks like ``chunk`` are live at once when one arrives per control period.

    ``ceil(span / period) + 1`` with ``span = end - start`` (ns): the buffer size that keeps every
    prediction temporal ensembling needs (ACT: ``H`` chunks for ``dt = period``).
    """
    return -(-chunk.span_ns // int(period_ns)) + 1


def state_fault(missing: Sequence[str], seen_any: bool = True) -> Fault:
    """The fault for joints without a fresh joint state (one cause per set of joints), or for
    no joint state at all yet (``seen_any`` False); the tracker's own diagnosis (silent driver,
    unstamped messages, another clock: :class:`~vla_ros.control.state.MissingJoints`) when it has one."""
    if not seen_any:
        return Fault(
            cause="state_none",
            message="no joint_states received yet for the commanded joints; not commanding",
        )
    if getattr(missing, "fault", None) is not None:
        return missing.fault  # type: ignore[attr-defined]
    return Fault(
        cause="state_missing:" + ",".join(missing),
        message=f"joint_states lacks joint(s) {list(missing)} (none received within state_timeout); holding",
    )


def _replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)
