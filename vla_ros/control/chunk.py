"""Action chunks in executor form: validated, reordered to the controller's joints, time-indexed.

Action ``i`` of a chunk whose first action is due at ``start_ns`` is the target for time
``start_ns + i * dt_ns``. Between action points the chunk is linearly interpolated.

**Past its last action a chunk contributes nothing**: a chunk of ``H >= 2`` actions covers the
closed interval ``[start_ns, start_ns + (H - 1) * dt_ns]``. Holding the last action for one more
``dt`` (as an earlier version did) made temporal ensembling of agreeing chunks lag and then step
at every chunk end: the stale last action kept its (highest, oldest) weight while the newer
chunks had already moved on. With one chunk per control step this changes nothing for ACT's
online ensembling (Zhao et al. 2023, "Learning Fine-Grained Bimanual Manipulation with Low-Cost
Hardware", the ``temporal_agg`` of their ``imitate_episodes.py``): chunk ``s`` predicts steps
``s .. s + H - 1`` there too. A one-action chunk (``H = 1``) has no span to interpolate over; it
is a zero-order hold for one ``dt``: it covers ``[start_ns, start_ns + dt_ns)``.
All times are integer nanoseconds taken from message stamps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vla_ros.contract.errors import VlaRosError


class ChunkError(VlaRosError, ValueError):
    """A chunk was rejected. ``cause`` is a short stable key (for once-per-cause logging)."""


@dataclass(frozen=True, eq=False)
class Chunk:
    """One validated chunk of absolute joint targets in the controller's joint order.

    Attributes:
        stamp_ns: stamp of the observation the chunk was computed from.
        start_ns: time action 0 is due (``stamp_ns`` plus the executor's time offset).
        dt_ns: time between consecutive actions (> 0).
        joint_names: joint order of the columns of ``actions``.
        actions: ``[horizon, n_joints]`` float64 absolute targets, all finite.
        policy_id: producer of the chunk.
        seq: producer sequence number.
        uid: arrival counter assigned by the buffer (tie-break between equal stamps).
    """

    stamp_ns: int
    start_ns: int
    dt_ns: int
    joint_names: tuple[str, ...]
    actions: np.ndarray
    policy_id: str = ""
    seq: int = 0
    uid: int = field(default=0)
    #: number of action points (derived)
    horizon: int = field(init=False, repr=False, compare=False)
    #: first time the chunk no longer covers, exclusive (derived; see the module docstring)
    end_ns: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        horizon = int(self.actions.shape[0])
        object.__setattr__(self, "horizon", horizon)
        end = self.start_ns + (horizon - 1) * self.dt_ns + 1 if horizon > 1 else self.start_ns + self.dt_ns
        object.__setattr__(self, "end_ns", end)

    @property
    def span_ns(self) -> int:
        """Length of time the chunk covers, ns (``(H - 1) * dt``; ``dt`` for one action)."""
        return (self.horizon - 1) * self.dt_ns if self.horizon > 1 else self.dt_ns

    def covers(self, t_ns: int) -> bool:
        """Whether the chunk has a target for time ``t_ns``."""
        return self.start_ns <= t_ns < self.end_ns

    def sample(self, t_ns: int) -> np.ndarray | None:
        """Target at ``t_ns`` by linear interpolation between action points, or None if not covered.

        At an action point the stored row is returned unchanged (bit-exact).
        """
        rel = t_ns - self.start_ns
        if rel < 0:
            return None
        dt = self.dt_ns
        if t_ns >= self.end_ns:
            return None
        i0, rem = divmod(rel, dt)
        last = self.horizon - 1
        actions = self.actions
        if rem == 0 or i0 == last:
            return actions[i0]
        a0 = actions[i0]
        return a0 + (rem / dt) * (actions[i0 + 1] - a0)


def sample_stack(chunks: Sequence[Chunk], t_ns: int) -> np.ndarray:
    """``[len(chunks), n_joints]`` samples at ``t_ns`` of chunks that all cover ``t_ns``.

    Row ``k`` equals ``chunks[k].sample(t_ns)`` bit for bit; done in a few vector operations
    instead of a few per chunk (the control tick's hot path).
    """
    rows0: list[np.ndarray] = []
    rows1: list[np.ndarray] = []
    alphas: list[float] = []
    interpolate = False
    for c in chunks:
        i0, rem = divmod(t_ns - c.start_ns, c.dt_ns)
        a0 = c.actions[i0]
        rows0.append(a0)
        if rem == 0 or i0 == c.horizon - 1:
            rows1.append(a0)
            alphas.append(0.0)
        else:
            rows1.append(c.actions[i0 + 1])
            alphas.append(rem / c.dt_ns)
            interpolate = True
    a0s = np.array(rows0)
    if not interpolate:
        return a0s
    return a0s + np.array(alphas)[:, None] * (np.array(rows1) - a0s)


def make_chunk(
    *,
    stamp_ns: int,
    dt_ns: int,
    joint_names: Sequence[str],
    actions: Sequence[float] | np.ndarray,
    horizon: int | None = None,
    action_dim: int | None = None,
    time_offset_ns: int = 0,
    policy_id: str = "",
    seq: int = 0,
) -> Chunk:
    """Validate raw chunk fields (as in an ActionChunk message) and build a :class:`Chunk`.

    ``actions`` may be flat row-major ``horizon * action_dim`` or already ``[horizon, action_dim]``.
    Raises :class:`ChunkError` naming the field, the value received and the fix.
    """
    names = tuple(str(n) for n in joint_names)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ChunkError(
            f"chunk joint_names has duplicates {dup}; each action dimension needs a unique name",
            cause="chunk_joints",
        )
    if int(dt_ns) <= 0:
        raise ChunkError(
            f"chunk dt must be > 0 ns, got {dt_ns} ns; set dt to the policy's step time", cause="chunk_dt"
        )
    arr = np.asarray(actions, dtype=np.float64)
    dim = len(names) if action_dim is None else int(action_dim)
    if dim != len(names):
        raise ChunkError(
            f"chunk action_dim={dim} but {len(names)} joint_names; they must be equal",
            cause="chunk_shape",
        )
    if dim == 0:
        raise ChunkError("chunk has no joints (action_dim=0); send at least one", cause="chunk_shape")
    if arr.ndim == 1:
        if arr.size % dim != 0:
            raise ChunkError(
                f"chunk has {arr.size} actions, not a multiple of action_dim={dim}; "
                "send horizon*action_dim values row-major",
                cause="chunk_shape",
            )
        arr = arr.reshape(-1, dim)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ChunkError(
            f"chunk actions have shape {arr.shape}, expected [horizon, {dim}]",
            cause="chunk_shape",
        )
    if horizon is not None and int(horizon) != arr.shape[0]:
        raise ChunkError(
            f"chunk horizon={horizon} but actions hold {arr.shape[0]} rows of {dim}; "
            "set horizon = len(actions) / action_dim",
            cause="chunk_shape",
        )
    if arr.shape[0] == 0:
        raise ChunkError("chunk has horizon 0; send at least one action", cause="chunk_shape")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ChunkError(
            f"chunk from {policy_id or '?'} seq {seq} has a non-finite action "
            f"({arr[bad[0], bad[1]]} at step {bad[0]}, joint {names[bad[1]]!r}); chunk rejected",
            cause="chunk_nonfinite",
        )
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return Chunk(
        stamp_ns=int(stamp_ns),
        start_ns=int(stamp_ns) + int(time_offset_ns),
        dt_ns=int(dt_ns),
        joint_names=names,
        actions=arr,
        policy_id=policy_id,
        seq=int(seq),
    )


def reorder(chunk: Chunk, target_names: Sequence[str]) -> Chunk:
    """Return ``chunk`` with columns in ``target_names`` order.

    The chunk must name exactly the target joints (any order); otherwise :class:`ChunkError`.
    """
    target = tuple(target_names)
    if chunk.joint_names == target:
        return chunk
    have = set(chunk.joint_names)
    missing = [n for n in target if n not in have]
    extra = [n for n in chunk.joint_names if n not in set(target)]
    if missing or extra:
        raise ChunkError(
            f"chunk joint_names {list(chunk.joint_names)} do not match the executor's joints "
            f"{list(target)} (missing {missing}, unknown {extra}); fix the policy card's "
            "action_joints or the executor's joint_names",
            cause="chunk_joints",
        )
    index = [chunk.joint_names.index(n) for n in target]
    arr = np.ascontiguousarray(chunk.actions[:, index])
    arr.setflags(write=False)
    return Chunk(
        stamp_ns=chunk.stamp_ns,
        start_ns=chunk.start_ns,
        dt_ns=chunk.dt_ns,
        joint_names=target,
        actions=arr,
        policy_id=chunk.policy_id,
        seq=chunk.seq,
        uid=chunk.uid,
    )
