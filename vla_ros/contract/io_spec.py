"""The input/output contract between a spine model, the exporters, the runtimes and the nodes.

Every family's ``predict_action`` takes a dict of tensors whose names and shapes are given by
:meth:`IOSpec.input_shapes`, and returns normalized actions ``[B, horizon, action_dim]``.
Exporters use the same names for ONNX inputs; runtimes build the same dict from ROS data.

Model inputs (``B`` batch, ``T`` observation history, ``N`` cameras):

- ``images``: float32 ``[B, T, N, C, H, W]`` in ``[0, 1]``, RGB; the model normalizes internally.
- ``state``: float32 ``[B, T, state_dim]``, already normalized with the card's state statistics.
- ``tokens``: int64 ``[B, text_max_len]`` (present only when ``text_max_len > 0``), from
  :func:`vla_ros.spine.components.text.ByteTokenizer` style tokenizers named by ``tokenizer``.
- ``noise``: float32 ``[B, horizon, noise_dim]`` (present only when ``needs_noise``); the
  initial sample of a stochastic sampler, so that outputs are deterministic given it.
  ``noise_dim`` is ``extra["noise_dim"]`` when set (LeRobot SmolVLA samples its padded
  ``max_action_dim``), else ``action_dim``; see :attr:`IOSpec.noise_shape`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ACTION_MODES = ("absolute", "delta")


@dataclass(frozen=True)
class IOSpec:
    """What a policy consumes and produces; the policy card is written from it."""

    camera_names: tuple[str, ...]
    image_size: tuple[int, int]  # (height, width) every camera is resized to
    state_dim: int
    action_dim: int
    horizon: int
    dt: float
    obs_history: int = 1
    image_channels: int = 3
    text_max_len: int = 0
    tokenizer: str = "byte"
    needs_noise: bool = False
    action_mode: str = "absolute"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action_mode not in ACTION_MODES:
            raise ValueError(
                f"IOSpec.action_mode={self.action_mode!r} is not one of {ACTION_MODES}; "
                "set it in the model config"
            )
        for name in ("state_dim", "action_dim", "horizon", "obs_history"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"IOSpec.{name} must be >= 1, got {getattr(self, name)}")
        if self.dt <= 0:
            raise ValueError(f"IOSpec.dt must be > 0 seconds, got {self.dt}")

    @property
    def input_names(self) -> list[str]:
        """Model input names in their canonical order (also the ONNX input order)."""
        names = ["images", "state"]
        if self.text_max_len > 0:
            names.append("tokens")
        if self.needs_noise:
            names.append("noise")
        return names

    def input_shapes(self, batch_size: int = 1) -> dict[str, tuple[int, ...]]:
        """Shape of every model input for ``batch_size``, keyed by input name."""
        h, w = self.image_size
        shapes: dict[str, tuple[int, ...]] = {
            "images": (
                batch_size,
                self.obs_history,
                len(self.camera_names),
                self.image_channels,
                h,
                w,
            ),
            "state": (batch_size, self.obs_history, self.state_dim),
        }
        if self.text_max_len > 0:
            shapes["tokens"] = (batch_size, self.text_max_len)
        if self.needs_noise:
            shapes["noise"] = (batch_size, *self.noise_shape)
        return shapes

    @property
    def noise_shape(self) -> tuple[int, int]:
        """Per-sample shape ``(horizon, noise_dim)`` of the sampler's noise and loop state:
        ``extra["noise_dim"]`` when a family samples padded actions (LeRobot SmolVLA:
        ``max_action_dim``; the model's output is cut to ``action_dim``), else ``action_dim``."""
        return (self.horizon, int(self.extra.get("noise_dim") or self.action_dim))

    @property
    def output_shape(self) -> tuple[int, int]:
        """Per-sample shape ``(horizon, action_dim)`` of what the model computes (the sampled
        horizon; the noise has this shape too)."""
        return (self.horizon, self.action_dim)

    @property
    def action_window(self) -> tuple[int, int]:
        """``[start, stop)`` rows of the model output that form the published action chunk.

        The whole horizon, unless ``extra["action_window"]`` says otherwise: LeRobot's Diffusion
        Policy samples ``horizon`` actions starting at the oldest observation step and executes
        rows ``[n_obs_steps - 1, n_obs_steps - 1 + n_action_steps)`` (lerobot 0.6.1,
        ``DiffusionModel.generate_actions``); row ``start`` is the action for the observation's
        time, so it becomes action 0 of the chunk.

        Raises:
            ValueError: a window outside ``[0, horizon]`` or empty.
        """
        window = self.extra.get("action_window")
        if window is None:
            return (0, self.horizon)
        start, stop = (int(v) for v in window)
        if not 0 <= start < stop <= self.horizon:
            raise ValueError(
                f"IOSpec.extra['action_window']={list(window)} is not a non-empty range inside the "
                f"horizon [0, {self.horizon}]; re-export the card"
            )
        return (start, stop)

    @property
    def chunk_shape(self) -> tuple[int, int]:
        """Shape ``(chunk horizon, action_dim)`` of the published action chunk (see
        :attr:`action_window`)."""
        start, stop = self.action_window
        return (stop - start, self.action_dim)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (lists, not tuples) for YAML."""
        d = asdict(self)
        d["camera_names"] = list(self.camera_names)
        d["image_size"] = list(self.image_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IOSpec:
        """Inverse of :meth:`to_dict`; unknown keys raise ``TypeError`` naming them."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise TypeError(f"IOSpec got unknown keys {unknown}; known keys are {sorted(known)}")
        d = dict(d)
        d["camera_names"] = tuple(d["camera_names"])
        d["image_size"] = tuple(int(v) for v in d["image_size"])
        return cls(**d)
