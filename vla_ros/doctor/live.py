"""Live-graph checks (check 8), pure part: what was measured -> results.

:mod:`vla_ros.doctor.live_ros` samples a running graph with rclpy into a :class:`LiveObservation`;
the functions here judge it, so they are testable on their own and the node and the CLI share them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vla_ros.doctor.registry import Verdict, check, verdict
from vla_ros.doctor.result import CheckResult, Status
from vla_ros.policy.stats import percentiles_ms

if TYPE_CHECKING:
    from vla_ros.contract.card import PolicyCard

CLOCK_WARN_S = 0.025
CLOCK_FAIL_S = 1.0
INFINITE_NS = 1 << 62
HIDDEN_TOPICS = ("/rosout", "/parameter_events")
#: vla_ros's optional inputs (relative names as the nodes subscribe them): on a healthy graph
#: nothing publishes them until an operator or a driver does (the e-stop, a language instruction,
#: a URDF latched once), so without ``--topic`` their silence is listed, not judged.
OPTIONAL_INPUTS = ("vla/estop", "vla/instruction", "robot_description")
ACTION_CHUNK_TYPE = "vla_ros/msg/ActionChunk"


@dataclass
class TopicExpectation:
    """A topic that must be live, optionally at ``rate_hz`` (relative ``tolerance``)."""

    name: str
    rate_hz: float | None = None
    tolerance: float = 0.2

    @classmethod
    def parse(cls, spec: str, tolerance: float = 0.2) -> TopicExpectation:
        """``/camera/image_raw`` or ``/camera/image_raw:30`` or ``/camera/image_raw:30:0.1``."""
        parts = spec.strip().split(":")
        name = parts[0]
        if not name.startswith("/") or len(parts) > 3:
            raise ValueError(
                f"topic expectation {spec!r} must look like /topic, /topic:HZ or /topic:HZ:TOL "
                "(absolute topic name)"
            )
        try:
            rate = float(parts[1]) if len(parts) > 1 and parts[1] else None
            tol = float(parts[2]) if len(parts) > 2 else tolerance
        except ValueError as exc:
            raise ValueError(
                f"topic expectation {spec!r}: rate and tolerance must be numbers "
                "(e.g. /camera/image_raw:30:0.2)"
            ) from exc
        if rate is not None and rate <= 0:
            raise ValueError(f"topic expectation {spec!r}: rate must be > 0 Hz, got {rate}")
        if not 0 < tol < 1:
            raise ValueError(f"topic expectation {spec!r}: tolerance must be in (0, 1), got {tol}")
        return cls(name, rate, tol)


@dataclass
class TopicSample:
    """What was seen on one topic during the window."""

    name: str
    types: list[str] = field(default_factory=list)
    publishers: list[dict[str, Any]] = field(default_factory=list)
    subscribers: list[dict[str, Any]] = field(default_factory=list)
    receive_ns: list[int] = field(default_factory=list)  # monotonic, for rates
    offsets_ns: list[int] = field(default_factory=list)  # receive time - header stamp
    zero_stamps: int = 0
    joint_names: list[str] = field(default_factory=list)
    inference_latency_ns: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def count(self) -> int:
        """Messages received."""
        return len(self.receive_ns)

    def rate_hz(self, window_s: float) -> float | None:
        """Measured rate: from first-to-last spacing with 3+ messages, else count / window."""
        n = self.count
        if n >= 3:
            span = (self.receive_ns[-1] - self.receive_ns[0]) / 1e9
            if span > 0:
                return (n - 1) / span
        return n / window_s if window_s > 0 else None


@dataclass
class LiveObservation:
    """A sampled graph: topics, /clock publishers and which nodes use sim time."""

    window_s: float
    topics: dict[str, TopicSample] = field(default_factory=dict)
    clock_publishers: int = 0
    clock_publisher_nodes: list[str] = field(default_factory=list)
    clock_messages: int | None = None  # /clock messages received in the window (None: not counted)
    sim_time_nodes: list[str] = field(default_factory=list)
    nodes_queried: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    #: policy nodes' latest ``latency_p99_ms`` on /diagnostics, by status name (ms)
    diagnostics_latency_ms: dict[str, float] = field(default_factory=dict)
    #: policy nodes' latest ``delay_ns`` on /diagnostics (their p95 after warm-up), by status name
    diagnostics_delay_ns: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def inference_latency_s(self) -> tuple[float, str] | None:
        """p99 of ``ActionChunk.inference_latency`` on the first chunk topic that carried any,
        with where it came from (the percentile the policy node reports on /diagnostics); else
        the largest ``latency_p99_ms`` a policy node reported on /diagnostics; else ``None``."""
        for name, t in self.topics.items():
            if t.inference_latency_ns:
                _, p99_ms = percentiles_ms(t.inference_latency_ns)
                return p99_ms / 1e3, f"{name} (p99 of {len(t.inference_latency_ns)} chunks)"
        if self.diagnostics_latency_ms:
            name, ms = max(self.diagnostics_latency_ms.items(), key=lambda kv: kv[1])
            return ms / 1e3, f"/diagnostics '{name}' latency_p99_ms"
        return None

    def policy_delay_ns(self) -> tuple[int, str] | None:
        """The largest ``delay_ns`` a policy node reported on /diagnostics (the latency its own
        inference-delay estimate comes from), with where it came from; ``None`` when none did."""
        if not self.diagnostics_delay_ns:
            return None
        name, ns = max(self.diagnostics_delay_ns.items(), key=lambda kv: kv[1])
        return ns, f"/diagnostics '{name}' delay_ns"

    def inference_latency_samples_ns(self) -> list[int]:
        """The individual ``ActionChunk.inference_latency`` samples (ns, arrival order) of the
        topic :meth:`inference_latency_s` reads; ``[]`` when it reads /diagnostics or nothing."""
        return next(
            (list(t.inference_latency_ns) for t in self.topics.values() if t.inference_latency_ns), []
        )


def diagnostics_numbers(statuses: list[tuple[str, dict[str, str]]], key: str) -> dict[str, float]:
    """``key`` of each ``(status name, key -> value)`` that reports it as a finite number >= 0
    (a policy node's ``latency_p99_ms`` or ``delay_ns``, see
    :func:`vla_ros.policy.health.status_values`); ``n/a``, NaN and unparsable values are left out."""
    out = {}
    for name, values in statuses:
        try:
            number = float(values[key])
        except (KeyError, ValueError):
            continue
        if math.isfinite(number) and number >= 0:
            out[name] = number
    return out


def qos_incompatibility(pub: dict[str, Any], sub: dict[str, Any]) -> str | None:
    """Why a publisher and a subscription with these QoS never connect, or ``None``.

    Dict keys: ``reliability`` (RELIABLE/BEST_EFFORT), ``durability`` (VOLATILE/TRANSIENT_LOCAL),
    ``deadline_ns``, ``liveliness`` (AUTOMATIC/MANUAL_BY_TOPIC), ``lease_ns`` (0 or huge: infinite).
    """

    def finite(v: Any) -> bool:
        return isinstance(v, int) and 0 < v < INFINITE_NS

    if pub.get("reliability") == "BEST_EFFORT" and sub.get("reliability") == "RELIABLE":
        return "publisher is BEST_EFFORT, subscription requires RELIABLE"
    if pub.get("durability") == "VOLATILE" and sub.get("durability") == "TRANSIENT_LOCAL":
        return "publisher is VOLATILE, subscription requires TRANSIENT_LOCAL"
    sd, pd = sub.get("deadline_ns"), pub.get("deadline_ns")
    if finite(sd) and (not finite(pd) or pd > sd):
        return f"publisher deadline {pd} ns is longer than the subscription's {sd} ns"
    order = {"AUTOMATIC": 1, "MANUAL_BY_TOPIC": 3}
    if order.get(pub.get("liveliness", ""), 1) < order.get(sub.get("liveliness", ""), 1):
        return f"publisher liveliness {pub.get('liveliness')} is weaker than the subscription's"
    sl, pl = sub.get("lease_ns"), pub.get("lease_ns")
    if finite(sl) and (not finite(pl) or pl > sl):
        return f"publisher liveliness lease {pl} ns is longer than the subscription's {sl} ns"
    return None


def _visible(obs: LiveObservation) -> list[str]:
    return sorted(n for n in obs.topics if n not in HIDDEN_TOPICS)


def is_optional_input(name: str) -> bool:
    """Whether topic ``name`` (absolute) is one of :data:`OPTIONAL_INPUTS` in any namespace."""
    return any(name == f"/{s}" or name.endswith(f"/{s}") for s in OPTIONAL_INPUTS)


@check("live.topics", "topics live", args=lambda f: (f.observation, f.expected_topics), needs_live=True)
def check_topics(obs: LiveObservation, expected: list[TopicExpectation]) -> Verdict:
    """Expected topics have publishers and deliver messages during the window.

    With ``expected`` (``--topic`` / ``expected_topics``) a topic without a publisher or without
    a message FAILs. Without it every visible topic is looked at, and a topic nobody publishes
    or that stays quiet only WARNs (event topics are quiet on a healthy graph); vla_ros's
    :data:`OPTIONAL_INPUTS` are only listed (``optional_idle``).
    """
    if obs.error:
        return verdict(
            Status.FAIL,
            f"could not sample the graph: {obs.error}",
            "run through ./env.sh so rclpy and the middleware load",
        )
    explicit = bool(expected)
    names = [e.name for e in expected] or _visible(obs)
    no_pub, silent, ok, idle = [], [], [], []
    for n in names:
        t = obs.topics.get(n)
        quiet = t is None or not t.publishers or t.count == 0
        if quiet and not explicit and is_optional_input(n):
            idle.append(n)
        elif t is None or not t.publishers:
            no_pub.append(n)
        elif t.count == 0:
            silent.append(n)
        else:
            ok.append(n)
    details = {
        "checked": names,
        "no_publisher": no_pub,
        "no_messages": silent,
        "live": ok,
        "optional_idle": idle,
        "window_s": obs.window_s,
        "nodes": obs.nodes,
    }
    unmet = Status.FAIL if explicit else Status.WARN
    hint = (
        ""
        if explicit
        else "; name the topics that must be live with --topic NAME[:HZ] (doctor_node: "
        "expected_topics) to make this a FAIL"
    )
    if not names:
        return verdict(
            Status.WARN,
            "no topics in the graph (nothing publishes)",
            "start the robot drivers, or check ROS_DOMAIN_ID and discovery settings "
            "against the other machines",
            **details,
        )
    if no_pub:
        return verdict(
            unmet,
            f"no publisher on {', '.join(no_pub)}",
            "start the driver that publishes it, or remap: check `ros2 topic list` on the robot "
            "and that ROS_DOMAIN_ID / RMW_IMPLEMENTATION match across machines" + hint,
            **details,
        )
    if silent:
        errs = {n: obs.topics[n].error for n in silent if obs.topics[n].error}
        return verdict(
            unmet,
            f"publishers but no message in {obs.window_s:g} s on {', '.join(silent)}",
            "check the publisher is actually sending (driver stalled?), and the network between "
            "machines (multicast, firewall)" + hint,
            errors=errs,
            **details,
        )
    quiet = f"; optional inputs not published now: {', '.join(idle)}" if idle else ""
    return verdict(Status.PASS, f"{len(ok)} topic(s) live{quiet}", **details)


@check("live.rates", "topic rates", args=lambda f: (f.observation, f.expected_topics), needs_live=True)
def check_rates(obs: LiveObservation, expected: list[TopicExpectation]) -> Verdict:
    """Measured rates within tolerance: slower than expected FAILs, faster WARNs."""
    if obs.error:
        return verdict(Status.SKIP, "graph not sampled")
    rated = [e for e in expected if e.rate_hz]
    measured = {
        n: obs.topics[n].rate_hz(obs.window_s)
        for n in ([e.name for e in expected] or _visible(obs))
        if n in obs.topics and obs.topics[n].count
    }
    details: dict[str, Any] = {
        "measured_hz": {k: round(v, 2) for k, v in measured.items() if v},
        "expected_hz": {e.name: e.rate_hz for e in rated},
    }
    if not rated:
        return verdict(
            Status.SKIP if not measured else Status.PASS,
            "no expected rates given (--topic NAME:HZ); measured: "
            + (", ".join(f"{k} {v:.1f} Hz" for k, v in measured.items() if v) or "none"),
            **details,
        )
    slow, fast, good = [], [], []
    for e in rated:
        got = measured.get(e.name)
        if got is None:
            continue  # reported by live.topics
        lo, hi = e.rate_hz * (1 - e.tolerance), e.rate_hz * (1 + e.tolerance)
        line = f"{e.name} {got:.1f} Hz (expected {e.rate_hz:g} +-{e.tolerance:.0%})"
        (slow if got < lo else fast if got > hi else good).append(line)
    details.update(slow=slow, fast=fast, ok=good)
    if slow:
        return verdict(
            Status.FAIL,
            "too slow: " + "; ".join(slow),
            "check the driver's configured rate, exposure/bandwidth (USB, network), and "
            "CPU load on the publishing machine",
            **details,
        )
    if fast:
        return verdict(
            Status.WARN,
            "faster than expected: " + "; ".join(fast),
            "lower the driver's rate or update the expected rate",
            **details,
        )
    if not good:
        return verdict(Status.SKIP, "no expected topic delivered messages", **details)
    return verdict(Status.PASS, "; ".join(good), **details)


@check("live.clock", "stamp vs receive time", args=lambda f: (f.observation,), needs_live=True)
def check_clock_offset(obs: LiveObservation) -> Verdict:
    """Header stamp vs receive time: the median offset over 25 ms warns, over 1 s fails."""
    if obs.error:
        return verdict(Status.SKIP, "graph not sampled")
    per_topic: dict[str, dict[str, float]] = {}
    zero = []
    for n, t in obs.topics.items():
        if t.zero_stamps:
            zero.append(n)
        if t.offsets_ns:
            med = statistics.median(t.offsets_ns) / 1e9
            per_topic[n] = {
                "median_ms": round(med * 1e3, 3),
                "max_abs_ms": round(max(abs(v) for v in t.offsets_ns) / 1e6, 3),
                "samples": len(t.offsets_ns),
            }
    details = {"offsets": per_topic, "zero_stamps": zero}
    if not per_topic and not zero:
        return verdict(Status.SKIP, "no stamped messages received", **details)
    worst_topic = max(per_topic, key=lambda k: abs(per_topic[k]["median_ms"]), default=None)
    worst_ms = abs(per_topic[worst_topic]["median_ms"]) if worst_topic else 0.0
    if worst_topic and worst_ms > CLOCK_FAIL_S * 1e3:
        return verdict(
            Status.FAIL,
            f"{worst_topic}: stamps {per_topic[worst_topic]['median_ms']:.0f} ms off the receive "
            "time (another clock: sim vs wall time, or an unsynchronized machine)",
            "synchronize clocks (chrony/PTP) between machines; use use_sim_time only with a /clock publisher",
            **details,
        )
    if zero:
        return verdict(
            Status.WARN,
            f"zero header stamps on {', '.join(zero)}",
            "make the driver stamp messages (header.stamp = capture time)",
            **details,
        )
    if worst_topic and worst_ms > CLOCK_WARN_S * 1e3:
        return verdict(
            Status.WARN,
            f"{worst_topic}: median offset {per_topic[worst_topic]['median_ms']:.1f} ms between "
            "header stamp and receive time (over 25 ms)",
            "synchronize clocks (chrony/PTP) between machines, and check transport latency",
            **details,
        )
    return verdict(Status.PASS, f"worst median offset {worst_ms:.1f} ms ({worst_topic})", **details)


@check("live.sim_time", "use_sim_time vs /clock", args=lambda f: (f.observation,), needs_live=True)
def check_sim_time(obs: LiveObservation) -> Verdict:
    """``use_sim_time`` and ``/clock`` agree: nodes on sim time have a ``/clock`` that ticks, and a
    ``/clock`` is not published while no node uses sim time.

    The last case WARNs: a simulator or ``ros2 bag play --clock`` then stamps sim time while every
    node judges stamps against wall-clock time, so the nodes see stamps years away from their
    clock (vla_ros nodes say "stamps are off the node clock").
    """
    if obs.error:
        return verdict(Status.SKIP, "graph not sampled")
    details = {
        "sim_time_nodes": obs.sim_time_nodes,
        "clock_publishers": obs.clock_publishers,
        "clock_publisher_nodes": obs.clock_publisher_nodes,
        "clock_messages": obs.clock_messages,
        "nodes_queried": obs.nodes_queried,
    }
    by = f" by {', '.join(obs.clock_publisher_nodes)}" if obs.clock_publisher_nodes else ""
    if obs.sim_time_nodes and obs.clock_publishers == 0:
        return verdict(
            Status.FAIL,
            f"use_sim_time is true on {', '.join(obs.sim_time_nodes)} but nobody publishes /clock: "
            "their time stands still",
            "start the simulator or `ros2 bag play --clock`, or set use_sim_time:=false",
            **details,
        )
    if obs.sim_time_nodes and obs.clock_messages == 0:
        return verdict(
            Status.FAIL,
            f"/clock is published{by} but no message arrived in {obs.window_s:.1f} s: time stands "
            f"still on {', '.join(obs.sim_time_nodes)} (a paused bag or simulator?)",
            "resume the bag (space in `ros2 bag play`) or the simulator; vla_ros nodes hold "
            "(their liveness runs on a steady clock)",
            **details,
        )
    if obs.sim_time_nodes:
        return verdict(
            Status.PASS,
            f"{len(obs.sim_time_nodes)} node(s) on sim time, /clock published",
            **details,
        )
    if obs.clock_publishers:
        asked = (
            f"none of the {len(obs.nodes_queried)} node(s) asked uses sim time"
            if obs.nodes_queried
            else "no node answered whether it uses sim time"
        )
        return verdict(
            Status.WARN,
            f"/clock is published{by} but {asked}: messages stamped with that sim time look "
            "far from the nodes' wall-clock time (policy and executor reject them as stamped "
            "off the node clock)",
            "set use_sim_time:=true on every node (drivers, robot_state_publisher, policy_node, "
            "executor_node) when a simulator or `ros2 bag play --clock` drives time; otherwise "
            "stop the /clock publisher",
            **details,
        )
    return verdict(Status.PASS, "wall time, no /clock", **details)


@check("live.qos", "QoS compatibility", args=lambda f: (f.observation,), needs_live=True)
def check_qos(obs: LiveObservation) -> Verdict:
    """No publisher/subscription pair on a sampled topic has incompatible QoS."""
    if obs.error:
        return verdict(Status.SKIP, "graph not sampled")
    bad = []
    for n, t in sorted(obs.topics.items()):
        for p in t.publishers:
            for s in t.subscribers:
                why = qos_incompatibility(p, s)
                if why:
                    bad.append(f"{n}: {p.get('node')} -> {s.get('node')}: {why}")
    details = {"incompatible": bad, "topics": sorted(obs.topics)}
    if bad:
        return verdict(
            Status.FAIL,
            bad[0] + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""),
            "make the subscription BEST_EFFORT/VOLATILE (sensor data QoS) or the "
            "publisher RELIABLE; `ros2 topic info -v TOPIC` shows both",
            **details,
        )
    return verdict(Status.PASS, "no incompatible QoS pairs", **details)


@dataclass(frozen=True)
class PolicyJoints:
    """The robot joint names policy_node reads (``state_joints``) and commands (``action_joints``):
    its parameters from ``--params`` when they rename the card's joints, else the card's own.

    ``source`` says where they came from (``"the card"`` or ``"FILE (policy_node)"``); ``error``
    is why the parameter file's names cannot be used (the node would refuse them), else None.
    """

    state_joints: tuple[str, ...]
    action_joints: tuple[str, ...]
    source: str = "the card"
    error: str | None = None

    @property
    def renamed(self) -> bool:
        """Whether the names come from the parameter file (not the card's own)."""
        return self.source != "the card"


@check(
    "live.joints",
    "joint names",
    args=lambda f: (f.observation, f.card, f.policy_joints),
    needs_live=True,
)
def check_joints(
    obs: LiveObservation,
    card: PolicyCard | None,
    joints: PolicyJoints | None = None,
    topic: str = "/joint_states",
) -> Verdict:
    """``/joint_states`` names cover every joint policy_node reads or commands: the card's
    joints under the names ``joints`` gives them (policy_node's ``state_joints`` /
    ``action_joints``; None: the card's own names)."""
    if card is None:
        return verdict(Status.SKIP, "no policy card given (--card DIR)")
    if joints is not None and joints.error:
        return verdict(
            Status.FAIL,
            f"policy_node's joint names in {joints.source} cannot be used: {joints.error}",
            "list one robot joint per card joint, in the card's order, or leave them empty",
        )
    if obs.error:
        return verdict(Status.SKIP, "graph not sampled")
    joints = joints or PolicyJoints(tuple(card.state_joints), tuple(card.action_joints))
    want = list(dict.fromkeys([*joints.state_joints, *joints.action_joints]))
    t = obs.topics.get(topic)
    if t is None or not t.count:
        return verdict(Status.SKIP, f"no {topic} message received", expected=want)
    have = t.joint_names
    missing = [j for j in want if j not in have]
    details = {"expected": want, "published": have, "missing": missing, "names_from": joints.source}
    whose = f"policy_node's joints (state_joints/action_joints of {joints.source})"
    if not joints.renamed:
        whose = "the card's joints (policy_node renames none: no state_joints/action_joints in --params)"
    if missing:
        fix = (
            f"remap to the right joint_states topic, or correct policy_node's state_joints / "
            f"action_joints in {joints.source} (one robot joint per card joint, in the card's order)"
            if joints.renamed
            else "remap to the right joint_states topic, or give policy_node the robot's names for "
            "the card's joints: state_joints / action_joints (one per card joint, in the card's "
            "order) in its parameter file, and pass it as --params"
        )
        return verdict(
            Status.FAIL,
            f"{topic} lacks {len(missing)} of {whose}: {', '.join(missing)}",
            fix,
            **details,
        )
    return verdict(Status.PASS, f"{topic} covers all {len(want)} of {whose}", **details)


@dataclass(frozen=True)
class _LiveFacts:
    """The facts the live checks read (the part of :class:`~vla_ros.doctor.facts.Facts` they use)."""

    observation: LiveObservation
    expected_topics: list[TopicExpectation]
    card: PolicyCard | None
    policy_joints: PolicyJoints | None = None


def live_checks(
    obs: LiveObservation,
    expected: list[TopicExpectation],
    card: PolicyCard | None,
    joints: PolicyJoints | None = None,
) -> list[CheckResult]:
    """Every registered live check on one observation, in report order (``joints``: the names
    policy_node uses for the card's joints, None: the card's own)."""
    from vla_ros.doctor.registry import checks

    facts = _LiveFacts(obs, expected, card, joints)
    return [spec.run(facts) for spec in checks(["live"])]
