"""Pre/post-processing steps shared by every backend."""

from __future__ import annotations

import numpy as np
import pytest

from vla_ros.contract.card import Normalization, PolicyCard, Stats
from vla_ros.contract.errors import ModelFileError, NonFiniteOutputError, ObservationError
from vla_ros.contract.io_spec import IOSpec
from vla_ros.runtime import Observation
from vla_ros.runtime.processing import (
    Postprocessor,
    Preprocessor,
    align_history,
    normalize,
    prepare_images,
    prepare_state,
    resize_image,
    unnormalize,
)


def _card(history=1, mode="absolute", delta_to_absolute=False, text=0) -> PolicyCard:
    io = IOSpec(
        camera_names=("front", "wrist"),
        image_size=(6, 8),
        state_dim=3,
        action_dim=2,
        horizon=4,
        dt=0.1,
        obs_history=history,
        action_mode=mode,
        text_max_len=text,
    )
    return PolicyCard(
        name="p",
        family="x",
        io=io,
        state_joints=["a", "b", "c"],
        action_joints=["c", "a"],
        normalization=Normalization(Stats([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]), Stats([10.0, -1.0], [2.0, 0.5])),
        export={"layout": "monolithic"},
        postprocess={"delta_to_absolute": delta_to_absolute},
    )


def test_align_history_pads_and_trims():
    frames = np.arange(3)[:, None] * np.ones((3, 2))
    assert align_history(frames[0], 2, 1).tolist() == [[0, 0], [0, 0]]
    assert align_history(frames, 2, 1).tolist() == [[1, 1], [2, 2]]  # newest kept
    assert align_history(frames[:1], 3, 1).tolist() == [[0, 0]] * 3  # oldest repeated in front
    assert align_history(frames, 3, 1).shape == (3, 2)


def test_images_resized_scaled_ordered():
    io = _card(history=2).io
    rng = np.random.default_rng(0)
    wrist = rng.integers(0, 256, (2, 30, 40, 3), dtype=np.uint8)
    front = np.full((12, 16, 3), 255, np.uint8)
    x = prepare_images({"wrist": wrist, "front": front, "extra": front}, io)
    assert x.shape == (1, 2, 2, 3, 6, 8) and x.dtype == np.float32
    assert np.allclose(x[0, :, 0], 1.0)  # front first (card order), uint8 255 -> 1.0
    assert x.min() >= 0.0 and x.max() <= 1.0
    # channel order is kept (RGB in, RGB out, CHW)
    red = np.zeros((6, 8, 3), np.uint8)
    red[..., 0] = 200
    y = prepare_images({"front": red, "wrist": red}, io)
    assert np.allclose(y[0, 0, 0, 0], 200 / 255) and np.allclose(y[0, 0, 0, 1:], 0)
    # same-size images pass through untouched; shrinking averages (area)
    assert resize_image(red, (6, 8)) is red
    checker = np.indices((12, 16)).sum(0) % 2 * 255
    small = resize_image(np.repeat(checker[..., None], 3, 2).astype(np.uint8), (6, 8))
    assert np.all(np.abs(small.astype(int) - 128) <= 1)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        ({"front": np.zeros((6, 8, 3), np.uint8)}, r"lacks camera\(s\) \['wrist'\]"),
        (
            {"front": np.zeros((6, 8, 3), np.float32), "wrist": np.zeros((6, 8, 3), np.uint8)},
            "dtype float32; expected uint8",
        ),
        ({"front": np.zeros((6, 8), np.uint8), "wrist": np.zeros((6, 8, 3), np.uint8)}, r"shape \(6, 8\)"),
    ],
)
def test_bad_images(images, match):
    with pytest.raises(ObservationError, match=match):
        prepare_images(images, _card().io)


