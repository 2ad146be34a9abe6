"""The observation a runtime consumes: raw camera images, raw joint state, an instruction."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Observation:
    """One observation in raw units, as the policy node assembles it from ROS messages.

    ``images`` maps camera name to uint8 RGB ``[H, W, 3]`` or ``[T, H, W, 3]`` (``T`` frames of
    history, oldest first; any ``H``, ``W``). ``state`` is ``[state_dim]`` or ``[T, state_dim]``
    in raw units and the card's ``state_joints`` order. ``stamp_ns`` is the observation stamp
    (the oldest of its parts), integer nanoseconds.

    ``committed_actions`` (real-time chunking) is ``[d, action_dim]`` float32 or ``None``: the
    actions the executor has already committed for the first ``d`` steps of the chunk this
    observation will produce, i.e. action ``i`` is the command for time
    ``stamp_ns + i * io.dt``, in raw units and the card's ``action_joints`` order, always
    absolute joint targets (what the executor commands), whatever the card's action mode: the
    runtime makes them relative to the state for a delta policy. ``d`` is the inference delay in
    chunk steps; ``d == 0`` or ``None`` means nothing is committed.
    """

    images: dict[str, np.ndarray] = field(default_factory=dict)
    state: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    instruction: str = ""
    stamp_ns: int = 0
    committed_actions: np.ndarray | None = None
