"""One policy step without ROS: latest inputs -> observation -> runtime -> an action chunk, or why not.

:class:`PolicyStep` is the whole policy path of ``policy_node`` minus the transport: callbacks
(or a bag reader) hand it messages with :meth:`~PolicyStep.push_image` /
:meth:`~PolicyStep.push_joint_state`; a worker (or a replay loop) calls
:meth:`~PolicyStep.run` with the current time in integer nanoseconds and gets either a
:class:`ChunkResult` to publish or a :class:`NoChunk` saying why nothing is published.

Fault rule (as everywhere in vla_ros): any bad, missing or stale input, inference error or
non-finite output gives no chunk, is logged once per cause through ``log`` (and once when it
clears), is counted in :attr:`PolicyStep.stats` and stays in :attr:`PolicyStep.faults` while
active. Messages are duck-typed ``sensor_msgs`` (rclpy or ``rosbags`` objects both work).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vla_ros.contract.errors import NonFiniteOutputError
from vla_ros.contract.observation import Observation
from vla_ros.control.delay import DelayEstimate, DelayEstimator
from vla_ros.perception import (
    ImageFormatError,
    MissingJointError,
    ObservationAssembler,
    ObservationError,
    ObservationRejected,
    check_image_fields,
    msg_to_rgb8,
)
from vla_ros.perception.image import check_compressed
from vla_ros.perception.image_header import DEFAULT_MAX_PIXELS
from vla_ros.policy.committed import (
    CommittedError,
    CommittedTracker,
    Received,
    committed_from_message,
    horizon_due,
    resample,
)
from vla_ros.policy.stats import PolicyStats
from vla_ros.runtime.processing import rtc_settings
from vla_ros.util.faults import FaultLog
from vla_ros.util.ns import seconds_to_ns

#: ``log(level, message)`` with level ``"info"``, ``"warning"`` or ``"error"``
LogFn = Callable[[str, str], None]


def _no_log(level: str, message: str) -> None:
    """The default ``log``: discard."""


#: when a new observation triggers an inference (see :class:`PolicyStep`)
INFER_ON = ("all_new", "any_new")
#: input fault kinds (the last part of a cause) counted as ``stale_observations``: inputs whose
#: time is wrong (old, ahead, silent, unstamped, from another clock)
STALE_KINDS = frozenset({"stale", "future", "silent", "unstamped", "clock"})
#: committed actions received longer ago than this are not used (default of ``committed_max_age_ns``)
DEFAULT_COMMITTED_MAX_AGE_NS = 250_000_000
#: the inference delay estimate: first latency excluded (warm-up), p95 over the last 50
DELAY_WARMUP, DELAY_WINDOW, DELAY_PERCENTILE = 1, 50, 95.0


@dataclass(frozen=True)
class ChunkResult:
    """An action chunk ready to publish: action ``i`` is meant for ``stamp_ns + i * dt_ns``."""

    stamp_ns: int  # the observation stamp (oldest of its parts)
    seq: int  # 0, 1, 2, ... per chunk produced by this PolicyStep
    actions: np.ndarray  # float32 [horizon, action_dim], raw units, action_joints order
    policy_id: str
    joint_names: tuple[str, ...]
    dt_ns: int
    action_mode: str
    infer_ns: int  # duration of runtime.infer
    started_ns: int  # time.perf_counter_ns() when the step began (for the worker step time)

    @property
    def horizon(self) -> int:
        """Number of actions in the chunk."""
        return int(self.actions.shape[0])

    @property
    def action_dim(self) -> int:
        """Values per action."""
        return int(self.actions.shape[1])


@dataclass(frozen=True)
class NoChunk:
    """Why a step produced no chunk.

    ``reason``: ``"rejected"`` (an input is missing, stale, ahead of the clock, incomplete or
    non-finite), ``"not_new"`` (every part was already used), ``"image"`` (an image could not
    be converted), ``"inference"`` (the runtime raised), ``"non_finite"`` (NaN/Inf actions) or
    ``"shape"`` (actions not ``[horizon, action_dim]``). ``causes`` are the fault causes.
    """

    reason: str
    causes: tuple[str, ...] = ()
    message: str = ""


class PolicyStep:
    """The policy node's logic on a loaded runtime and an observation assembler.

    ``instruction`` and ``depth_max_m`` may be changed between steps (plain attributes).
    ``action_joints`` renames the card's action joints in each chunk (default: the card's).

    Real-time chunking: :meth:`push_committed` stores the executor's latest committed actions;
    each observation then carries them resampled onto its chunk's grid for the first ``d`` steps
    (``Observation.committed_actions``), ``d`` = :attr:`delay`'s estimate from the published
    chunks' latencies (:meth:`record_latency`). Committed actions older than
    ``committed_max_age_ns`` (``tracker.max_age_ns``), or received before the last chunk was
    published (they do not include it yet), are not used.

    Only a card with real-time chunking (:attr:`uses_committed`) consumes them, so only such a
    card has committed-action faults. A message received before the last chunk was published
    is normal with ``inference_trigger: rate`` (inference at ``rate_hz`` while the executor
    publishes at ``committed_rate_hz``): it is counted (``tracker.not_fresh``), not logged. The
    fault ``committed:stale`` (one log line per episode) is an RTC card whose latest committed
    actions are older than ``committed_max_age_ns``, or that has had none usable for that long;
    like ``committed:uncovered`` it ends (one "recovered" line) only once committed actions
    have been used with no fault for the fault log's ``settle_ns`` (``fault_settle_s``), so a
    flapping source is one episode.
    """

    def __init__(
        self,
        runtime: Any,
        assembler: ObservationAssembler,
        *,
        action_joints: Sequence[str] | None = None,
        instruction: str = "",
        depth_max_m: float = 2.0,
        log: LogFn | None = None,
        stats: PolicyStats | None = None,
        faults: FaultLog | None = None,
        infer_on: str = "all_new",
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
        committed_max_age_ns: int = DEFAULT_COMMITTED_MAX_AGE_NS,
    ) -> None:
        if infer_on not in INFER_ON:
            raise ValueError(f"infer_on={infer_on!r} is not one of {INFER_ON}")
        #: ``all_new``: infer when every input has a new message; ``any_new``: when any has
        self.infer_on = infer_on
        card = runtime.card
        io = card.io
        self.runtime = runtime
        self.assembler = assembler
        self.policy_id: str = card.policy_id
        self.action_joints = tuple(action_joints) if action_joints else tuple(card.action_joints)
        if len(self.action_joints) != io.action_dim:
            raise ValueError(
                f"action_joints has {len(self.action_joints)} names {list(self.action_joints)} but "
                f"the card's actions have {io.action_dim} values; give one name per action value"
            )
        self.output_shape = tuple(int(v) for v in io.chunk_shape)
        self.dt_ns = seconds_to_ns(io.dt)
        self.action_mode: str = card.output_action_mode
        self.instruction = instruction
        self.depth_max_m = depth_max_m
        #: compressed images declaring more pixels are rejected before decoding (bombs)
        self.max_image_pixels = int(max_image_pixels)
        self.log: LogFn = log if log is not None else _no_log
        self.stats = stats if stats is not None else PolicyStats()
        self.faults = faults if faults is not None else FaultLog()
        self._seq = 0
        self._state_push_faults: set[str] = set()  # joint_states causes raised at push time
        #: the inference delay in chunk steps (observation stamp -> chunk published)
        self.delay = DelayEstimator(
            self.dt_ns, warmup=DELAY_WARMUP, window=DELAY_WINDOW, percentile=DELAY_PERCENTILE
        )
        self.tracker = CommittedTracker(committed_max_age_ns)
        #: whether the card consumes committed actions (real-time chunking in its card)
        self.uses_committed: bool = rtc_settings(card) is not None
        self._committed_since_ns: int | None = None  # last use, or the first time they were wanted
        self._committed_fault_ns: int | None = None  # last committed-action fault occurrence

    # ---- faults ------------------------------------------------------------------------------

    def fault(self, cause: str, message: str, *, level: str = "warning") -> None:
        """Record ``cause``; log ``message`` at ``level`` only when the cause is new."""
        if self.faults.raise_(cause, message):
            self.log(level, message)

    def recover(self, cause: str) -> None:
        """Clear ``cause``; log "recovered" only when it was active."""
        if self.faults.clear(cause):
            self.log("info", f"recovered: {cause}")

    def _recover_inputs(self, keep: set[str] | None = None) -> None:
        for gone in self.faults.clear_except("input:", keep=keep or ()):
            self.log("info", f"recovered: {gone}")

    # ---- inputs (cheap: safe to call from subscription callbacks) ----------------------------

    def push_image(self, camera: str, stamp_ns: int, msg: Any) -> bool:
        """Store an Image or CompressedImage for ``camera``; False (and a fault) if rejected.

        A raw Image's header fields, a compressed one's declared size (against
        ``max_image_pixels``) are checked here in O(1); pixels are converted in :meth:`run`. An
        accepted frame ends the camera's push-time faults (once settled: see ``FaultLog``).
        """
        source = f"camera {camera!r}"
        try:
            if hasattr(msg, "format") and not hasattr(msg, "encoding"):  # compressed
                check_compressed(msg.format, msg.data, self.max_image_pixels, source=source)
            else:
                fields = (msg.encoding, msg.height, msg.width, msg.step, len(msg.data))
                check_image_fields(*fields, source=source)
        except ImageFormatError as exc:
            self.reject_image(camera, exc)
            return False
        self.assembler.push_image(camera, stamp_ns, msg)
        for gone in self.faults.clear_except(f"image:{camera}:", keep=(f"image:{camera}:convert",)):
            self.log("info", f"recovered: {gone}")
        return True

    def reject_image(self, camera: str, exc: ImageFormatError) -> None:
        """Count and log (once per cause) an image for ``camera`` that could not be read."""
        self.stats.add("rejected_messages")
        self.fault(f"image:{camera}:{exc.cause.rsplit(':', 1)[-1]}", f"rejected image: {exc}")

    def push_joint_state(self, stamp_ns: int, names: Sequence[str], positions: Any) -> bool:
        """Store a JointState's names and positions; True when stored.

        False without a fault when the message names none of the state joints; False with a
        fault (logged once, counted in ``rejected_messages``) when it is malformed: names and
        positions of different lengths, or a joint named twice. An accepted message ends those
        faults (once settled, see ``FaultLog``: a publisher alternating good and bad messages is
        one episode).
        """
        try:
            stored = self.assembler.push_joint_state(stamp_ns, names, positions)
        except ObservationError as exc:
            self.stats.add("rejected_messages")
            self._state_push_faults.add(exc.cause)
            self.fault(exc.cause, f"rejected joint_states: {exc}")
            return False
        if self._state_push_faults:
            for gone in self.faults.clear_except("joint_states:"):
                self._state_push_faults.discard(gone)
                self.log("info", f"recovered: {gone}")
        return stored

    def push_committed(
        self, received_ns: int, stamp_ns: int, dt_ns: int, joint_names: Sequence[str], actions: Any
    ) -> bool:
        """Store the executor's committed actions (a ``~/committed_actions`` message received at
        node time ``received_ns``); False and a fault (logged once) when they cannot be used."""
        try:
            committed = committed_from_message(stamp_ns, dt_ns, joint_names, actions, self.action_joints)
        except CommittedError as exc:
            self.fault(exc.cause, f"ignored committed actions: {exc}")
            return False
        for cause in ("committed:shape", "committed:nonfinite", "committed:joints"):
            self.recover(cause)
        self.tracker.received = Received(int(received_ns), committed)
        return True

    @property
    def committed(self) -> Received | None:
        """The latest committed actions received (None: none yet)."""
        return self.tracker.received

    def delay_estimate(self) -> DelayEstimate | None:
        """The current inference delay estimate (None before the first sample after warm-up)."""
        return self.delay.estimate()

    def committed_for(self, stamp_ns: int, now_ns: int) -> np.ndarray | None:
        """``[d, action_dim]`` float32 committed actions for a chunk stamped ``stamp_ns``, or None
        (no estimate yet, ``d`` = 0, none received, stale, or not covering the grid).

        Faults (only for a card that uses them, :attr:`uses_committed`; see the class docstring):
        ``committed:stale`` when the latest were received longer than ``tracker.max_age_ns`` ago
        or none were usable for that long (each predating the last chunk),
        ``committed:uncovered`` when fresh ones do not cover the chunk's first ``d`` steps.
        """
        estimate = self.delay.estimate()
        got = self.committed
        if estimate is None or estimate.steps == 0 or got is None:
            return None
        if self._committed_since_ns is None:
            self._committed_since_ns = int(now_ns)
        why = self.tracker.stale(now_ns)
        if why is not None:
            self.tracker.not_fresh += 1
            unused_ns = int(now_ns) - self._committed_since_ns
            too_old = int(now_ns) - got.received_ns > self.tracker.max_age_ns  # the executor stopped
            if self.uses_committed and (too_old or unused_ns > self.tracker.max_age_ns):
                self._committed_fault(
                    now_ns,
                    "committed:stale",
                    f"not using the executor's committed actions: none usable for {unused_ns / 1e6:.0f} ms "
                    f"(the latest {why}); this real-time chunking card infers without them (is the "
                    "executor publishing ~/committed_actions in mode rtc? use inference_trigger: "
                    "horizon, or raise the executor's committed_rate_hz)",
                )
            return None
        out = resample(got.committed, stamp_ns, self.dt_ns, estimate.steps)
        if out is None:
            c = got.committed
            if self.uses_committed:
                self._committed_fault(
                    now_ns,
                    "committed:uncovered",
                    f"the executor's committed actions ({c.start_ns}..{c.end_ns} ns) do not cover the "
                    f"chunk's first {estimate.steps} steps from {stamp_ns} ns; inferring without them "
                    "(raise the executor's committed_history_s / committed_horizon_s)",
                )
            return None
        self._committed_since_ns = int(now_ns)
        last = self._committed_fault_ns
        if last is None or int(now_ns) - last >= self.faults.settle_ns:
            self._committed_fault_ns = None
            self.recover("committed:stale")
            self.recover("committed:uncovered")
        return out

    def _committed_fault(self, now_ns: int, cause: str, message: str) -> None:
        self._committed_fault_ns = int(now_ns)
        self.fault(cause, message)

    def horizon_due(self, now_ns: int, margin_steps: int) -> bool:
        """``inference_trigger: horizon``: whether fewer than ``d + margin_steps`` chunk steps of
        actions remain at ``now_ns`` (covered: the executor's committed actions while fresh, or
        this step's last published chunk, whichever reaches further; see
        :func:`vla_ros.policy.committed.horizon_due`). ``d`` is 0 before the first estimate."""
        estimate = self.delay.estimate()
        d = 0 if estimate is None else estimate.steps
        return horizon_due(now_ns, self.tracker.covered_until(now_ns), self.dt_ns, d, margin_steps)

    # ---- the step ----------------------------------------------------------------------------

    def run(self, now_ns: int) -> ChunkResult | NoChunk:
        """Assemble the observation at time ``now_ns``, run the policy, check its output."""
        started = time.perf_counter_ns()
        try:
            assembly = self.assembler.assemble(now_ns)
        except ObservationRejected as rejected:
            return self._rejected(rejected)
        self._recover_inputs()
        if not self.assembler.is_new(assembly, require_all=self.infer_on == "all_new"):
            return NoChunk("not_new")

        images: dict[str, np.ndarray] = {}
        for camera, entries in assembly.images.items():
            cause = f"image:{camera}:convert"
            try:
                frames = [
                    msg_to_rgb8(
                        e.item,
                        depth_max_m=self.depth_max_m,
                        source=f"camera {camera!r}",
                        max_pixels=self.max_image_pixels,
                    )
                    for e in entries
                ]
            except ImageFormatError as exc:
                self.assembler.mark_consumed(assembly)  # do not retry the same bad message
                self.stats.add("rejected_messages")
                self.fault(cause, f"rejected image: {exc}")
                return NoChunk("image", (cause,), str(exc))
            self.recover(cause)
            images[camera] = frames[0] if len(frames) == 1 else np.stack(frames)
        state = assembly.state[0] if assembly.state.shape[0] == 1 else assembly.state
        obs = Observation(
            images=images,
            state=state,
            instruction=self.instruction,
            stamp_ns=assembly.stamp_ns,
            committed_actions=self.committed_for(assembly.stamp_ns, now_ns),
        )
        self.assembler.mark_consumed(assembly)

        t_infer = time.perf_counter_ns()
        try:
            actions = self.runtime.infer(obs)
        except Exception as exc:
            if isinstance(exc, NonFiniteOutputError):
                return self._bad_output("non_finite", "output:non_finite", f"no chunk: {exc}")
            return self._bad_output("inference", "inference:error", f"no chunk: inference failed: {exc!r}")
        infer_ns = time.perf_counter_ns() - t_infer
        actions = np.asarray(actions, dtype=np.float32)
        if not np.isfinite(actions).all():
            return self._bad_output(
                "non_finite", "output:non_finite", "no chunk: the policy returned NaN/Inf actions"
            )
        if actions.shape != self.output_shape:
            return self._bad_output(
                "shape",
                "output:shape",
                f"no chunk: the policy returned actions of shape {actions.shape}; the card says "
                f"{self.output_shape} (horizon, action_dim); the runtime does not match the card",
            )
        for cause in ("output:non_finite", "inference:error", "output:shape"):
            self.recover(cause)
        result = ChunkResult(
            stamp_ns=assembly.stamp_ns,
            seq=self._seq,
            actions=actions,
            policy_id=self.policy_id,
            joint_names=self.action_joints,
            dt_ns=self.dt_ns,
            action_mode=self.action_mode,
            infer_ns=infer_ns,
            started_ns=started,
        )
        self._seq += 1
        return result

    def record_published(self, result: ChunkResult, latency_ns: int) -> None:
        """Count ``result`` as published ``latency_ns`` after its stamp (timings for diagnostics,
        the delay estimate, the horizon trigger)."""
        self.stats.record_chunk(latency_ns, result.infer_ns, time.perf_counter_ns() - result.started_ns)
        self.record_latency(latency_ns)
        self.tracker.published(result.stamp_ns, latency_ns, result.horizon, result.dt_ns)

    def record_latency(self, latency_ns: int) -> None:
        """Feed one observation stamp -> chunk ready latency (ns; negative: clocks disagree,
        counted as 0) to the inference delay estimate."""
        self.delay.add(max(0, int(latency_ns)))

    def _rejected(self, rejected: ObservationRejected) -> NoChunk:
        causes = {f"input:{e.cause}" for e in rejected.errors}
        self._recover_inputs(keep=causes)
        for err in rejected.errors:
            cause = f"input:{err.cause}"
            if err.cause.endswith(":missing") and not isinstance(err, MissingJointError):
                self.fault(cause, f"waiting: {err}", level="info")  # nothing arrived yet: not a fault
            else:
                self.fault(cause, f"no chunk: {err}")
        if any(c.rsplit(":", 1)[-1] in STALE_KINDS for c in causes):
            self.stats.add("stale_observations")
        return NoChunk("rejected", tuple(sorted(causes)), str(rejected))

    def _bad_output(self, reason: str, cause: str, message: str) -> NoChunk:
        self.stats.add("non_finite_outputs" if reason == "non_finite" else "inference_errors")
        self.fault(cause, message, level="error")
        return NoChunk(reason, (cause,), message)
