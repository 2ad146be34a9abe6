"""Pre- and post-processing: small numpy steps shared by every backend.

Backends differ only in the model call; everything that turns an :class:`Observation` into model
inputs, and normalized model outputs into robot actions, lives here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vla_ros.contract.card import PolicyCard, Stats
from vla_ros.contract.errors import ModelFileError, NonFiniteOutputError, ObservationError
from vla_ros.contract.io_spec import IOSpec
from vla_ros.contract.observation import Observation


def align_history(x: np.ndarray, history: int, frame_ndim: int) -> np.ndarray:
    """Return ``[history, *frame]`` from a single frame or a ``[T, *frame]`` stack.

    A single frame is repeated; a longer stack keeps its newest ``history`` frames; a shorter one
    is padded at the front with its oldest frame (what a policy sees right after start-up).
    """
    if x.ndim == frame_ndim:
        x = x[None]
    t = x.shape[0]
    if t >= history:
        return x[t - history :]
    pad = np.repeat(x[:1], history - t, axis=0)
    return np.concatenate([pad, x], axis=0)


def resize_image(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 ``[H, W, C]`` to ``size=(height, width)``.

    Shrinking: a box filter by the largest whole factor (cv2's fast integer ``INTER_AREA`` path),
    then bilinear for the remaining factor below 2. Within a grey level or so of ``INTER_AREA`` at
    the exact size on natural images, and ~10x faster for 640x480 -> 224x224 (cv2 has no fast
    path for fractional area scales). Enlarging: bilinear.
    """
    h, w = size
    if img.shape[0] == h and img.shape[1] == w:
        return img
    img = np.ascontiguousarray(img)
    k = min(img.shape[0] // h, img.shape[1] // w)
    if k >= 2:
        img = cv2.resize(img, (img.shape[1] // k, img.shape[0] // k), interpolation=cv2.INTER_AREA)
    if img.shape[0] != h or img.shape[1] != w:
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    if img.ndim == 2:  # cv2 drops a trailing channel axis of size 1
        img = img[:, :, None]
    return img


def prepare_images(images: dict[str, np.ndarray], io: IOSpec) -> np.ndarray:
    """Camera dict -> float32 ``[1, T, N, C, H, W]`` in ``[0, 1]``, cameras in ``io`` order."""
    missing = [c for c in io.camera_names if c not in images]
    if missing:
        raise ObservationError(
            f"observation lacks camera(s) {missing}; it has {sorted(images)}; the card expects "
            f"{list(io.camera_names)} (remap the camera topics or re-export with these names)"
        )
    h, w = io.image_size
    c = io.image_channels
    out = np.empty((1, io.obs_history, len(io.camera_names), c, h, w), dtype=np.float32)
    for n, cam in enumerate(io.camera_names):
        img = np.asarray(images[cam])
        if img.dtype != np.uint8:
            raise ObservationError(
                f"camera {cam!r} image has dtype {img.dtype}; expected uint8 RGB "
                "(convert with cv_bridge to 'rgb8')"
            )
        if img.ndim not in (3, 4) or img.shape[-1] != c:
            raise ObservationError(
                f"camera {cam!r} image has shape {img.shape}; expected [H, W, {c}] or [T, H, W, {c}] RGB"
            )
        frames = align_history(img, io.obs_history, 3)
        for t in range(io.obs_history):
            small = resize_image(frames[t], (h, w))
            # HWC uint8 -> CHW float32 in [0, 1], one contiguous plane at a time (cv2.split is
            # a C loop; a transposed strided copy costs ~1.5x as much)
            planes = cv2.split(small) if c > 1 else (small[:, :, 0],)
            for ch, plane in enumerate(planes):
                np.multiply(plane, _INV_255, out=out[0, t, n, ch])
    return out


_INV_255 = np.float32(1.0 / 255.0)


def normalize(x: np.ndarray, stats: Stats) -> np.ndarray:
    """``(x - mean) / std`` in float32."""
    mean = np.asarray(stats.mean, dtype=np.float32)
    std = np.asarray(stats.std, dtype=np.float32)
    return ((x.astype(np.float32) - mean) / std).astype(np.float32)


def unnormalize(x: np.ndarray, stats: Stats) -> np.ndarray:
    """``x * std + mean`` in float32."""
    mean = np.asarray(stats.mean, dtype=np.float32)
    std = np.asarray(stats.std, dtype=np.float32)
    return (x.astype(np.float32) * std + mean).astype(np.float32)


def prepare_state(state: np.ndarray, io: IOSpec, stats: Stats) -> np.ndarray:
    """Raw state ``[D]`` or ``[T, D]`` -> normalized float32 ``[1, T, D]``."""
    s = np.asarray(state)
    if s.ndim not in (1, 2) or s.shape[-1] != io.state_dim:
        raise ObservationError(
            f"state has shape {s.shape}; expected [{io.state_dim}] or [T, {io.state_dim}] "
            "in the card's state_joints order"
        )
    if not np.issubdtype(s.dtype, np.number):
        raise ObservationError(f"state has non-numeric dtype {s.dtype}")
    if not np.all(np.isfinite(s)):
        raise ObservationError(f"state has non-finite values {s.tolist()}; check the joint_states publisher")
    s = align_history(s, io.obs_history, 1)
    return normalize(s, stats)[None]


class TokenizerStep:
    """The card's tokenizer as a preprocessing step: ``(text, state=None) -> int64 [1, max_len]``.

    ``needs_state`` is True for a tokenizer whose ids depend on the observation's normalized
    state (LeRobot pi0.5's prompt carries the state in 256 bins): it must then get ``state``
    (``[state_dim]``, normalized with the card's statistics), else :class:`ObservationError`.
    Other tokenizers ignore ``state``.
    """

    def __init__(self, tok: Any, max_len: int, spec: str) -> None:
        self._tok, self.max_len, self.spec = tok, int(max_len), spec
        self.needs_state = bool(getattr(tok, "needs_state", False))

    def __call__(self, text: str, state: np.ndarray | None = None) -> np.ndarray:
        if not self.needs_state:
            ids = self._tok.encode(text, self.max_len)
        elif state is None:
            raise ObservationError(
                f"tokenizer {self.spec!r} writes the normalized state into the prompt; it needs "
                "the observation's state with the instruction"
            )
        else:
            ids = self._tok.encode(text, self.max_len, state=np.asarray(state, dtype=np.float32).reshape(-1))
        return np.asarray(ids, dtype=np.int64).reshape(1, self.max_len)


def get_tokenizer(io: IOSpec, root: str | Path | None = None) -> TokenizerStep:
    """Tokenizer named by ``io.tokenizer`` returning int64 ``[1, text_max_len]``
    (:class:`TokenizerStep`; call it with the instruction, and the normalized state when its
    ``needs_state`` is True).

    It is the spine's own tokenizer (``vla_ros.spine.components.text``), so that the runtime
    tokenizes exactly as training and export did. A relative tokenizer file (a card's
    ``smolvla:tokenizer.json``) is looked up under ``root`` (the card folder). Raises
    :class:`ObservationError` naming the spec when the tokenizer cannot be made.
    """
    from vla_ros.spine.components.text import get_tokenizer as spine_tokenizer

    try:
        tok = spine_tokenizer(io.tokenizer, root=root)
    except (ValueError, KeyError, ImportError, OSError) as e:
        raise ObservationError(f"cannot make tokenizer {io.tokenizer!r} named by the card: {e}") from e
    return TokenizerStep(tok, io.text_max_len, io.tokenizer)


class Preprocessor:
    """Observation -> model input dict (without ``noise``), following a card."""

    def __init__(self, card: PolicyCard) -> None:
        self.card = card
        self.io = card.io
        self._tokenize: TokenizerStep | None = None
        if card.io.text_max_len > 0:
            if card.has("tokenizer"):
                card.path("tokenizer")  # the card's own copy, checked against its sha256
            self._tokenize = get_tokenizer(card.io, root=card.root)

    def __call__(self, obs: Observation) -> dict[str, np.ndarray]:
        """Model inputs keyed by ``io.input_names`` (``noise`` excluded)."""
        if not isinstance(obs, Observation):
            raise ObservationError(f"expected vla_ros.runtime.Observation, got {type(obs).__name__}")
        feeds = {
            "images": prepare_images(obs.images, self.io),
            "state": prepare_state(obs.state, self.io, self.card.normalization.state),
        }
        if self._tokenize is not None:
            # pi0.5: the prompt carries the newest normalized state (tokenized per observation)
            state = feeds["state"][0, -1] if self._tokenize.needs_state else None
            feeds["tokens"] = self._tokenize(obs.instruction or "", state=state)
        return feeds


class Postprocessor:
    """Normalized actions ``[horizon, action_dim]`` -> raw actions in the card's joint order."""

    def __init__(self, card: PolicyCard) -> None:
        self.card = card
        self.io = card.io
        self.delta_to_absolute = card.output_action_mode != card.io.action_mode
        # index of every action joint in the state vector, for delta -> absolute
        self._state_index = (
            np.array([card.state_joints.index(j) for j in card.action_joints], dtype=np.int64)
            if self.delta_to_absolute
            else None
        )

    def __call__(self, actions: np.ndarray, state: np.ndarray | None = None) -> np.ndarray:
        """Check, unnormalize and (optionally) make actions absolute with the latest raw state."""
        a = np.asarray(actions, dtype=np.float32)
        a = a.reshape(self.io.output_shape) if a.size == np.prod(self.io.output_shape) else a
        if a.shape != self.io.output_shape:
            raise ModelFileError(
                f"model returned actions of shape {actions.shape}, card expects "
                f"{self.io.output_shape}; the model file does not match the card, re-export"
            )
        if not np.all(np.isfinite(a)):
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise NonFiniteOutputError(
                f"policy {self.card.policy_id} produced {bad} NaN/Inf action values; they were "
                "dropped. Check the observation (images, state ranges) and the card's "
                "normalization std; re-export if the model file was changed"
            )
        out = unnormalize(a, self.card.normalization.action)
        if self.delta_to_absolute:
            if state is None:
                raise ObservationError("delta_to_absolute needs the current state")
            s = np.asarray(state, dtype=np.float32)
            current = s[-1] if s.ndim == 2 else s
            out = out + current[self._state_index][None, :]
        return out.astype(np.float32)


def rtc_settings(card: PolicyCard) -> dict[str, Any] | None:
    """The card's real-time chunking settings (``io.extra["rtc"]`` merged with
    ``export.split.rtc``: ``mode`` ``conditioned``/``guided``, ``max_delay`` or
    ``max_guidance``, the step graph ``role`` and its ``step_inputs``), or None when the
    policy does not use committed actions."""
    rtc = card.io.extra.get("rtc")
    split = card.export.get("split") if card.layout == "split" else None
    graph = split.get("rtc") if isinstance(split, dict) else None
    if not isinstance(rtc, dict) or rtc.get("mode") not in ("conditioned", "guided") or not graph:
        return None
    return {**rtc, **graph}


class CommittedActions:
    """Raw committed actions -> the RTC inputs of a step graph, in the model's space.

    ``__call__(committed [d, action_dim] raw absolute, state raw [D] or [T, D])`` returns
    ``{"rtc_actions": float32 [1, horizon, noise_dim], "rtc_mask": float32 [1, horizon]}``:
    rows ``start .. start + d`` (``start`` the card's ``action_window`` start) hold the committed
    actions made relative to the newest state when the model predicts deltas
    (``card.output_action_mode != io.action_mode``; the inverse of :class:`Postprocessor`),
    normalized with the card's action statistics and zero-padded to ``noise_dim`` (LeRobot
    families sample padded actions); the mask is 1 on those rows. A conditioned policy uses
    at most its ``max_delay`` rows (it was trained with delays up to that): extra rows are
    dropped and ``truncated`` says how many. Raises :class:`ObservationError` for a wrong shape
    or non-finite values, naming the field, the shape and the fix.
    """

    def __init__(self, card: PolicyCard, settings: dict[str, Any]) -> None:
        self.card, self.io = card, card.io
        self.settings = settings
        self._post = Postprocessor(card)
        self.truncated = 0

    def __call__(self, committed: np.ndarray, state: np.ndarray) -> dict[str, np.ndarray]:
        io = self.io
        c = np.asarray(committed)
        if c.ndim != 2 or c.shape[1] != io.action_dim:
            raise ObservationError(
                f"Observation.committed_actions has shape {c.shape}; expected [d, {io.action_dim}] "
                "(d committed steps, the card's action_joints order) or None"
            )
        if not np.issubdtype(c.dtype, np.number) or not np.all(np.isfinite(c)):
            raise ObservationError(
                "Observation.committed_actions has non-finite or non-numeric values; send the "
                "executor's committed commands (raw units) or None"
            )
        start, stop = io.action_window
        limit = stop - start - 1  # at least one step left to predict
        if self.settings.get("mode") == "conditioned":
            limit = min(limit, int(self.settings.get("max_delay", limit)))
        d = min(c.shape[0], limit)
        self.truncated = c.shape[0] - d
        horizon, width = io.noise_shape
        actions = np.zeros((1, horizon, width), dtype=np.float32)
        mask = np.zeros((1, horizon), dtype=np.float32)
        if d <= 0:
            return {"rtc_actions": actions, "rtc_mask": mask}
        a = c[:d].astype(np.float32)
        if io.action_mode == "delta":  # committed actions are absolute (the executor's commands)
            # also for delta cards whose chunks go out as deltas (the executor adds the state)
            s = np.asarray(state, dtype=np.float32)
            current = s[-1] if s.ndim == 2 else s
            index = [self.card.state_joints.index(j) for j in self.card.action_joints]
            a = a - current[index][None, :]
        actions[0, start : start + d, : io.action_dim] = normalize(a, self.card.normalization.action)
        mask[0, start : start + d] = 1.0
        return {"rtc_actions": actions, "rtc_mask": mask}
