"""Replay a recording through the policy node's and the executor node's own logic, in bag time.

Two passes, so that a parameter sweep pays for the model once:

1. :func:`replay_policy` feeds the recorded camera, joint-state and instruction messages to a
   :class:`~vla_ros.policy.step.PolicyStep` (the policy node minus its topics) at their log times,
   exactly as the node's callbacks would, and runs the step as the node's worker would: whenever
   it is idle and new data has arrived (``rate_hz`` 0), or on a fixed tick (``rate_hz`` > 0). Each
   inference keeps the worker busy for its latency (measured here, or fixed by the caller), and
   its chunk reaches the executor when it ends. The result is a :class:`PolicyTrace`.
2. :func:`replay_executor` plays that trace into an :class:`~vla_ros.executor.core.ExecutorCore`
   (the executor node's whole tick): joint states at their log times, chunks when ready, a tick
   every control period. The result is an :class:`ExecutorTrace` of every command.

Time is the bag's integer-nanosecond log time ("now" for staleness, as the node clock would read
on arrival); data carry their header stamps, as on the robot.

The policy pass feeds each chunk's latency (stamp -> ready) to the step's inference delay
estimate, as the node does on publishing (:attr:`PolicyTrace.delay`: ``d`` in chunk steps and the
p95 latency in ns); the executor pass counts the chunks dropped because every action was already
in the past (:attr:`ExecutorTrace.expired_chunks`). The two passes run one after the other, so
the executor's committed actions (real-time chunking) are not fed back into the inferences.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from vla_ros.control.chunk import ChunkError
from vla_ros.control.delay import DelayEstimate
from vla_ros.control.state import StateError
from vla_ros.eval.bag import BagSource, canonical_topic
from vla_ros.executor.core import ExecutorCore
from vla_ros.perception.observation import stamp_to_ns
from vla_ros.policy.step import ChunkResult, PolicyStep
from vla_ros.util.ticker import Ticker


@dataclass(frozen=True)
class ReplayTopics:
    """Which recorded topics feed which input (absolute names, as in the bag)."""

    cameras: dict[str, str]  # card camera -> topic
    joint_states: str
    instruction: str | None = None  # std_msgs/String; None: not replayed
    reference: str | None = None  # JointState the commands are compared with (None: joint_states)

    @property
    def reference_topic(self) -> str:
        """The reference JointState topic (``joint_states`` unless set)."""
        return self.reference or self.joint_states

    def canonical(self) -> ReplayTopics:
        """The same topics fully qualified (``joint_states`` -> ``/joint_states``), as the bag yields them."""
        return ReplayTopics(
            cameras={cam: canonical_topic(t) for cam, t in self.cameras.items()},
            joint_states=canonical_topic(self.joint_states),
            instruction=canonical_topic(self.instruction) if self.instruction else None,
            reference=canonical_topic(self.reference) if self.reference else None,
        )

    def all(self) -> list[str]:
        """Every topic the replay reads."""
        names = [*self.cameras.values(), self.joint_states, self.reference_topic]
        if self.instruction:
            names.append(self.instruction)
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class StateSample:
    """One recorded JointState: when it arrived, its stamp, its names and positions."""

    log_ns: int
    stamp_ns: int
    names: tuple[str, ...]
    positions: np.ndarray


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk the policy produced: inference started at ``started_ns``, ready at ``ready_ns``."""

    started_ns: int
    ready_ns: int
    result: ChunkResult


@dataclass
class PolicyTrace:
    """What the policy pass saw and produced."""

    start_ns: int
    end_ns: int
    chunks: list[ChunkRecord] = field(default_factory=list)
    states: list[StateSample] = field(default_factory=list)
    reference: list[StateSample] = field(default_factory=list)
    steps: int = 0
    no_chunk: Counter = field(default_factory=Counter)  # NoChunk reason -> count
    faults: Counter = field(default_factory=Counter)  # policy log lines by level
    messages: Counter = field(default_factory=Counter)  # topic -> messages replayed
    latency_mode: str = "measured"
    #: the inference delay estimate at the end of the pass (None: fewer chunks than the warm-up)
    delay: DelayEstimate | None = None

    def delay_report(self) -> dict:
        """``{delay_steps, delay_ns, delay_samples}`` of :attr:`delay` (None / 0 without one)."""
        d = self.delay
        return {
            "delay_steps": None if d is None else d.steps,
            "delay_ns": None if d is None else d.latency_ns,
            "delay_samples": 0 if d is None else d.samples,
        }

    @property
    def infer_ms(self) -> np.ndarray:
        """Model call durations (ms) of the chunks."""
        return np.array([c.result.infer_ns / 1e6 for c in self.chunks], dtype=float)

    @property
    def obs_to_ready_ms(self) -> np.ndarray:
        """Observation stamp -> chunk ready (ms), per chunk."""
        return np.array([(c.ready_ns - c.result.stamp_ns) / 1e6 for c in self.chunks], dtype=float)


