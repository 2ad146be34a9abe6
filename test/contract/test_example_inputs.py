"""vla_ros.contract.io_spec.example_inputs: the one builder of example model inputs, and the
callers built on it (the spine's trace input, the parity gates' inputs, the synthetic observation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vla_ros.contract.card import Normalization, PolicyCard, Stats
from vla_ros.contract.io_spec import (
    IMAGES,
    INPUT_NAMES,
    NOISE,
    SAMPLE_INSTRUCTIONS,
    STATE,
    TOKENS,
    IOSpec,
    example_inputs,
)
from vla_ros.runtime.base import synthetic_observation
from vla_ros.runtime.processing import Preprocessor

IO = IOSpec(
    camera_names=("front", "wrist"),
    image_size=(6, 8),
    state_dim=3,
    action_dim=2,
    horizon=4,
    dt=0.1,
    obs_history=2,
    text_max_len=5,
    needs_noise=True,
    extra={"noise_dim": 7},
)


def _lengths(texts: list[str], state: np.ndarray) -> np.ndarray:
    """A stand-in tokenizer: each text's length and its sample's first state value, padded."""
    return np.asarray([[len(t), round(float(s[-1, 0]) * 1000), 0, 0, 0] for t, s in zip(texts, state)])


def test_names_shapes_dtypes_and_ranges() -> None:
    got = example_inputs(IO, seed=3, batch_size=4, tokenize=_lengths)
    assert INPUT_NAMES == ("images", "state", "tokens", "noise")
    assert list(got) == IO.input_names == [IMAGES, STATE, TOKENS, NOISE]
    assert {k: v.shape for k, v in got.items()} == IO.input_shapes(4)
    assert got[NOISE].shape == (4, 4, 7)  # noise_dim, not action_dim
    assert [got[k].dtype for k in IO.input_names] == [np.float32, np.float32, np.int64, np.float32]
    assert got[IMAGES].min() >= 0.0 and got[IMAGES].max() < 1.0
    # fixed instructions are cycled over the batch; the tokenizer sees the drawn state
    assert got[TOKENS][:, 0].tolist() == [len(SAMPLE_INSTRUCTIONS[i % 3]) for i in range(4)]
    assert got[TOKENS][:, 1].tolist() == [round(float(v) * 1000) for v in got[STATE][:, -1, 0]]


def test_seeded_and_drawn_in_input_order() -> None:
    a = example_inputs(IO, seed=1, tokenize=_lengths)
    b = example_inputs(IO, seed=1, tokenize=_lengths)
    c = example_inputs(IO, seed=2, tokenize=_lengths)
    for k in IO.input_names:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a[STATE], c[STATE])
    # numpy's default_rng(seed), in input order: images, state, (instructions), tokens, noise
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(a[IMAGES], rng.random(IO.input_shapes(1)[IMAGES], dtype=np.float32))
    np.testing.assert_array_equal(a[STATE], rng.standard_normal((1, 2, 3), dtype=np.float32))
    np.testing.assert_array_equal(a[NOISE], rng.standard_normal((1, 4, 7), dtype=np.float32))
    # instructions drawn from the same generator come between the state and the noise
    drawn = example_inputs(
        IO, seed=1, tokenize=_lengths, instructions=lambda g, n: ["x" * int(g.integers(1, 9))]
    )
    np.testing.assert_array_equal(drawn[STATE], a[STATE])
    assert not np.array_equal(drawn[NOISE], a[NOISE])


def test_tokens_without_a_tokenizer_and_a_bad_batch_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"'tokens'.*tokenizer 'byte'.*pass the model's or the card's tokenizer"
    ):
        example_inputs(IO)
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        example_inputs(IO, batch_size=0, tokenize=_lengths)


def test_the_spine_trace_input_and_the_parity_feeds_are_the_builder() -> None:
    from types import SimpleNamespace

    from vla_ros.export.parity import card_parity_feeds, random_inputs
    from vla_ros.spine import build_vla

    model = build_vla("flow_matching_tiny").eval()
    io = model.io_spec()
    assert TOKENS in io.input_names and NOISE in io.input_names
    trace = model.example_inputs(2, seed=4)
    plain = example_inputs(io, seed=4, batch_size=2, tokenize=lambda t, s: model.tokenize(t).numpy())
    assert list(trace) == list(plain)
    for k, v in trace.items():
        assert v.dtype == torch.from_numpy(plain[k]).dtype
        np.testing.assert_array_equal(v.numpy(), plain[k])
    # the export gates' inputs: same images and state for a seed; the fixed feeds tokenize
    # "pick up the red cube", the random ones a random instruction
    feeds = card_parity_feeds(SimpleNamespace(io=io, root=None), seed=4)
    rand = random_inputs(io, 4)
    one = example_inputs(io, seed=4, tokenize=lambda t, s: model.tokenize(t).numpy())
    for k in (IMAGES, STATE):
        np.testing.assert_array_equal(feeds[k], one[k])
        np.testing.assert_array_equal(rand[k], one[k])
    np.testing.assert_array_equal(feeds[TOKENS], model.tokenize(["pick up the red cube"]).numpy())
    np.testing.assert_array_equal(feeds[NOISE], one[NOISE])  # no draw for a fixed instruction
    assert not np.array_equal(rand[TOKENS], one[TOKENS])


def test_synthetic_observation_preprocesses_back_to_the_example() -> None:
    io = IOSpec(("front", "wrist"), (6, 8), state_dim=3, action_dim=2, horizon=4, dt=0.1)
    card = PolicyCard(
        name="p",
        family="x",
        io=io,
        state_joints=["a", "b", "c"],
        action_joints=["a", "b"],
        normalization=Normalization(Stats([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]), Stats([0.0, 0.0], [1.0, 1.0])),
        export={"layout": "monolithic"},
    )
    obs = synthetic_observation(card, seed=5)
    assert sorted(obs.images) == ["front", "wrist"]
    assert all(im.dtype == np.uint8 and im.shape == (6, 8, 3) for im in obs.images.values())
    feeds = Preprocessor(card)(obs)
    example = example_inputs(io, seed=5)
    # back through the runtime's own preprocessing: the images to 8-bit resolution, the state exactly
    np.testing.assert_allclose(feeds[IMAGES], example[IMAGES], atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(feeds[STATE], example[STATE], rtol=1e-5, atol=1e-6)
