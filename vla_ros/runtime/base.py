"""The one runtime interface: load a card, ``infer(observation) -> actions``, warm-up, stats."""

from __future__ import annotations

import dataclasses
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import Any, ClassVar

import numpy as np

from vla_ros.contract.card import PolicyCard
from vla_ros.contract.errors import CardError, InferenceError, ObservationError, VlaRosError
from vla_ros.contract.io_spec import IMAGES, STATE, example_inputs
from vla_ros.contract.observation import Observation
from vla_ros.runtime.processing import CommittedActions, Postprocessor, Preprocessor, rtc_settings
from vla_ros.util.stats import latency_summary_ms

log = logging.getLogger(__name__)
#: the RTC feeds :meth:`PolicyRuntime.infer` adds for a card with real-time chunking
RTC_FEEDS = ("rtc_actions", "rtc_mask", "rtc_max_guidance")

STAGES = ("preprocess", "model", "postprocess", "total")
# per-graph stages, recorded once per graph call: split -> prefix (once per infer) and step
# (num_steps per infer); dual -> slow (when its period has elapsed) and fast (every infer)
GRAPH_STAGES = ("prefix", "step", "slow", "fast")


def split_spec(card: PolicyCard) -> dict[str, Any]:
    """The card's split-layout description (graph names and loop length)."""
    spec = card.export.get("split")
    if not isinstance(spec, dict) or "num_steps" not in spec:
        raise CardError(
            f"card {card.name!r} has layout 'split' but no export.split section with num_steps; "
            f"re-export: {card.export_command()}"
        )
    return spec


def dual_spec(card: PolicyCard) -> dict[str, Any]:
    """The card's dual-layout description (graph inputs/outputs and the slow graph's rate)."""
    spec = card.export.get("dual")
    if not isinstance(spec, dict) or not float(spec.get("slow_hz") or 0) > 0:
        raise CardError(
            f"card {card.name!r} has layout 'dual' but no export.dual section with a positive "
            f"slow_hz; re-export: {card.export_command()}"
        )
    return spec