def test_state_normalized_and_checked():
    card = _card(history=2)
    st = card.normalization.state
    x = prepare_state(np.array([2.0, 4.0, 7.0]), card.io, st)
    assert x.shape == (1, 2, 3)
    assert np.allclose(x[0, 1], [1.0, 1.0, 1.0])
    assert np.allclose(unnormalize(normalize(np.array([5.0, 6.0, 7.0]), st), st), [5, 6, 7])
    with pytest.raises(ObservationError, match="non-finite"):
        prepare_state(np.array([1.0, np.nan, 0.0]), card.io, st)
    with pytest.raises(ObservationError, match=r"expected \[3\] or \[T, 3\]"):
        prepare_state(np.zeros(4), card.io, st)


def test_postprocess_unnormalizes_and_makes_absolute():
    norm = np.array([[1.0, 2.0]] * 4, np.float32)
    out = Postprocessor(_card())(norm)
    assert np.allclose(out, [[12.0, 0.0]] * 4)
    card = _card(mode="delta", delta_to_absolute=True)
    state = np.array([[0, 0, 0], [1.0, 2.0, 3.0]])  # history: the newest row is current
    out = Postprocessor(card)(norm, state)
    # action joints are [c, a]: c adds state[2] = 3, a adds state[0] = 1
    assert np.allclose(out, [[15.0, 1.0]] * 4)
    # delta actions without the flag stay deltas
    assert np.allclose(Postprocessor(_card(mode="delta"))(norm, state), [[12.0, 0.0]] * 4)


def test_postprocess_rejects_nan_and_wrong_shape():
    post = Postprocessor(_card())
    bad = np.zeros((4, 2), np.float32)
    bad[2, 1] = np.inf
    with pytest.raises(NonFiniteOutputError, match="1 NaN/Inf action values"):
        post(bad)
    with pytest.raises(ModelFileError, match=r"card expects \(4, 2\)"):
        post(np.zeros((3, 2), np.float32))


def test_preprocessor_tokenizes_with_the_spine_tokenizer():
    from vla_ros.spine.components.text import get_tokenizer

    card = _card(text=12)
    obs = Observation(
        images={"front": np.zeros((6, 8, 3), np.uint8), "wrist": np.zeros((6, 8, 3), np.uint8)},
        state=np.zeros(3),
        instruction="open",
    )
    feeds = Preprocessor(card)(obs)
    assert list(feeds) == ["images", "state", "tokens"]
    assert feeds["tokens"].dtype == np.int64 and feeds["tokens"].shape == (1, 12)
    assert feeds["tokens"][0].tolist() == get_tokenizer("byte")("open", 12)[0].tolist()
    with pytest.raises(ObservationError, match=r"expected vla_ros\.runtime\.Observation"):
        Preprocessor(card)({"images": {}})


def test_resize_fractional_shrink_matches_area_filter_and_keeps_checkerboards_grey():
    # a camera frame 640x480 -> 224x224: within ~1 grey level of cv2.INTER_AREA on a smooth scene
    import cv2

    yy, xx = np.mgrid[0:480, 0:640].astype(np.float64)
    scene = np.stack([128 + 100 * np.sin(xx / 37.0) * np.cos(yy / 23.0), xx / 640 * 255, yy / 480 * 255], -1)
    scene = scene.astype(np.uint8)
    ours = resize_image(scene, (224, 224))
    area = cv2.resize(scene, (224, 224), interpolation=cv2.INTER_AREA)
    assert ours.shape == (224, 224, 3) and ours.dtype == np.uint8
    assert np.abs(ours.astype(int) - area.astype(int)).mean() < 1.0
    # pixel-level aliasing is filtered out (plain bilinear would return 0s and 255s here)
    checker = (np.indices((480, 640)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2)
    assert np.all(np.abs(resize_image(checker, (224, 224)).astype(int) - 128) <= 2)
    # enlarging and single-channel images keep their channel axis
    assert resize_image(np.zeros((10, 10, 1), np.uint8), (20, 30)).shape == (20, 30, 1)