def replay_policy(
    source: BagSource,
    step: PolicyStep,
    topics: ReplayTopics,
    *,
    latency_ns: int | None = None,
    rate_hz: float = 0.0,
    start_ns: int | None = None,
    stop_ns: int | None = None,
) -> PolicyTrace:
    """Run ``step`` over the recording; ``latency_ns`` None = each inference's measured duration.

    ``start_ns``/``stop_ns`` are bag log times (None: the whole bag).
    """
    topics = topics.canonical()  # the bag yields fully qualified names
    cam_by_topic: dict[str, list[str]] = {}
    for cam, topic in topics.cameras.items():
        cam_by_topic.setdefault(topic, []).append(cam)
    trace = PolicyTrace(
        start_ns=start_ns if start_ns is not None else source.start_ns,
        end_ns=stop_ns if stop_ns is not None else source.end_ns,
        latency_mode="measured" if latency_ns is None else f"fixed {latency_ns / 1e6:g} ms",
    )
    original_log = step.log

    def counting_log(level: str, message: str) -> None:
        trace.faults[level] += 1
        original_log(level, message)

    step.log = counting_log
    period_ns = round(1e9 / rate_hz) if rate_hz > 0 else 0
    busy_until = trace.start_ns
    # rate_hz > 0: the node worker's schedule and overrun rule (util.ticker)
    ticker = Ticker(period_ns, first_ns=trace.start_ns) if period_ns else None
    wake = False

    def run_step(now: int) -> int:
        """One worker iteration at ``now``; returns when the worker is free again."""
        nonlocal wake
        wake = False
        trace.steps += 1
        t0 = time.perf_counter_ns()
        result = step.run(now)
        took = time.perf_counter_ns() - t0  # the whole step (assembly, conversion, model), as the node
        if not isinstance(result, ChunkResult):
            trace.no_chunk[result.reason] += 1
            return now + (took if latency_ns is None else 0)
        ready = now + (took if latency_ns is None else latency_ns)
        trace.chunks.append(ChunkRecord(now, ready, result))
        step.record_latency(ready - result.stamp_ns)
        return ready

    def catch_up(t: int) -> None:
        """Run the worker iterations that start before log time ``t``."""
        nonlocal busy_until
        while True:
            if ticker is not None:
                # as the node's worker: on time, the next run is one period after this one's
                # tick; after an overrun it runs at once and the period restarts from there
                run_at = ticker.deadline_ns
                if run_at >= t:
                    return
                busy_until = run_step(run_at)
                ticker.advance(busy_until)
            else:
                if not wake or busy_until >= t:
                    return
                busy_until = run_step(busy_until)

    try:
        for log_ns, topic, msg in source.messages(topics.all(), start_ns, stop_ns):
            catch_up(log_ns)
            trace.messages[topic] += 1
            new = False
            stamp = (
                stamp_to_ns(msg.header.stamp.sec, msg.header.stamp.nanosec) if hasattr(msg, "header") else 0
            )
            for cam in cam_by_topic.get(topic, ()):
                new |= step.push_image(cam, stamp, msg)
            if topic == topics.joint_states:
                sample = StateSample(log_ns, stamp, tuple(msg.name), np.asarray(msg.position, dtype=float))
                trace.states.append(sample)
                new |= step.push_joint_state(stamp, msg.name, msg.position)
            if topic == topics.reference_topic:
                trace.reference.append(
                    StateSample(log_ns, stamp, tuple(msg.name), np.asarray(msg.position, dtype=float))
                )
            if topic == topics.instruction:
                step.instruction = str(msg.data)
            wake |= new
            if not period_ns and wake and busy_until <= log_ns:
                busy_until = run_step(log_ns)
        catch_up(trace.end_ns)
    finally:
        step.log = original_log
    trace.delay = step.delay_estimate()
    return trace


