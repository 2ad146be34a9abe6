"""policy_node parameter values -> a :class:`PolicyStep`, at start and on live changes.

The node builds its step here from its parameters (after the card loaded); a live parameter
change goes through :func:`apply_params`. Parameter meanings: :mod:`vla_ros.policy.params`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vla_ros.policy.config import make_assembler, resolve_joint_names, runtime_options, staleness_limits
from vla_ros.policy.step import LogFn, PolicyStep
from vla_ros.util.faults import FaultLog
from vla_ros.util.ns import seconds_to_ns

#: the staleness parameters, in :func:`~vla_ros.policy.config.staleness_limits` order (live)
STALENESS_PARAMS = ("image_staleness_s", "state_staleness_s", "future_tolerance_s")
#: parameters the step reads that may change while the node waits for its card or runs
LIVE_PARAMS = (
    "instruction",
    "rate_hz",
    "depth_max_m",
    "max_image_pixels",
    "horizon_margin_steps",
    "committed_max_age_s",
    *STALENESS_PARAMS,
)
#: fault cause prefixes whose episodes settle (a flapping camera or joint_states: one episode)
SETTLING_SOURCES = ("image:", "joint_states:")


def runtime_from_params(values: Mapping[str, Any], who: str = "policy_node") -> Any:
    """Load the runtime for the ``card`` parameter with ``backend``, ``device`` and ``threads``.

    Raises:
        ValueError: ``card`` is empty (``who`` names the node in the message, with the fix).
        VlaRosError: the card cannot be loaded (missing, corrupt, built for another platform).
    """
    from vla_ros.runtime import load_runtime  # heavy: torch/onnxruntime

    card = values["card"]
    if not card:
        raise ValueError(
            f"{who}: parameter 'card' is empty; set it to a policy card folder "
            "made by `vla-ros export` (in the params YAML or with -p card:=/path/to/card)"
        )
    backend = values["backend"]
    return load_runtime(
        card, backend=backend, **runtime_options(backend, values["device"], values["threads"])
    )


def step_from_params(
    runtime: Any,
    values: Mapping[str, Any],
    *,
    log: LogFn | None = None,
    liveness_clock: Callable[[], int] | None = None,
) -> PolicyStep:
    """The policy step for a loaded ``runtime`` and the policy_node parameter ``values``.

    ``liveness_clock`` (ns; a node passes ``time.monotonic_ns``) judges input liveness by arrival
    time, so a stopped ``/clock`` still trips it.

    Raises:
        ValueError: joint names that do not fit the card (naming the parameter and the fix).
    """
    card = runtime.card
    state_joints = resolve_joint_names("state_joints", values["state_joints"], card.state_joints)
    action_joints = resolve_joint_names("action_joints", values["action_joints"], card.action_joints)
    limits = staleness_limits(*(values[k] for k in STALENESS_PARAMS))
    assembler = make_assembler(
        card.io,
        state_joints,
        limits,
        history_dt_s=values["obs_history_dt_s"],
        liveness_clock=liveness_clock,
    )
    return PolicyStep(
        runtime,
        assembler,
        action_joints=action_joints,
        instruction=values["instruction"],
        depth_max_m=values["depth_max_m"],
        log=log,
        infer_on=values["infer_on"],
        max_image_pixels=values["max_image_pixels"],
        committed_max_age_ns=seconds_to_ns(values["committed_max_age_s"]),
        faults=FaultLog(settle_ns=seconds_to_ns(values["fault_settle_s"]), settle_prefixes=SETTLING_SOURCES),
    )


def apply_params(step: PolicyStep, changes: Mapping[str, Any], current: Callable[[str], Any]) -> None:
    """Apply live parameter ``changes`` (name -> value) that the step uses: ``instruction``,
    ``depth_max_m``, ``max_image_pixels``, ``committed_max_age_s`` and the staleness limits
    (:data:`STALENESS_PARAMS`; those not in ``changes`` read with ``current(name)``)."""
    if "instruction" in changes:
        step.instruction = str(changes["instruction"])
    if "depth_max_m" in changes:
        step.depth_max_m = float(changes["depth_max_m"])
    if "max_image_pixels" in changes:
        step.max_image_pixels = int(changes["max_image_pixels"])
    if "committed_max_age_s" in changes:
        step.tracker.max_age_ns = seconds_to_ns(changes["committed_max_age_s"])
    if any(k in changes for k in STALENESS_PARAMS):
        merged = [changes[k] if k in changes else current(k) for k in STALENESS_PARAMS]
        step.assembler.limits = staleness_limits(*merged)
