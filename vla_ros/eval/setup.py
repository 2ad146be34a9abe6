"""Build a replay from the same parameter YAML the robot runs (``config/vla.yaml``).

The ``policy_node`` and ``executor_node`` sections are validated against the nodes' own
parameter tables (:mod:`vla_ros.policy.params`, :mod:`vla_ros.executor.params`), and the
policy step, the controller configuration and the joint limits are built by the same functions
the nodes call. Relative topic names resolve in ``namespace`` as the nodes' would, and the YAML's
sections apply exactly as rcl applies them to the nodes in that namespace.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vla_ros.control.controller import ControllerConfig
from vla_ros.control.safety import JointLimits, arming_refusal
from vla_ros.control.urdf import UrdfError, parse_urdf_limits
from vla_ros.eval.bag import JOINT_STATE_TYPE, STRING_TYPE, BagSource, observation_topics, resolve_topic
from vla_ros.eval.replay import ReplayTopics
from vla_ros.executor import params as ep
from vla_ros.executor.core import ExecutorCore
from vla_ros.policy import (
    PolicyStep,
    parse_cameras,
)
from vla_ros.policy.params import PARAMS as POLICY_PARAMS
from vla_ros.policy.step import LogFn
from vla_ros.util.param_files import (
    ParamsFileError,
    fully_qualified_name,
    merged_params,
    mismatch_warning,
    read_params,
)
from vla_ros.util.params import resolve


@dataclass(frozen=True)
class NodeValues:
    """Validated parameter values of both nodes."""

    policy: dict[str, Any]
    executor: dict[str, Any]


def load_values(
    params_file: str | Path | None,
    policy_overrides: Mapping[str, Any] | None = None,
    executor_overrides: Mapping[str, Any] | None = None,
    namespace: str = "/",
) -> NodeValues:
    """Both nodes' values: defaults, then the YAML's sections, then the overrides; all validated.

    A section applies exactly when rcl would apply it to ``<namespace>/policy_node`` or
    ``<namespace>/executor_node`` (:func:`vla_ros.util.param_files.key_matches`): a file keyed
    ``executor_node:`` does not reach ``/arm/executor_node``. Raises ``ValueError``
    (:class:`~vla_ros.util.param_files.ParamsFileError` for the file) when the file is unreadable,
    when none of its sections reaches either node (the robot would run on defaults), or for a
    key or value the node would reject. One node without a section is noted on stderr.
    """
    policy: dict[str, Any] = {}
    executor: dict[str, Any] = {}
    fqns = {n: fully_qualified_name(n, namespace) for n in ("policy_node", "executor_node")}
    source = "defaults"
    if params_file:
        source = str(params_file)
        pf = read_params(params_file)
        policy = merged_params([pf], fqns["policy_node"])
        executor = merged_params([pf], fqns["executor_node"])
        missing = [mismatch_warning([pf], fqn) for fqn in fqns.values()]
        if all(missing):
            raise ParamsFileError(f"--params {params_file}: {missing[1]}")
        for note in filter(None, missing):
            print(f"vla-ros: --params {params_file}: {note}", file=sys.stderr)
    policy.update(policy_overrides or {})
    executor.update(executor_overrides or {})
    return NodeValues(
        policy=resolve(POLICY_PARAMS, policy, source=f"{source} [{fqns['policy_node']}]"),
        executor=resolve(ep.SPECS, executor, source=f"{source} [{fqns['executor_node']}]"),
    )


def load_policy_step(values: Mapping[str, Any], card: str | Path, log: LogFn | None = None) -> PolicyStep:
    """The policy node's :class:`PolicyStep` for ``card`` with the policy_node ``values``, built by
    the same functions the node uses (:mod:`vla_ros.policy.from_params`)."""
    from vla_ros.policy.from_params import runtime_from_params, step_from_params

    values = {**values, "card": str(card)}
    runtime = runtime_from_params(values, who="vla-ros eval")
    if values["warmup"]:
        runtime.warmup(values["warmup"])  # as the node does before subscribing: no cold first inferences
    return step_from_params(runtime, values, log=log)


def replay_topics(
    values: Mapping[str, Any],
    step: PolicyStep,
    bag: BagSource,
    *,
    namespace: str = "/",
    reference: str | None = None,
) -> ReplayTopics:
    """The bag topics for the card's cameras, joint states, instruction and reference; checked."""
    cameras = parse_cameras(values["cameras"], tuple(step.runtime.card.io.camera_names))
    observed = observation_topics(bag, cameras, namespace, reader="the replay")
    ref = resolve_topic(reference, namespace) if reference else None
    if ref:
        bag.require(ref, (JOINT_STATE_TYPE,), "reference", param="--reference")
    return ReplayTopics(
        cameras=observed.cameras,
        joint_states=observed.joint_states,
        instruction=observed.instruction,
        reference=ref,
    )


