"""``vla-ros export <pi0 / pi0.5 folder>``: the split card (prefix graph -> KV cache [+ pi0's
``prefix_state``], step graph -> one Euler step, the loop in the runtime on LeRobot's padded noise)
with PaliGemma's tokenizer copied in, run through ``vla_ros.runtime`` against LeRobot's goldens:
raw observation + instruction in, raw actions out. pi0.5's prompt is tokenized per observation
from the card's (QUANTILES) state normalization."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from flow_helpers import assert_card_reproduces_lerobot, observations
from lerobot_fixtures import BOUND, FIXTURES, folder
from tokenizers import Tokenizer

from vla_ros.cli import main
from vla_ros.contract.errors import ModelFileError, ObservationError
from vla_ros.export import PolicyCard
from vla_ros.export.parity import card_parity_feeds, random_inputs
from vla_ros.runtime import Observation, load_runtime
from vla_ros.runtime.processing import get_tokenizer
from vla_ros.spine.checkpoints import read_lerobot_folder
from vla_ros.spine.components.pi_text import state_bins

PALIGEMMA = FIXTURES / "google" / "paligemma-3b-pt-224"
CASES = ("pi0_2cam", "pi05_2cam", "pi05_1cam_trunc", "pi0_images_mean_std", "pi05_images_min_max")
#: goldens whose images LeRobot's preprocessor normalizes (VISUAL MEAN_STD / MIN_MAX)
IMAGE_NORM_CASES = ("pi0_images_mean_std", "pi05_images_min_max")


def copy_case(case: str, dest: Path) -> Path:
    """The case's folder at ``dest``, away from test/fixtures (PaliGemma's name is not found near it)."""
    shutil.copytree(folder(case), dest)
    return dest


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """pi0_2cam copied away with ``--tokenizer FOLDER``; pi05_2cam from the fixtures (PaliGemma's
    tokenizer found by name near the checkpoint); pi05_1cam_trunc copied away, its tokenizer
    found in a Hugging Face cache that is deleted after the export; the normalized-image goldens
    from the fixtures."""
    root = tmp_path_factory.mktemp("pi_cards")
    pi0 = copy_case("pi0_2cam", root / "pi0" / "pretrained_model")
    args = ["export", str(pi0), "--out", str(root / "pi0_card"), "--quiet"]
    assert main([*args, "--tokenizer", str(PALIGEMMA)]) == 0
    assert main(["export", str(folder("pi05_2cam")), "--out", str(root / "pi05_card"), "--quiet"]) == 0
    cache = root / "hf" / "hub"
    snap = cache / "models--google--paligemma-3b-pt-224" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(PALIGEMMA / f, snap / f)
    trunc = copy_case("pi05_1cam_trunc", root / "trunc" / "pretrained_model")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_CACHE", str(cache))
        assert main(["export", str(trunc), "--out", str(root / "trunc_card"), "--quiet"]) == 0
    shutil.rmtree(cache)  # the card must not need it any more
    for case in IMAGE_NORM_CASES:
        assert main(["export", str(folder(case)), "--out", str(root / f"{case}_card"), "--quiet"]) == 0
    return {
        "pi0_2cam": root / "pi0_card",
        "pi05_2cam": root / "pi05_card",
        "pi05_1cam_trunc": root / "trunc_card",
        **{case: root / f"{case}_card" for case in IMAGE_NORM_CASES},
    }


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_card_reproduces_lerobot(cards: dict[str, Path], case: str, backend: str) -> None:
    """Raw camera bytes, raw state and the task in, LeRobot's raw actions out (<= 1e-4), with
    LeRobot's noise [chunk, max_action_dim] through the runtime's Euler loop; the runtime's
    token ids are LeRobot's (pi0.5: the prompt with the state bins of the card's normalization)."""
    assert_card_reproduces_lerobot(cards[case], case, backend)


def test_cards_name_their_tokenizer_graphs_and_normalization(cards: dict[str, Path]) -> None:
    pi0 = PolicyCard.load(cards["pi0_2cam"])
    assert pi0.family == "lerobot_pi0" and pi0.layout == "split"
    assert pi0.io.tokenizer == "pi0:tokenizer.json"
    assert (pi0.root / "tokenizer.json").read_bytes() == (PALIGEMMA / "tokenizer.json").read_bytes()
    assert pi0.files["tokenizer_config"] == "tokenizer_config.json"
    assert pi0.provenance["tokenizer"]["source"] == str((PALIGEMMA / "tokenizer.json").resolve())
    # pi0's state reaches the step graph as a prefix output, and the step graph reads it
    assert pi0.export["split"]["prefix_outputs"] == ["prefix_k", "prefix_v", "prefix_mask", "prefix_state"]
    assert pi0.export["split"]["prefix_shapes"]["prefix_state"] == [1, 32]
    step_inputs = {i.name for i in ort.InferenceSession(str(pi0.path("onnx_step"))).get_inputs()}
    assert "prefix_state" in step_inputs
    assert pi0.io.noise_shape == (8, 32) and pi0.io.output_shape == (8, 6)

    pi05 = PolicyCard.load(cards["pi05_2cam"])
    assert pi05.family == "lerobot_pi05" and pi05.io.tokenizer == "pi05:tokenizer.json"
    assert pi05.export["split"]["prefix_outputs"] == ["prefix_k", "prefix_v", "prefix_mask"]
    assert pi05.export["split"]["num_steps"] == 3
    # QUANTILES carried into the card: (x - (q01 + q99) / 2) / ((q99 - q01) / 2) = LeRobot's map
    ckpt = read_lerobot_folder(folder("pi05_2cam"))
    q01, q99 = (ckpt.stats["observation.state"][k].double() for k in ("q01", "q99"))
    np.testing.assert_allclose(pi05.normalization.state.mean, ((q01 + q99) / 2).numpy(), rtol=1e-6)
    np.testing.assert_allclose(pi05.normalization.state.std, ((q99 - q01) / 2).numpy(), rtol=1e-6)
    assert pi05.io.extra["lerobot"]["normalization"]["observation.state"] == "QUANTILES"
    raw = np.array([0.3, -1.2, 2.0, 0.0, 5.0, -0.7], dtype=np.float32)
    lerobot = ckpt.normalizer("observation.state").normalize(torch.from_numpy(raw)[None])
    card_norm = (raw - np.asarray(pi05.normalization.state.mean)) / np.asarray(pi05.normalization.state.std)
    np.testing.assert_allclose(card_norm, lerobot[0].numpy(), atol=1e-5)
    for card in (pi0, pi05):
        gate = card.parity["onnxruntime"]
        assert set(gate["per_output"]) == {"prefix", "step0", "actions"}
        assert len(gate["inputs"]) == 4 and card.parity["max_abs_err"] <= 1e-4


def _decode(card: PolicyCard, ids: np.ndarray) -> str:
    tok = Tokenizer.from_file(str(card.root / "tokenizer.json"))
    return tok.decode([int(i) for i in ids if i >= 0])


def test_pi05_prompt_carries_the_normalized_state(cards: dict[str, Path]) -> None:
    card = PolicyCard.load(cards["pi05_2cam"])
    rt = load_runtime(card, backend="onnxruntime")
    obs, noise, want, _ = observations("pi05_2cam")
    feeds = rt.pre(obs[0])
    bins = state_bins(torch.from_numpy(feeds["state"][0, -1])[None])[0].tolist()
    assert _decode(card, feeds["tokens"][0]) == (
        f"Task: pick up the red cube, State: {' '.join(map(str, bins))};\nAction: "
    )
    assert bins == [-1, 99, 126, 203, 101, 0]  # LeRobot's prompt for this observation
    # the same task with another state is another prompt, and other actions
    moved = Observation(images=obs[0].images, state=obs[1].state, instruction=obs[0].instruction, stamp_ns=1)
    assert not np.array_equal(rt.pre(moved)["tokens"], feeds["tokens"])
    assert np.abs(rt.infer(moved, noise=noise[0]) - want[0]).max() > 1e-2
    # the export's random parity inputs and the engine-parity feeds write their own state in
    for sample in (random_inputs(card.io, 10_001, root=card.root), card_parity_feeds(card)):
        s = state_bins(torch.from_numpy(sample["state"][0, -1])[None])[0].tolist()
        assert f"State: {' '.join(map(str, s))};\nAction: " in _decode(card, sample["tokens"][0])
    step = get_tokenizer(card.io, root=card.root)
    assert step.needs_state
    with pytest.raises(ObservationError, match="writes the normalized state into the prompt"):
        step("pick up the red cube")


def test_long_prompt_cut_as_lerobot_and_said_once_per_task(
    cards: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    rt = load_runtime(cards["pi05_1cam_trunc"], backend="onnxruntime")
    obs, noise, want, tokens = observations("pi05_1cam_trunc")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # the state (so the prompt) may change; the task is said once
            got = rt.infer(obs[0], noise=noise[0])
        rt.infer(obs[1], noise=noise[1])
    notes = [r.getMessage() for r in caplog.records if "longer than the tokenizer limit" in r.getMessage()]
    assert len(notes) == 2
    assert "open the top drawer" in notes[0] and "25 tokens" in notes[0] and "grasp the cup" in notes[1]
    assert np.abs(got - want[0]).max() <= BOUND  # the cut prompt is what LeRobot ran
    np.testing.assert_array_equal(rt.pre(obs[0])["tokens"][0], tokens[0])


def test_random_parity_inputs_are_cut_without_a_warning(
    cards: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    # the gates' random instructions may exceed the token limit; the warning is for user text only
    card = PolicyCard.load(cards["pi05_1cam_trunc"])
    with caplog.at_level(logging.WARNING):
        feeds = [random_inputs(card.io, seed, root=card.root) for seed in range(8)]
    assert all(f["tokens"].shape == (1, card.io.text_max_len) for f in feeds)
    assert not [r for r in caplog.records if "longer than the tokenizer limit" in r.getMessage()]
    rt = load_runtime(cards["pi05_1cam_trunc"], backend="onnxruntime")
    obs, noise, _, _ = observations("pi05_1cam_trunc")
    with caplog.at_level(logging.WARNING):
        rt.infer(obs[0], noise=noise[0])  # the user's over-long instruction is still said
    assert [r for r in caplog.records if "longer than the tokenizer limit" in r.getMessage()]


def test_card_needs_its_tokenizer_and_valid_state(cards: dict[str, Path], tmp_path: Path) -> None:
    moved = tmp_path / "robot" / "card"
    shutil.copytree(cards["pi0_2cam"], moved)
    rt = load_runtime(moved, backend="onnxruntime")
    obs, noise, want, _ = observations("pi0_2cam")
    assert np.abs(rt.infer(obs[0], noise=noise[0]) - want[0]).max() <= BOUND
    with pytest.raises(ObservationError, match=r"state has shape \(5,\); expected \[6\]"):
        rt.infer(Observation(images=obs[0].images, state=obs[0].state[:5], instruction="x"))
    (moved / "tokenizer.json").unlink()
    with pytest.raises(ModelFileError, match=r"tokenizer file .* is missing"):
        load_runtime(moved, backend="onnxruntime")


@pytest.mark.slow
def test_monolithic_layout_kept_as_an_option(tmp_path: Path) -> None:
    out = tmp_path / "mono"
    args = ["export", str(folder("pi05_1cam_trunc")), "--out", str(out), "--layout", "monolithic"]
    assert main([*args, "--quiet"]) == 0
    card = PolicyCard.load(out)
    assert card.layout == "monolithic" and card.has("onnx") and card.io.tokenizer == "pi05:tokenizer.json"
    rt = load_runtime(out, backend="onnxruntime")
    obs, noise, want, _ = observations("pi05_1cam_trunc")
    got = np.stack([rt.infer(o, noise=n) for o, n in zip(obs, noise)])
    assert np.abs(got - want).max() <= BOUND


def _outcome(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", ["pi0_2cam", "pi05_2cam"])
def test_missing_tokenizer_exits_2_naming_where_it_looked(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    d = copy_case(case, tmp_path / "pm")
    out = tmp_path / "card"
    code, err = _outcome(["export", str(d), "--out", str(out), "--quiet"], capsys)
    assert code == 2
    what = "pi0" if case == "pi0_2cam" else "pi0.5"
    assert f"{what} needs PaliGemma's tokenizer.json" in err
    assert "'google/paligemma-3b-pt-224'" in err and "models--google--paligemma-3b-pt-224" in err
    assert str(tmp_path / "empty_cache") in err  # the HF cache it looked in
    assert "--tokenizer PATH" in err
    assert not out.exists()
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"not": "a tokenizer"}')
    code, err = _outcome(["export", str(d), "--out", str(out), "--tokenizer", str(bad)], capsys)
    assert code == 2 and str(bad) in err and "not a tokenizers JSON file" in err
    assert not out.exists()
