"""Offline metrics of a replay: how close the chunks and commands are to what the robot did, and
how smooth and how available the commands are. Pure numpy.

Reference = a recorded JointState track (by default the robot's own ``/joint_states`` in a
demonstration bag: the motion the policy should reproduce). Action ``i`` of a chunk stamped
``t0`` is compared with the reference at ``t0 + i*dt``; each command with the reference at its
tick. Reference values are interpolated linearly between samples, never across a gap longer than
``max_gap_ns`` (an episode reset), and never extrapolated: those comparisons are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vla_ros.contract.errors import VlaRosError
from vla_ros.eval.replay import ExecutorTrace, PolicyTrace, StateSample
from vla_ros.util.stats import percentiles_ms


class MetricsError(VlaRosError, ValueError):
    """The reference cannot be compared with the commands (joints missing); says which."""


@dataclass(frozen=True)
class Track:
    """A joint-position signal: ``times_ns`` [N] ascending, ``values`` [N, J] in ``names`` order."""

    names: tuple[str, ...]
    times_ns: np.ndarray
    values: np.ndarray
    max_gap_ns: int = 250_000_000

    @classmethod
    def from_samples(
        cls, samples: Sequence[StateSample], names: Sequence[str], *, max_gap_ns: int = 250_000_000
    ) -> Track:
        """The track of ``names`` from JointState samples, merged per joint (by header stamp).

        A joint state may be split over several messages (an arm driver and a gripper driver
        publishing on one topic): as the executor's
        :class:`~vla_ros.control.state.JointStateTracker`, each message updates the joints it
        names (others are ignored) and a joint keeps its latest value until the next message
        naming it. Messages are taken in stamp order; from the first stamp at which every joint
        has a value, each distinct stamp gives one row (all messages of that stamp applied).
        Malformed samples (fewer positions than names, non-finite values) are skipped.
        :class:`MetricsError` when no stamp has all of ``names``.
        """
        names = tuple(names)
        index = {n: i for i, n in enumerate(names)}
        latest = np.full(len(names), np.nan)
        times: list[int] = []
        rows: list[np.ndarray] = []
        for s in sorted(samples, key=lambda s: s.stamp_ns):  # stable: log order within a stamp
            if len(s.positions) != len(s.names):
                continue
            pairs = [(index[n], float(v)) for n, v in zip(s.names, s.positions) if n in index]
            if not pairs or not all(np.isfinite(v) for _, v in pairs):
                continue
            for i, v in pairs:
                latest[i] = v
            if np.isnan(latest).any():
                continue
            if times and times[-1] == s.stamp_ns:
                rows[-1] = latest.copy()  # the same stamp: one row with every message applied
            else:
                times.append(s.stamp_ns)
                rows.append(latest.copy())
        if not rows:
            seen = sorted({n for s in samples for n in s.names})
            missing = [n for n in names if n not in seen]
            if not missing:
                raise MetricsError(
                    f"every reference message naming the joints {list(names)} is malformed (fewer "
                    "positions than names) or non-finite; fix the publisher or choose another "
                    "reference topic (--reference)"
                )
            raise MetricsError(
                f"the reference topic never gives the joints {missing} (it has {seen}; merged per "
                f"joint over all its messages); choose a reference topic with the joints {list(names)} "
                "(--reference) or set executor joint_names"
            )
        return cls(names, np.asarray(times, dtype=np.int64), np.asarray(rows, dtype=float), max_gap_ns)

    def at(self, t_ns: np.ndarray) -> np.ndarray:
        """Values at times ``t_ns`` [M] -> [M, J]; NaN outside the track or inside a gap."""
        t = np.asarray(t_ns, dtype=np.int64)
        out = np.full((t.size, self.values.shape[1]), np.nan)
        if self.times_ns.size == 0:
            return out
        hi = np.searchsorted(self.times_ns, t, side="left")
        exact = (hi < self.times_ns.size) & (self.times_ns[np.minimum(hi, self.times_ns.size - 1)] == t)
        out[exact] = self.values[hi[exact]]
        inner = ~exact & (hi > 0) & (hi < self.times_ns.size)
        if inner.any():
            i1 = hi[inner]
            i0 = i1 - 1
            t0, t1 = self.times_ns[i0], self.times_ns[i1]
            ok = (t1 - t0) <= self.max_gap_ns
            w = ((t[inner] - t0) / np.maximum(t1 - t0, 1)).astype(float)[:, None]
            vals = self.values[i0] * (1.0 - w) + self.values[i1] * w
            vals[~ok] = np.nan
            out[inner] = vals
        return out


def chunk_errors(targets: Sequence[tuple[int, int, np.ndarray]], reference: Track) -> np.ndarray:
    """|action - reference| per chunk, step and joint: [n_chunks, H, J] (NaN where not comparable).

    ``targets`` are the executor's accepted chunks in absolute positions (its joint order).
    """
    if not targets:
        return np.zeros((0, 0, len(reference.names)))
    horizon = max(a.shape[0] for _, _, a in targets)
    out = np.full((len(targets), horizon, len(reference.names)), np.nan)
    for k, (start, dt, actions) in enumerate(targets):
        times = start + dt * np.arange(actions.shape[0], dtype=np.int64)
        out[k, : actions.shape[0]] = np.abs(actions - reference.at(times))
    return out


def derivatives_rms(positions: np.ndarray, period_ns: int) -> dict[str, float]:
    """RMS of velocity, acceleration and jerk of a [T, J] sequence sampled every ``period_ns``.

    NaN rows (no command yet) break the sequence; differences across them are left out.
    """
    dt = period_ns / 1e9
    out = {}
    d = positions
    for name in ("velocity", "acceleration", "jerk"):
        d = np.diff(d, axis=0) / dt
        vals = d[np.isfinite(d)]
        out[f"{name}_rms"] = float(np.sqrt(np.mean(vals**2))) if vals.size else float("nan")
    v = np.diff(positions, axis=0) / dt
    v = v[np.isfinite(v)]
    out["max_speed"] = float(np.max(np.abs(v))) if v.size else float("nan")
    return out


def _state_gaps(no_state: np.ndarray, holding: np.ndarray) -> np.ndarray:
    """Ticks without a joint state, and the holds that follow them until motion resumes."""
    out = no_state.copy()
    for i in range(1, out.size):
        if not out[i] and out[i - 1] and holding[i]:
            out[i] = True
    return out


def _nanmean(x: np.ndarray, axis: int | tuple[int, ...] | None = None) -> np.ndarray | float:
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(x)
        total = np.where(finite, x, 0.0).sum(axis=axis)
        count = finite.sum(axis=axis)
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def compute_metrics(policy: PolicyTrace, executor: ExecutorTrace, reference: Track) -> dict:
    """Every figure of one replay as a JSON-ready dict (units: rad or m, seconds, ms)."""
    names = executor.joint_names
    ref_at_ticks = reference.at(executor.times_ns)
    err = np.abs(executor.positions - ref_at_ticks)
    cmd_mae_by_joint = _nanmean(err, axis=0)
    valid = np.isfinite(err)
    chunk_err = chunk_errors(executor.chunk_targets, reference)
    by_step = _nanmean(chunk_err, axis=(0, 2)) if chunk_err.size else np.zeros(0)
    # smoothness over the ticks the reference covers and the executor had a joint state (not
    # across a gap in the recording, such as a reset between demonstrations)
    covered = np.isfinite(ref_at_ticks).all(axis=1) & ~_state_gaps(executor.no_state, executor.holding)
    smooth_cmd = derivatives_rms(np.where(covered[:, None], executor.positions, np.nan), executor.period_ns)
    smooth_ref = derivatives_rms(ref_at_ticks, executor.period_ns)
    ticks = int(executor.times_ns.size)
    infer_p50, infer_p99 = percentiles_ms(policy.infer_ms, (50, 99), unit_s=1e-3)
    ready_p50, ready_p99 = percentiles_ms(policy.obs_to_ready_ms, (50, 99), unit_s=1e-3)
    return {
        "duration_s": (policy.end_ns - policy.start_ns) / 1e9,
        "joints": list(names),
        "policy": {
            "steps": policy.steps,
            "chunks": len(policy.chunks),
            "no_chunk": dict(policy.no_chunk),
            "log_lines": dict(policy.faults),
            "latency": policy.latency_mode,
            "infer_ms_p50": infer_p50,
            "infer_ms_p99": infer_p99,
            "obs_to_chunk_ms_p50": ready_p50,
            "obs_to_chunk_ms_p99": ready_p99,
            **policy.delay_report(),
        },
        "chunks": {
            "accepted": len(executor.chunk_targets),
            "rejected": dict(executor.rejected_chunks),
            "expired": executor.expired_chunks,
            "mae": float(_nanmean(chunk_err)) if chunk_err.size else float("nan"),
            "mae_by_step": [float(x) for x in np.atleast_1d(by_step)],
        },
        "commands": {
            "ticks": ticks,
            "hold_fraction": float(executor.holding.mean()) if ticks else float("nan"),
            "compared_fraction": float(valid.all(axis=1).mean()) if ticks else float("nan"),
            "mae": float(_nanmean(err)),
            "rmse": float(np.sqrt(_nanmean(err**2))),
            "mae_by_joint": {
                n: float(v) for n, v in zip(names, np.atleast_1d(cmd_mae_by_joint), strict=True)
            },
            "fault_ticks": dict(executor.fault_ticks),
            **smooth_cmd,
        },
        "reference": {
            "samples": int(reference.times_ns.size),
            **smooth_ref,
        },
    }