@dataclass(frozen=True)
class ExecutorSetup:
    """The executor's parameters, joints and URDF limits, and how the limits were found.

    :meth:`core` builds the same :class:`~vla_ros.executor.core.ExecutorCore` the node runs.
    """

    values: Mapping[str, Any]
    joint_names: tuple[str, ...]
    urdf: Mapping[str, Any]
    note: str

    @property
    def config(self) -> ControllerConfig:
        """The controller configuration these parameters give."""
        return ep.controller_config(self.values, self.joint_names)

    @property
    def limits(self) -> JointLimits:
        """The limits the node would merge from these parameters and the URDF."""
        return ep.joint_limits(self.values, self.joint_names, self.urdf)

    def with_values(self, values: Mapping[str, Any]) -> ExecutorSetup:
        """The same joints and URDF with other parameter values (a tuning candidate)."""
        return dataclasses.replace(self, values=dict(values))

    def core(self, armed: bool = True) -> ExecutorCore:
        """A fresh executor core for the replay, armed from the start when ``armed``.

        The node refuses to arm without complete limits; the replay arms anyway and applies the
        limits that are set (``allow_unlimited``), as :attr:`note` says.
        """
        core = ExecutorCore({**self.values, "allow_unlimited": True, "armed_on_start": armed}, urdf=self.urdf)
        core.adopt(self.joint_names)
        return core


def executor_setup(
    values: Mapping[str, Any],
    joint_names: tuple[str, ...],
    bag: BagSource | None = None,
    namespace: str = "/",
) -> ExecutorSetup:
    """Controller configuration and limits as the executor node builds them.

    URDF limits come from the ``robot_description`` parameter, or else from the last URDF recorded
    on ``robot_description_topic`` (in ``namespace``; empty = none) in ``bag``; a URDF that cannot
    be read is ignored, as the node ignores it. Without any position/velocity limits the replay
    runs unfiltered (the node would refuse to arm); ``note`` says so.
    """
    names = tuple(values["joint_names"]) or joint_names
    urdf = ep.urdf_limits(values)
    source = "parameters"
    topic = values["robot_description_topic"]
    topic = resolve_topic(topic, namespace) if topic else ""
    if not urdf and bag is not None and topic and bag.optional(topic, (STRING_TYPE,)):
        text = ""
        for _, _, msg in bag.messages([topic]):
            text = msg.data
        try:
            urdf = parse_urdf_limits(text)
            source = f"parameters + the bag's {topic}"
        except UrdfError as exc:
            source = f"parameters (the bag's {topic} was ignored: {exc})"
    limits = ep.joint_limits(values, names, urdf)
    note = f"limits from {source}: {ep.describe_limits(limits)}"
    if arming_refusal(limits, allow_unlimited=False):
        position, velocity = limits.missing()
        note = (
            f"limits from {source} lack position limits for {position or 'no joint'} and velocity limits "
            f"for {velocity or 'no joint'}: the executor node would refuse to arm; the replay applies "
            "only the limits that are set (max_jump, ...)"
        )
    ep.controller_config(values, names)  # raises ConfigError naming a bad parameter, now
    return ExecutorSetup(dict(values), names, urdf, note)
