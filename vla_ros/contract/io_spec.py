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

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

ACTION_MODES = ("absolute", "delta")

# model-input names (also the ONNX graphs' input names), in their canonical order
IMAGES = "images"
STATE = "state"
TOKENS = "tokens"
NOISE = "noise"
#: every model-input name, in canonical order (an IOSpec has a prefix-ordered subset of them)
INPUT_NAMES = (IMAGES, STATE, TOKENS, NOISE)
#: the instructions of :func:`example_inputs` by default, cycled over the batch
SAMPLE_INSTRUCTIONS = ("pick up the red cube", "open the top drawer", "stack the blocks")

#: ``(instructions [B], normalized state float32 [B, T, state_dim]) -> int64 [B, text_max_len]``
#: (the state reaches tokenizers that write it into the prompt: pi0.5)
Tokenize = Callable[[list[str], np.ndarray], np.ndarray]
#: ``(generator, batch_size) -> instructions [B]``: instructions drawn from the inputs' generator
DrawInstructions = Callable[[np.random.Generator, int], list[str]]


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
        names = [IMAGES, STATE]
        if self.text_max_len > 0:
            names.append(TOKENS)
        if self.needs_noise:
            names.append(NOISE)
        return names

    def input_shapes(self, batch_size: int = 1) -> dict[str, tuple[int, ...]]:
        """Shape of every model input for ``batch_size``, keyed by input name."""
        h, w = self.image_size
        shapes: dict[str, tuple[int, ...]] = {
            IMAGES: (
                batch_size,
                self.obs_history,
                len(self.camera_names),
                self.image_channels,
                h,
                w,
            ),
            STATE: (batch_size, self.obs_history, self.state_dim),
        }
        if self.text_max_len > 0:
            shapes[TOKENS] = (batch_size, self.text_max_len)
        if self.needs_noise:
            shapes[NOISE] = (batch_size, *self.noise_shape)
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


def example_inputs(
    io: IOSpec,
    *,
    seed: int = 0,
    batch_size: int = 1,
    tokenize: Tokenize | None = None,
    instructions: Sequence[str] | DrawInstructions = SAMPLE_INSTRUCTIONS,
) -> dict[str, np.ndarray]:
    """Seeded model inputs for ``io``, keyed by ``io.input_names`` in their order: the one
    builder of example inputs (the spine's trace input, the export gates' parity inputs and
    calibration feeds, the runtime's synthetic observation).

    Drawn from ``numpy.random.default_rng(seed)`` in input order, each in its valid range:
    ``images`` float32 ``[B, T, N, C, H, W]`` uniform in [0, 1]; ``state`` float32
    ``[B, T, state_dim]`` N(0, 1) (normalized); ``tokens`` int64 ``[B, text_max_len]`` =
    ``tokenize(texts, state)``; ``noise`` float32 ``[B, horizon, noise_dim]`` N(0, 1).

    Args:
        io: the model's IO spec.
        seed: the generator's seed; equal seeds give equal inputs.
        batch_size: ``B`` >= 1.
        tokenize: instructions (and the drawn state) -> token ids; required when ``io`` has
            ``tokens`` (the contract knows no tokenizer: the spine's or the runtime's is passed).
        instructions: fixed instructions cycled over the batch, or a function drawing them from
            the inputs' generator (between ``state`` and ``tokens``).

    Raises:
        ValueError: ``batch_size`` < 1, or ``tokens`` without ``tokenize`` (says what to pass).
    """
    if int(batch_size) < 1:
        raise ValueError(f"example_inputs batch_size must be >= 1, got {batch_size}")
    rng = np.random.default_rng(seed)
    shapes = io.input_shapes(batch_size)
    out: dict[str, np.ndarray] = {}
    for name in io.input_names:
        if name == IMAGES:
            out[name] = rng.random(shapes[name], dtype=np.float32)
        elif name == TOKENS:
            if tokenize is None:
                raise ValueError(
                    f"example_inputs: the IO spec has {TOKENS!r} (text_max_len={io.text_max_len}, "
                    f"tokenizer {io.tokenizer!r}) but no tokenize function was given; pass the "
                    "model's or the card's tokenizer as tokenize=(texts, state) -> int64 ids"
                )
            if callable(instructions):
                texts = list(instructions(rng, batch_size))
            else:
                texts = [instructions[i % len(instructions)] for i in range(batch_size)]
            out[name] = np.asarray(tokenize(texts, out[STATE]), dtype=np.int64).reshape(shapes[name])
        else:  # state and noise
            out[name] = rng.standard_normal(shapes[name], dtype=np.float32)
    return out
