"""What the doctor finds out, gathered once per run and only when a check asks (facts, not verdicts).

:class:`Facts` is the one place a run gathers data: the ROS environment (:func:`ros_env.ros_facts`),
the RMW library and network interfaces (:func:`middleware.rmw_facts`,
:func:`middleware.network_interfaces`), the workspace (:func:`workspace.find_workspace`),
the Python stack (:func:`ros_env.probe_python`), the Jetson and NVIDIA driver
(:func:`gpu.jetson_info`, :func:`gpu.nvidia_driver_present`), torch's CUDA
(:func:`gpu.probe_torch`), TensorRT and the card's engines (:func:`inference.probe_tensorrt`), the
policy card (:func:`card_checks.load_card`), the executor's settings (a parameter YAML), the live
graph (:mod:`vla_ros.doctor.live_ros`) and the measured inference latency. Each is a cached
property: computed the first time a registered judgement reads it (so ``--only ros`` imports no
torch and samples no graph), then shared by every judgement of the run. The judgements
(:mod:`vla_ros.doctor.registry`) turn these into PASS / WARN / FAIL with a fix.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vla_ros.doctor import card_checks, gpu, inference, live, middleware, ros_env, workspace
from vla_ros.doctor.result import DoctorContext

if TYPE_CHECKING:
    from vla_ros.contract.card import PolicyCard
    from vla_ros.doctor.report import DoctorOptions


@dataclass(frozen=True)
class Latency:
    """A measured inference latency (observation stamp -> chunk published) and where it came from.

    Attributes:
        seconds: the latency the card checks judge (a p99 of live chunks, the flag, or the card's).
        source: where it came from, for the report.
        samples_ns: the individual live samples, in arrival order (empty when not live), ns.
    """

    seconds: float
    source: str
    samples_ns: tuple[int, ...] = ()


class Facts:
    """The facts of one doctor run on ``ctx`` with ``opts`` (``live_obs``: a graph sampled by the
    caller, as doctor_node does; otherwise sampled here when ``opts.live_s > 0``)."""

    def __init__(
        self, ctx: DoctorContext, opts: DoctorOptions, live_obs: live.LiveObservation | None = None
    ) -> None:
        self.ctx = ctx
        self.opts = opts
        self.want = set(opts.groups)
        self._live_obs = live_obs

    # -- ROS environment, middleware -----------------------------------------------------------
    @cached_property
    def ros(self) -> ros_env.RosFacts:
        """The sourced ROS environment (:func:`ros_env.ros_facts`)."""
        return ros_env.ros_facts(self.ctx)

    @cached_property
    def rmw(self) -> middleware.RmwFacts:
        """The RMW library, found and test-loaded (:func:`middleware.rmw_facts`)."""
        return middleware.rmw_facts(self.ctx, load=True)

    @cached_property
    def interfaces(self) -> dict[str, dict]:
        """The network interfaces (:func:`middleware.network_interfaces`)."""
        return middleware.network_interfaces(self.ctx)

    # -- Python, workspace ---------------------------------------------------------------------
    @cached_property
    def python_probe(self) -> dict[str, Any]:
        """:func:`ros_env.probe_python` (imports in a fresh interpreter); ``{}`` when no group
        that reads it runs."""
        if not self.want & {"python", "inference", "gpu"}:
            return {}
        t0 = time.perf_counter()
        probe = ros_env.probe_python(self.ctx)
        probe["_duration_s"] = time.perf_counter() - t0
        return probe

    @property
    def module_file(self) -> str | None:
        """Where this process imports vla_ros from (the options' ``module_file``)."""
        return self.opts.module_file

    @cached_property
    def registered_prefixes(self) -> list[Path]:
        """The ament prefixes registering vla_ros, in order
        (:func:`workspace.ament_prefixes_with_package`)."""
        return workspace.ament_prefixes_with_package(self.ctx)

    @cached_property
    def workspace(self) -> workspace.Workspace | None:
        """The colcon workspace under test (:func:`workspace.find_workspace`)."""
        return workspace.find_workspace(self.ctx, self.opts.workspace, self.opts.module_file)

    # -- GPU -----------------------------------------------------------------------------------
    @cached_property
    def jetson(self) -> dict[str, Any] | None:
        """:func:`gpu.jetson_info` (``None``: not a Jetson)."""
        return gpu.jetson_info(self.ctx)

    @cached_property
    def gpu_present(self) -> bool:
        """A Jetson or an NVIDIA driver is on this machine."""
        return self.jetson is not None or gpu.nvidia_driver_present(self.ctx)

    @property
    def gpu_expected(self) -> bool:
        """A GPU is there and the GPU probes are on (``--no-gpu`` expects none)."""
        return self.opts.gpu and self.gpu_present

    @property
    def installed(self) -> dict[str, Any]:
        """Which of torch / tensorrt / ... are installed (from :attr:`python_probe`)."""
        return self.python_probe.get("installed", {})

    @property
    def torch_version(self) -> str | None:
        """The installed torch distribution's version, read without importing torch."""
        return (self.python_probe.get("dists") or {}).get("torch")

    @property
    def gpu_skipped(self) -> str | None:
        """Why the GPU probes did not run (``--no-gpu``), or ``None``."""
        return None if self.opts.gpu else "GPU checks skipped (--no-gpu)"

    @cached_property
    def torch_probe(self) -> dict[str, Any] | None:
        """:func:`gpu.probe_torch` when a GPU can be there and torch is installed, else ``None``."""
        if not self.opts.gpu or not self.want & {"gpu", "inference"}:
            return None
        if self.gpu_present and self.installed.get("torch"):
            return gpu.probe_torch(self.ctx, timeout=self.opts.gpu_timeout_s)
        return None

    @property
    def machine_cc(self) -> str | None:
        """This machine's CUDA compute capability (torch's first device, else the Jetson SoC's)."""
        probe, jet = self.torch_probe, self.jetson
        if probe and probe.get("devices"):
            return probe["devices"][0]["capability"]
        return jet.get("compute_capability") if jet else None

    # -- card, TensorRT ------------------------------------------------------------------------
    @cached_property
    def card_load(self) -> card_checks.CardLoad | None:
        """:func:`card_checks.load_card` of ``--card`` (``None``: no card given)."""
        return card_checks.load_card(self.opts.card) if self.opts.card is not None else None

    @property
    def card(self) -> PolicyCard | None:
        """The loaded card, or ``None`` (none given, or it did not load)."""
        return self.card_load.card if self.card_load else None

    @cached_property
    def trt_probe(self) -> dict[str, Any] | None:
        """:func:`inference.probe_tensorrt` (with the card's engines) when TensorRT is installed
        and the GPU probes are on, else ``None``."""
        if not (self.opts.gpu and self.installed.get("tensorrt") and "inference" in self.want):
            return None
        card = self.card
        engines = [card.root / card.files[r] for r in inference.engine_roles(card)] if card else []
        built = (card.export.get("tensorrt") if card is not None else None) or {}
        return inference.probe_tensorrt(
            self.ctx,
            [p for p in engines if p.is_file()],
            timeout=max(self.opts.gpu_timeout_s, 30.0),
            host_code=bool(built.get("version_compatible")),
        )

    # -- executor settings ---------------------------------------------------------------------
    @cached_property
    def executor_settings(self) -> ExecutorSettings:
        """The executor's chunk-timing parameters from ``--params`` (defaults without it)."""
        return read_executor_settings(self.opts.params, self.opts.namespace)

    @cached_property
    def policy_joints(self) -> live.PolicyJoints | None:
        """The joint names policy_node uses for the card's joints (``--params``' policy_node
        ``state_joints`` / ``action_joints``, else the card's); None without a card."""
        card = self.card
        if card is None:
            return None
        return read_policy_joints(self.opts.params, card, self.opts.namespace)

    # -- live graph, latency -------------------------------------------------------------------
    @property
    def expected_topics(self) -> list[live.TopicExpectation]:
        """The topics that must be live (``--topic`` / ``expected_topics``)."""
        return list(self.opts.topics)

    @cached_property
    def observation(self) -> live.LiveObservation | None:
        """The sampled graph: the caller's, else sampled now for ``opts.live_s`` seconds when the
        live group runs; ``None`` when not sampled."""
        if self._live_obs is not None:
            return self._live_obs
        if self.opts.live_s > 0 and "live" in self.want:
            return _sample(self.opts, self.card)
        return None

    @cached_property
    def latency(self) -> Latency | None:
        """The inference latency to judge the card's timing with: ``--latency-ms``, else the live
        ActionChunks' p99 (or the policy node's /diagnostics), else ``None`` (the card's own
        record is read by the judgement)."""
        if self.opts.latency_ms is not None:
            return Latency(self.opts.latency_ms / 1e3, "--latency-ms")
        obs = self.observation
        if obs is None or obs.error:
            return None
        found = obs.inference_latency_s()
        if found is None:
            return None
        return Latency(found[0], found[1], tuple(obs.inference_latency_samples_ns()))

    @property
    def policy_delay(self) -> tuple[int, str] | None:
        """The latency a running policy node's own delay estimate comes from (its /diagnostics
        ``delay_ns``), ns, unless ``--latency-ms`` overrides the measurement; else ``None``."""
        obs = self.observation
        if self.opts.latency_ms is not None or obs is None or obs.error:
            return None
        return obs.policy_delay_ns()

    @property
    def latency_s(self) -> float | None:
        """:attr:`latency` in seconds, or ``None``."""
        return self.latency.seconds if self.latency else None

    @property
    def latency_source(self) -> str:
        """Where :attr:`latency` came from ('' when unknown)."""
        return self.latency.source if self.latency else ""


@dataclass(frozen=True)
class ExecutorSettings:
    """The executor parameters that decide how much of a chunk is used, and where they came from.

    Attributes:
        max_chunk_age_s: a chunk is used at most this long after its start (0: whole horizon), s.
        time_offset_s: added to chunk stamps (action 0 due at stamp + offset), s.
        source: the parameter file and node they were read for, or "executor defaults".
        error: why the file could not be read (then the defaults apply).
    """

    max_chunk_age_s: float = 0.0
    time_offset_s: float = 0.0
    source: str = "executor defaults"
    error: str | None = None


def read_executor_settings(params: Any, namespace: str = "/") -> ExecutorSettings:
    """``executor_node``'s ``max_chunk_age_s`` / ``time_offset_s`` from the parameter YAML
    ``params`` (as the node in ``namespace`` would get them; missing keys take the executor's
    defaults). Never raises: an unreadable file comes back with ``error`` set."""
    from vla_ros.executor.params import SPEC_BY_NAME

    defaults = {k: float(SPEC_BY_NAME[k].default) for k in ("max_chunk_age_s", "time_offset_s")}
    if params is None:
        return ExecutorSettings(**defaults)
    from vla_ros.util.params import node_section

    try:
        section = node_section(params, "executor_node", namespace)
        values = {k: float(SPEC_BY_NAME[k].coerce(section.get(k, v))) for k, v in defaults.items()}
    except (OSError, ValueError) as exc:
        return ExecutorSettings(**defaults, source=f"{params}", error=str(exc))
    return ExecutorSettings(**values, source=f"{params} (executor_node)")


def read_policy_joints(params: Any, card: PolicyCard, namespace: str = "/") -> live.PolicyJoints:
    """The robot names policy_node gives ``card``'s state and action joints: ``state_joints`` /
    ``action_joints`` of the policy_node section(s) that apply to the node in ``namespace`` in
    the parameter YAML ``params`` (rcl's matching: :func:`vla_ros.util.params.node_section`), each
    the card's own names when absent or empty. Never raises: an unreadable file, or names the
    node would refuse (not a list of names, another count than the card's), come back with
    ``error`` set and the card's names."""
    from vla_ros.policy.config import resolve_joint_names
    from vla_ros.util.params import node_section

    own = live.PolicyJoints(tuple(card.state_joints), tuple(card.action_joints))
    if params is None or str(params) == "":
        return own
    source = f"{params} (policy_node)"
    try:
        section = node_section(params, "policy_node", namespace)
        names = {}
        for key, card_names in (("state_joints", own.state_joints), ("action_joints", own.action_joints)):
            given = section.get(key, [])
            if not isinstance(given, list) or not all(isinstance(n, str) for n in given):
                raise ValueError(f"parameter {key} is {given!r}; it must be a list of joint names")
            names[key] = resolve_joint_names(key, given, card_names)
    except (OSError, ValueError) as exc:
        return live.PolicyJoints(own.state_joints, own.action_joints, source, error=str(exc))
    if not section.get("state_joints") and not section.get("action_joints"):
        return own
    return live.PolicyJoints(names["state_joints"], names["action_joints"], source)


def _sample(opts: DoctorOptions, card: PolicyCard | None) -> live.LiveObservation:
    try:
        from vla_ros.doctor import live_ros
    except Exception as exc:
        return live.LiveObservation(opts.live_s, error=f"rclpy does not import: {exc}")
    extra = ("/joint_states",) if card else ()
    try:
        return live_ros.sample_graph(opts.topics, opts.live_s, extra_topics=extra)
    except Exception as exc:
        return live.LiveObservation(opts.live_s, error=f"{type(exc).__name__}: {exc}")
