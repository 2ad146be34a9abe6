"""Policy set-up from plain values: camera topics, joint renaming, staleness limits, the assembler.

The policy node reads these values from ROS parameters; offline evaluation from a YAML file or
the command line. Every function raises ``ValueError`` naming the parameter, the value and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vla_ros.perception import ObservationAssembler, StalenessLimits
from vla_ros.util.ns import seconds_to_ns


def parse_cameras(entries: Sequence[str], card_cameras: tuple[str, ...]) -> dict[str, str]:
    """``['name=topic', ...]`` -> ``{name: topic}`` for every card camera (defaults filled in).

    A camera left out reads ``camera/<name>/image_raw``. Raises ``ValueError`` naming a
    malformed entry, a camera the card does not have, or a duplicate.
    """
    topics = {name: f"camera/{name}/image_raw" for name in card_cameras}
    seen: set[str] = set()
    for entry in entries:
        name, sep, topic = entry.partition("=")
        name, topic = name.strip(), topic.strip()
        if not sep or not name or not topic:
            raise ValueError(
                f"parameter cameras: entry {entry!r} is not 'name=topic' (e.g. 'wrist=/wrist_cam/image_raw')"
            )
        if name not in topics:
            raise ValueError(
                f"parameter cameras: camera {name!r} is not in the policy card, whose cameras "
                f"are {list(card_cameras)}; use those names"
            )
        if name in seen:
            raise ValueError(f"parameter cameras: camera {name!r} is listed twice")
        seen.add(name)
        topics[name] = topic
    return topics


def resolve_joint_names(param: str, names: Sequence[str], card_names: Sequence[str]) -> tuple[str, ...]:
    """The robot's names for the card's joints: ``names``, or the card's own when ``names`` is empty.

    ``param`` is the parameter being resolved (``state_joints`` / ``action_joints``), for the
    error. Raises ``ValueError`` when ``names`` is given but its length differs from the card's.
    """
    chosen = list(names) or list(card_names)
    if len(chosen) != len(card_names):
        raise ValueError(
            f"parameter {param} has {len(chosen)} names {chosen} but the card has "
            f"{len(card_names)} ({list(card_names)}); list one robot joint per card joint, "
            "in the card's order, or leave it empty"
        )
    return tuple(chosen)


def runtime_options(backend: str, device: str = "auto", threads: int = 0) -> dict[str, Any]:
    """Keyword options for :func:`vla_ros.runtime.load_runtime` from the node's backend parameters.

    onnxruntime takes ``device`` as its provider list (``auto``, ``cpu``, ``cuda``, a comma list);
    torch takes it as a device unless ``auto``; ``threads`` 0 leaves the backend's default.
    """
    opts: dict[str, Any] = {}
    if threads:
        opts["threads"] = threads
    if backend == "onnxruntime":
        opts["providers"] = device
    elif backend == "torch" and device != "auto":
        opts["device"] = device
    return opts


def staleness_limits(image_s: float, state_s: float, future_s: float) -> StalenessLimits:
    """Staleness limits from seconds (``image_staleness_s``, ``state_staleness_s``,
    ``future_tolerance_s``) to the assembler's integer nanoseconds."""
    return StalenessLimits(
        image_ns=seconds_to_ns(image_s),
        state_ns=seconds_to_ns(state_s),
        future_ns=seconds_to_ns(future_s),
    )


def make_assembler(
    io: Any,
    state_joints: Sequence[str],
    limits: StalenessLimits,
    history_dt_s: float = 0.0,
    liveness_clock: Callable[[], int] | None = None,
) -> ObservationAssembler:
    """The observation assembler for a card's ``io`` (an :class:`~vla_ros.contract.io_spec.IOSpec`).

    ``state_joints`` are the robot's names for the card's state joints (see
    :func:`resolve_joint_names`). With ``io.obs_history > 1`` history frames are spaced
    ``history_dt_s`` apart, or the card's ``dt`` when it is 0. ``liveness_clock``: a steady
    integer-ns clock (the node's ``time.monotonic_ns``) for the arrival check; None offline.
    """
    history_dt = history_dt_s or io.dt
    return ObservationAssembler(
        tuple(io.camera_names),
        tuple(state_joints),
        limits=limits,
        history=io.obs_history,
        history_dt_ns=seconds_to_ns(history_dt) if io.obs_history > 1 else 0,
        liveness_clock=liveness_clock,
    )