@dataclass
class ExecutorTrace:
    """Every control tick of the executor pass."""

    joint_names: tuple[str, ...]
    period_ns: int
    times_ns: np.ndarray  # [T] tick times
    positions: np.ndarray  # [T, J] commanded positions (holds included)
    holding: np.ndarray  # [T] bool
    no_state: np.ndarray  # [T] bool: holding because the joint state was missing or stale
    fault_ticks: Counter  # fault cause -> ticks it was present
    rejected_chunks: Counter  # ChunkError cause -> chunks refused
    rejected_states: Counter  # StateError cause -> joint states refused
    chunk_targets: list[tuple[int, int, np.ndarray]]  # accepted chunks: (start_ns, dt_ns, [H, J])
    expired_chunks: int = 0  # chunks dropped: every action already in the past (never replayed)


def replay_executor(trace: PolicyTrace, core: ExecutorCore, *, armed: bool = True) -> ExecutorTrace:
    """Tick ``core`` (a fresh :class:`~vla_ros.executor.core.ExecutorCore`, the node's own logic;
    see ``ExecutorSetup.core``) over ``trace``: states at log time, chunks when ready."""
    ctl = core.controller
    if ctl is None:
        raise ValueError("replay_executor needs a core with its joints adopted (ExecutorSetup.core())")
    config = ctl.config
    events = _events(trace.states, trace.chunks)
    period = config.period_ns
    first = trace.states[0].log_ns if trace.states else trace.start_ns
    times = np.fromiter(Ticker(period, first_ns=first).ticks(trace.end_ns), dtype=np.int64)
    n_j = len(config.joint_names)
    positions = np.full((times.size, n_j), np.nan)
    holding = np.ones(times.size, dtype=bool)
    no_state = np.zeros(times.size, dtype=bool)
    fault_ticks: Counter = Counter()
    rejected: Counter = Counter()
    rejected_states: Counter = Counter()
    targets: list[tuple[int, int, np.ndarray]] = []
    k = 0
    for i, t in enumerate(times.tolist()):
        while k < len(events) and events[k][0] <= t:
            _, kind, item = events[k]
            k += 1
            if kind == 0:
                try:
                    core.update_state(item.stamp_ns, item.names, item.positions)
                except StateError as exc:
                    rejected_states[exc.cause] += 1
                continue
            r = item.result
            try:
                chunk, _ = core.add_chunk(
                    stamp_ns=r.stamp_ns,
                    dt_ns=r.dt_ns,
                    joint_names=r.joint_names,
                    actions=r.actions,
                    action_mode=r.action_mode,
                    policy_id=r.policy_id,
                    seq=r.seq,
                )
            except ChunkError as exc:
                rejected[exc.cause] += 1
                continue
            targets.append((chunk.start_ns, chunk.dt_ns, np.asarray(chunk.actions, dtype=float)))
        if armed and not core.armed and core.arm(t)[0]:
            # the safety filter disarmed (the recording never follows the replayed commands, and
            # episodes reset the robot): the emulated operator re-arms, from the measured state
            fault_ticks["rearmed"] += 1
        tick = core.tick(t)
        cmd = tick.command
        if cmd is None:  # nothing known to hold yet (no joint state)
            no_state[i] = True
            for f in tick.faults:
                fault_ticks[f.cause] += 1
            continue
        positions[i] = cmd.positions
        holding[i] = cmd.holding
        for f in cmd.faults:
            fault_ticks[f.cause] += 1
            no_state[i] |= f.cause.startswith("state_")
    return ExecutorTrace(
        joint_names=tuple(config.joint_names),
        period_ns=period,
        times_ns=times,
        positions=positions,
        holding=holding,
        no_state=no_state,
        fault_ticks=fault_ticks,
        rejected_chunks=rejected,
        rejected_states=rejected_states,
        chunk_targets=targets,
        expired_chunks=ctl.expired_chunks,
    )


def _events(states: Iterable[StateSample], chunks: Iterable[ChunkRecord]) -> list[tuple[int, int, object]]:
    """States (kind 0) and chunks (kind 1) by the time the executor gets them; states first on ties."""
    events: list[tuple[int, int, object]] = [(s.log_ns, 0, s) for s in states]
    events += [(c.ready_ns, 1, c) for c in chunks]
    events.sort(key=lambda e: (e[0], e[1]))
    return events
