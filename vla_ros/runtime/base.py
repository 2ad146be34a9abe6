"""The one runtime interface: load a card, ``infer(observation) -> actions``, warm-up, stats."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from typing import Any, ClassVar

import numpy as np

from vla_ros.export.card import PolicyCard
from vla_ros.runtime.errors import CardError, InferenceError, ObservationError, VlaRosError
from vla_ros.runtime.observation import Observation
from vla_ros.runtime.processing import Postprocessor, Preprocessor

STAGES = ("preprocess", "model", "postprocess", "total")


def latency_summary(samples_s: list[float] | np.ndarray) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds of latency samples given in seconds."""
    a = np.asarray(samples_s, dtype=np.float64) * 1e3
    if a.size == 0:
        return {"count": 0}
    return {
        "count": int(a.size),
        "mean_ms": float(a.mean()),
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }


def split_spec(card: PolicyCard) -> dict[str, Any]:
    """The card's split-layout description (graph names and loop length)."""
    spec = card.export.get("split")
    if not isinstance(spec, dict) or "num_steps" not in spec:
        raise CardError(
            f"card {card.name!r} has layout 'split' but no export.split section with num_steps; "
            f"re-export: {card.export_command()}"
        )
    return spec


def synthetic_observation(card: PolicyCard, seed: int = 0) -> Observation:
    """A valid observation for ``card`` (random images, state at its mean); for warm-up/bench."""
    rng = np.random.default_rng(seed)
    h, w = card.io.image_size
    images = {
        cam: rng.integers(0, 256, size=(h, w, card.io.image_channels), dtype=np.uint8)
        for cam in card.io.camera_names
    }
    state = np.asarray(card.normalization.state.mean, dtype=np.float32) + rng.normal(
        0, 1, card.io.state_dim
    ).astype(np.float32) * np.asarray(card.normalization.state.std, dtype=np.float32)
    return Observation(images=images, state=state, instruction="pick up the cube", stamp_ns=0)


class PolicyRuntime(ABC):
    """Runs a policy card on one backend.

    Subclasses implement the model call only: :meth:`_call` (one graph on numpy feeds), and may
    override :meth:`run_model` to keep tensors on a device across the split-layout loop.
    Pre/post-processing is shared (:mod:`vla_ros.runtime.processing`).
    """

    backend: ClassVar[str] = "?"

    def __init__(self, card: PolicyCard, seed: int = 0, history: int = 10000) -> None:
        self._card = card
        self.pre = Preprocessor(card)
        self.post = Postprocessor(card)
        self._rng = np.random.default_rng(seed)
        self._times: dict[str, deque[float]] = {s: deque(maxlen=history) for s in STAGES}

    # ------------------------------------------------------------------ public API
    @property
    def card(self) -> PolicyCard:
        """The policy card this runtime was loaded from."""
        return self._card

    def infer(self, obs: Observation, noise: np.ndarray | None = None) -> np.ndarray:
        """Actions float32 ``[horizon, action_dim]`` in raw units and the card's joint order.

        ``noise`` (``[horizon, action_dim]``) fixes the sampler's initial sample for families
        that need one; when omitted it is drawn from this runtime's seeded generator.
        """
        t0 = time.perf_counter()
        feeds = self.pre(obs)
        if self._card.io.needs_noise:
            feeds["noise"] = self._noise(noise)
        t1 = time.perf_counter()
        try:
            actions = self.run_model(feeds)
        except VlaRosError:
            raise
        except Exception as e:  # a backend's own error type; nodes catch VlaRosError
            raise InferenceError(
                f"{self.backend} backend failed running policy {self._card.policy_id}: "
                f"{type(e).__name__}: {str(e)[:500]}"
            ) from e
        t2 = time.perf_counter()
        out = self.post(actions, obs.state)
        t3 = time.perf_counter()
        for stage, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            self._times[stage].append(dt)
        return out

    def run_model(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Model call on preprocessed feeds -> normalized actions ``[1, horizon, action_dim]``."""
        if self._card.layout == "monolithic":
            return np.asarray(self._call("model", feeds)["actions"])
        spec = split_spec(self._card)
        prefix_in = {k: feeds[k] for k in spec["prefix_inputs"]}
        prefix = self._call("prefix", prefix_in)
        x = (
            feeds["noise"]
            if "noise" in feeds
            else np.zeros((1, *self._card.io.output_shape), dtype=np.float32)
        )
        for i in range(int(spec["num_steps"])):
            step_feeds = {k: prefix[k] for k in spec["prefix_outputs"]}
            step_feeds["x"] = x
            step_feeds["step_index"] = np.array(i, dtype=np.int64)
            x = np.asarray(self._call("step", step_feeds)["x_next"])
        return x

    def warmup(self, n: int = 3) -> None:
        """Run ``n`` inferences on a synthetic observation, then clear the timing stats."""
        obs = synthetic_observation(self._card)
        for _ in range(max(0, n)):
            self.infer(obs)
        self.reset_stats()

    def stats(self) -> dict[str, Any]:
        """Latency summary per stage (ms) plus backend information."""
        out: dict[str, Any] = {"backend": self.backend, "policy_id": self._card.policy_id}
        out.update(self.info())
        for stage in STAGES:
            out[stage] = latency_summary(list(self._times[stage]))
        return out

    def reset_stats(self) -> None:
        """Forget recorded latencies."""
        for d in self._times.values():
            d.clear()

    def info(self) -> dict[str, Any]:
        """Backend details (device, threads, providers, ...) for logs and benchmarks."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release backend resources (sessions, engines, device memory)."""

    def __enter__(self) -> PolicyRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ backend hooks
    @abstractmethod
    def _call(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run graph ``model`` | ``prefix`` | ``step`` on numpy feeds, return numpy outputs."""

    # ------------------------------------------------------------------ helpers
    def _noise(self, noise: np.ndarray | None) -> np.ndarray:
        shape = (1, *self._card.io.output_shape)
        if noise is None:
            return self._rng.standard_normal(shape, dtype=np.float32)
        n = np.asarray(noise, dtype=np.float32)
        if n.size != int(np.prod(shape)):
            raise ObservationError(
                f"noise has shape {n.shape}; expected {self._card.io.output_shape} (horizon, action_dim)"
            )
        if not np.all(np.isfinite(n)):
            raise ObservationError("noise has non-finite values")
        return n.reshape(shape)
