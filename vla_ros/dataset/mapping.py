"""Which bag topics feed which dataset feature: the same mapping the nodes use.

From the parameter YAML the robot runs (``policy_node`` / ``executor_node`` sections, validated
by :func:`vla_ros.eval.setup.load_values`) and, when one is set, the policy card:

- ``observation.images.<camera>``: the card's cameras with policy_node ``cameras`` overrides
  (``name=topic``; a camera left out reads ``camera/<name>/image_raw``), as
  :func:`vla_ros.policy.parse_cameras`; without a card, the ``cameras`` entries alone;
- ``observation.state``: ``<namespace>/joint_states``, joints named by policy_node
  ``state_joints``, else the card's ``state_joints``, else executor_node ``joint_names``, else
  the names of the bag's first joint state;
- ``action``: the executor's command topic for its ``output_type`` (``vla/joint_command``
  JointState, ``commands`` Float64MultiArray in ``joint_names`` order, ``joint_trajectory``
  JointTrajectory's first point), or ``--action-topic`` (e.g. a leader arm's joint states);
  where none was recorded, the next frame's measured state. Joints: ``action_joints``, else the
  card's, else ``joint_names``, else the state joints;
- the task: ``<namespace>/vla/instruction`` (std_msgs/String), else policy_node ``instruction``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vla_ros.contract.errors import VlaRosError
from vla_ros.eval.bag import JOINT_STATE_TYPE, BagSource, observation_topics, resolve_topic
from vla_ros.policy.config import parse_cameras

FLOAT_ARRAY_TYPE = "std_msgs/msg/Float64MultiArray"
TRAJECTORY_TYPE = "trajectory_msgs/msg/JointTrajectory"
COMMAND_TYPES = (JOINT_STATE_TYPE, FLOAT_ARRAY_TYPE, TRAJECTORY_TYPE)
#: executor output_type -> (topic relative to the namespace, message type); executor_node.py
EXECUTOR_OUTPUTS = {
    "joint_state": ("vla/joint_command", JOINT_STATE_TYPE),
    "float64_multi_array": ("commands", FLOAT_ARRAY_TYPE),
    "joint_trajectory": ("joint_trajectory", TRAJECTORY_TYPE),
}


class DatasetError(VlaRosError, ValueError):
    """The conversion cannot run on this input; the message names the thing and the fix."""


@dataclass(frozen=True)
class TopicMap:
    """Bag topics (fully qualified) and joint names of each dataset feature."""

    cameras: dict[str, str]
    joint_states: str
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    action_topic: str | None  # None: the action is the next frame's state
    action_type: str | None
    instruction: str | None
    notes: tuple[str, ...] = ()


def topic_map(
    bag: BagSource,
    policy: dict[str, Any],
    executor: dict[str, Any],
    card: Any | None,
    *,
    namespace: str = "/",
    action: str = "auto",
    action_topic: str | None = None,
) -> TopicMap:
    """The :class:`TopicMap` for ``bag``; every topic checked against what the bag recorded.

    ``policy`` / ``executor``: the nodes' validated values; ``card``: a
    :class:`~vla_ros.contract.card.PolicyCard` or None. ``action``: ``auto`` (command topic when
    recorded, else the next state), ``command`` (the command topic is required) or
    ``next_state``. Raises :class:`DatasetError` (or :class:`~vla_ros.eval.bag.BagError`)
    naming a missing topic, a wrong type or joint names that do not fit.
    """
    notes: list[str] = []
    card_cams = tuple(card.io.camera_names) if card is not None else ()
    entries = list(policy["cameras"])
    try:
        if card is not None:
            cams = parse_cameras(entries, card_cams)
        else:
            cams = parse_cameras(entries, tuple(e.partition("=")[0].strip() for e in entries))
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    observed = observation_topics(bag, cams, namespace, reader="observation.state")
    joints = observed.joint_states
    state = _names(policy["state_joints"], card.state_joints if card else [], executor["joint_names"])
    if not state:
        state = _first_names(bag, joints)
        notes.append(f"state joints from the bag's first {joints} message: {list(state)}")
    names = _names(policy["action_joints"], card.action_joints if card else [], executor["joint_names"])
    action_names = names or state
    topic, mtype = _action_source(bag, executor, namespace, action, action_topic, notes)
    return TopicMap(
        cameras=observed.cameras,
        joint_states=joints,
        state_names=tuple(state),
        action_names=tuple(action_names),
        action_topic=topic,
        action_type=mtype,
        instruction=observed.instruction,
        notes=tuple(notes),
    )


def _names(*candidates: Any) -> tuple[str, ...]:
    """The first non-empty list of names."""
    for names in candidates:
        if names:
            return tuple(str(n) for n in names)
    return ()


def _first_names(bag: BagSource, topic: str) -> tuple[str, ...]:
    """The joint names of the first message on ``topic`` that names any joint."""
    for _, _, msg in bag.messages([topic]):
        if len(msg.name):
            return tuple(msg.name)
    raise DatasetError(
        f"no message on {topic} names a joint; set policy_node state_joints or executor_node "
        "joint_names in --params"
    )


def _action_source(
    bag: BagSource,
    executor: dict[str, Any],
    namespace: str,
    action: str,
    action_topic: str | None,
    notes: list[str],
) -> tuple[str | None, str | None]:
    """``(topic, type)`` of the commanded positions, or ``(None, None)`` for the next state."""
    if action == "next_state":
        notes.append("action = the next frame's measured joint positions (--action next_state)")
        return None, None
    if action_topic:
        topic = resolve_topic(action_topic, namespace)
        info = bag.require(topic, COMMAND_TYPES, "action (commanded positions)", param="--action-topic")
        return info.name, info.msgtype
    rel, mtype = EXECUTOR_OUTPUTS[executor["output_type"]]
    topic = resolve_topic(rel, namespace)
    if action == "command":
        bag.require(
            topic,
            (mtype,),
            f"action (executor output_type {executor['output_type']})",
            param="--action-topic (or executor_node output_type)",
        )
        return topic, mtype
    if bag.optional(topic, (mtype,)):
        return topic, mtype
    notes.append(
        f"no {topic} ({mtype}) recorded: action = the next frame's measured joint positions "
        "(the last frame of each episode has none and is left out); pass --action-topic for a "
        "teleoperation leader's topic"
    )
    return None, None