def synthetic_observation(card: PolicyCard, seed: int = 0) -> Observation:
    """A valid raw observation for ``card``, for warm-up and benchmarks: the model-input example
    of :func:`vla_ros.contract.io_spec.example_inputs` (same ``seed``) taken back to what the
    sensors give: each camera's latest image as uint8 ``[H, W, C]`` (``round(255 * x)``) and the
    latest state de-normalized with the card's statistics (``mean + std * x``, raw units)."""
    io = card.io
    # images and state only: the observation carries the instruction as text
    example = example_inputs(dataclasses.replace(io, text_max_len=0, needs_noise=False), seed=seed)
    frames = example[IMAGES][0, -1]  # [N, C, H, W] in [0, 1]
    images = {
        cam: np.ascontiguousarray(np.rint(frames[i].transpose(1, 2, 0) * 255.0).astype(np.uint8))
        for i, cam in enumerate(io.camera_names)
    }
    stats = card.normalization.state
    state = np.asarray(stats.mean, dtype=np.float32) + example[STATE][0, -1] * np.asarray(
        stats.std, dtype=np.float32
    )
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
        self._times: dict[str, deque[float]] = {s: deque(maxlen=history) for s in (*STAGES, *GRAPH_STAGES)}
        # dual layout: the slow graph's cached outputs, the stamp and tokens they were made from
        self._latent: dict[str, np.ndarray] | None = None
        self._latent_stamp_ns: int | None = None
        self._latent_tokens: np.ndarray | None = None
        self._latent_age_ns: int | None = None
        if card.layout == "dual":
            self._slow_period_ns = round(1e9 / float(dual_spec(card)["slow_hz"]))
        # real-time chunking: None when the card does not use committed actions
        self.rtc = rtc_settings(card)
        self._committed = CommittedActions(card, self.rtc) if self.rtc is not None else None
        #: guided RTC's maximum guidance weight β (the card's; may be changed at run time)
        self.rtc_max_guidance = float(self.rtc.get("max_guidance", 0.0)) if self.rtc else 0.0
        self._rtc_logged: set[str] = set()

    # ------------------------------------------------------------------ public API
    @property
    def card(self) -> PolicyCard:
        """The policy card this runtime was loaded from."""
        return self._card

    def infer(self, obs: Observation, noise: np.ndarray | None = None) -> np.ndarray:
        """The action chunk, float32 ``card.io.chunk_shape`` (``[horizon, action_dim]`` unless the
        card has an ``action_window``), in raw units and the card's joint order.

        ``noise`` (``card.io.noise_shape``: ``[horizon, noise_dim]``, wider than the actions when
        the family samples padded ones, e.g. LeRobot SmolVLA's ``max_action_dim``) fixes the
        sampler's initial sample for families that need one; when omitted it is drawn from
        this runtime's seeded generator (standard normal).

        ``obs.committed_actions`` (real-time chunking, ``[d, action_dim]`` raw absolute) is
        used by cards with ``io.extra["rtc"]`` (:meth:`rtc_feeds`): the chunk then continues
        those actions; other cards ignore it (one info log per episode).
        """
        t0 = time.perf_counter()
        feeds = self.pre(obs)
        if self._card.io.needs_noise:
            feeds["noise"] = self._noise(noise)
        feeds.update(self.rtc_feeds(obs))
        t1 = time.perf_counter()
        try:
            actions = self.run_model(feeds, stamp_ns=int(obs.stamp_ns or 0))
        except VlaRosError:
            raise
        except Exception as e:  # a backend's own error type; nodes catch VlaRosError
            raise InferenceError(
                f"{self.backend} backend failed running policy {self._card.policy_id}: "
                f"{type(e).__name__}: {str(e)[:500]}"
            ) from e
        t2 = time.perf_counter()
        out = self.post(actions, obs.state)
        start, stop = self._card.io.action_window
        if (start, stop) != (0, self._card.io.horizon):
            out = out[start:stop]
        t3 = time.perf_counter()
        for stage, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
            self._times[stage].append(dt)
        return out

    def rtc_feeds(self, obs: Observation) -> dict[str, np.ndarray]:
        """The step graph's real-time chunking inputs for ``obs`` (empty when nothing is
        committed or the card has no RTC): ``rtc_actions [1, horizon, noise_dim]`` and
        ``rtc_mask [1, horizon]`` in the model's space (:class:`CommittedActions`), plus
        ``rtc_max_guidance`` (0-d float32, :attr:`rtc_max_guidance`) for a guided card.
        Raises :class:`ObservationError` for malformed committed actions."""
        committed = obs.committed_actions
        if committed is None or np.asarray(committed).size == 0:
            return {}
        if self._committed is None:
            self._log_once(
                "no_rtc",
                "policy %s has no real-time chunking (no io.extra['rtc'] in its card): committed "
                "actions are ignored; export a flow_matching model with rtc: {max_delay: k} or "
                "rtc: {guidance: beta} to use them",
                self._card.policy_id,
            )
            return {}
        out = self._committed(committed, obs.state)
        if self._committed.truncated:
            self._log_once(
                "rtc_truncated",
                "policy %s was trained with committed prefixes up to max_delay=%d steps; %d more "
                "committed steps were not given to it (the executor bridges them)",
                self._card.policy_id,
                int(self.rtc.get("max_delay", 0)) if self.rtc else 0,
                self._committed.truncated,
            )
        if self.rtc and self.rtc["mode"] == "guided":
            out["rtc_max_guidance"] = np.array(self.rtc_max_guidance, dtype=np.float32)
        return out

    def _log_once(self, cause: str, msg: str, *args: object) -> None:
        """One info line per cause per episode (:meth:`reset` starts a new episode)."""
        if cause not in self._rtc_logged:
            self._rtc_logged.add(cause)
            log.info(msg, *args)

    def step_graph(self, feeds: dict[str, np.ndarray]) -> tuple[str, dict[str, np.ndarray]]:
        """The split loop's step graph for ``feeds`` and the RTC inputs to feed it every step:
        ``("step_rtc", rtc feeds)`` for a guided card with committed actions, ``("step", rtc
        feeds or zeros)`` for a conditioned card (its step graph always takes them; zeros:
        nothing committed), else ``("step", {})``."""
        if not self.rtc:
            return "step", {}
        given = {k: feeds[k] for k in RTC_FEEDS if k in feeds}
        if self.rtc["mode"] == "guided":
            return ("step_rtc", given) if given else ("step", {})
        if not given:
            horizon, width = self._card.io.noise_shape
            given = {
                "rtc_actions": np.zeros((1, horizon, width), np.float32),
                "rtc_mask": np.zeros((1, horizon), np.float32),
            }
        return "step", given

    def run_model(self, feeds: dict[str, np.ndarray], stamp_ns: int = 0) -> np.ndarray:
        """Model call on preprocessed feeds -> normalized actions ``[1, horizon, action_dim]``.

        Split layouts run the Euler/sampler loop here on ``x`` of ``card.io.noise_shape`` (the
        noise feed, else zeros) and cut the final ``x`` to ``action_dim`` (:meth:`cut_actions`).

        ``stamp_ns`` (the observation's stamp) only matters for dual-layout cards: it decides
        whether the slow graph reruns (see :meth:`_run_dual`).
        """
        if self._card.layout == "monolithic":
            return np.asarray(self._call("model", feeds)["actions"])
        if self._card.layout == "dual":
            return self._run_dual(feeds, stamp_ns)
        spec = split_spec(self._card)
        prefix_in = {k: feeds[k] for k in spec["prefix_inputs"]}
        prefix = self._timed_call("prefix", prefix_in)
        x = (
            feeds["noise"]
            if "noise" in feeds
            else np.zeros((1, *self._card.io.noise_shape), dtype=np.float32)
        )
        graph, rtc = self.step_graph(feeds)
        for i in range(int(spec["num_steps"])):
            step_feeds = {k: prefix[k] for k in spec["prefix_outputs"]}
            step_feeds.update(rtc)
            step_feeds["x"] = x
            step_feeds["step_index"] = np.array(i, dtype=np.int64)
            x = np.asarray(self._timed_call(graph, step_feeds)["x_next"])
        return self.cut_actions(x)

    def cut_actions(self, x: np.ndarray) -> np.ndarray:
        """The first ``action_dim`` values of the last axis of a split loop's final state
        ``[B, horizon, noise_dim]`` (LeRobot SmolVLA truncates its padded actions so); ``x``
        itself when it is no wider."""
        a = self._card.io.action_dim
        return x[..., :a] if x.shape[-1] > a else x

    def slow_due(self, stamp_ns: int, feeds: dict[str, np.ndarray]) -> bool:
        """Whether the dual layout's slow graph must run for an observation stamped ``stamp_ns``.

        It runs when there is no cached latent, when the observation has no stamp (0), when
        the stamp is at least one slow period (``1 / slow_hz``) past the stamp the latent was
        computed from, when time went backwards (a replay restarted), and when the instruction
        tokens changed. Observation stamps, not the wall clock, decide: replaying a bag gives
        the same actions however fast it plays.
        """
        if self._latent is None or self._latent_stamp_ns is None or stamp_ns <= 0:
            return True
        age = stamp_ns - self._latent_stamp_ns
        if age < 0 or age >= self._slow_period_ns:
            return True
        tokens = feeds.get("tokens")
        if tokens is None:
            return False
        return self._latent_tokens is None or not np.array_equal(tokens, self._latent_tokens)

    def _run_dual(self, feeds: dict[str, np.ndarray], stamp_ns: int) -> np.ndarray:
        """Dual layout: slow graph when due (else the cached latent), fast graph every call."""
        spec = dual_spec(self._card)
        if self.slow_due(stamp_ns, feeds):
            out = self._timed_call("slow", {k: feeds[k] for k in spec["slow_inputs"]})
            self._latent = {k: np.asarray(out[k]).copy() for k in spec["slow_outputs"]}
            # a latent from an unstamped observation is never reused
            self._latent_stamp_ns = stamp_ns if stamp_ns > 0 else None
            tokens = feeds.get("tokens")
            self._latent_tokens = None if tokens is None else np.array(tokens, copy=True)
        assert self._latent is not None
        self._latent_age_ns = stamp_ns - (self._latent_stamp_ns or stamp_ns)
        fast_feeds = {**feeds, **self._latent}
        fast_in = {k: fast_feeds[k] for k in spec["fast_inputs"]}
        return np.asarray(self._timed_call("fast", fast_in)[spec.get("fast_output", "actions")])

    def reset(self) -> None:
        """Forget per-episode state: the dual layout's cached latent (the next call reruns the
        slow graph). Call it when a new episode or task starts."""
        self._latent = None
        self._latent_stamp_ns = None
        self._latent_tokens = None
        self._latent_age_ns = None
        self._rtc_logged.clear()

    def _timed_call(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """:meth:`_call` with its duration recorded under stage ``graph`` (``step_rtc`` under
        ``step``)."""
        t = time.perf_counter()
        out = self._call(graph, feeds)
        self._record("step" if graph == "step_rtc" else graph, time.perf_counter() - t)
        return out

    def _record(self, stage: str, seconds: float) -> None:
        """Add one latency sample (seconds) to ``stage``."""
        self._times[stage].append(seconds)

    def warmup(self, n: int = 3) -> None:
        """Run ``n`` inferences on a synthetic observation, then clear the timing stats and
        the per-episode state (:meth:`reset`)."""
        obs = synthetic_observation(self._card)
        for _ in range(max(0, n)):
            self.infer(obs)
        self.reset_stats()
        self.reset()

    def stats(self) -> dict[str, Any]:
        """Latency summary per stage (ms) plus backend information.

        Stages ``preprocess``, ``model``, ``postprocess`` and ``total`` are per ``infer``; the
        graph stages are per graph call and appear when the layout has them: ``prefix`` and
        ``step`` (split: ``step`` counts ``num_steps`` calls per infer, so its p50 is the
        per-step latency) and ``slow`` and ``fast`` (dual: ``slow`` counts only the calls
        that reran the slow graph).
        """
        out: dict[str, Any] = {"backend": self.backend, "policy_id": self._card.policy_id}
        out.update(self.info())
        out["layout"] = self._card.layout
        for stage in STAGES:
            out[stage] = latency_summary_ms(self._times[stage], unit_s=1.0)
        for stage in self.graph_stages():
            out[stage] = latency_summary_ms(self._times[stage], unit_s=1.0)
        if self._card.layout == "dual" and self._latent_age_ns is not None:
            out["latent_age_ms"] = self._latent_age_ns / 1e6
        return out

    def last_times_ms(self) -> dict[str, float]:
        """The most recent ``infer``'s stage times (ms): preprocess, model, postprocess, total."""
        return {stage: self._times[stage][-1] * 1e3 for stage in STAGES if self._times[stage]}

    def graph_stages(self) -> tuple[str, ...]:
        """The per-graph stages of this card's layout (empty for monolithic)."""
        return {"split": ("prefix", "step"), "dual": ("slow", "fast")}.get(self._card.layout, ())

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
        """Run graph ``model`` | ``prefix`` | ``step`` | ``step_rtc`` | ``slow`` | ``fast`` on
        numpy feeds, return numpy outputs."""

    # ------------------------------------------------------------------ helpers
    def _noise(self, noise: np.ndarray | None) -> np.ndarray:
        """The sampler's initial noise ``[1, *card.io.noise_shape]`` float32: ``noise`` checked,
        else drawn standard normal; :class:`ObservationError` for another size or non-finite."""
        shape = (1, *self._card.io.noise_shape)
        if noise is None:
            return self._rng.standard_normal(shape, dtype=np.float32)
        n = np.asarray(noise, dtype=np.float32)
        if n.size != int(np.prod(shape)):
            raise ObservationError(
                f"noise has shape {n.shape}; expected {self._card.io.noise_shape} (horizon, "
                f"noise_dim={self._card.io.noise_shape[1]}; action_dim is {self._card.io.action_dim})"
            )
        if not np.all(np.isfinite(n)):
            raise ObservationError("noise has non-finite values")
        return n.reshape(shape)
