"""``vla-ros export <SmolVLA folder>``: the split card (prefix graph -> KV cache, step graph -> one
Euler step, the loop in the runtime on LeRobot's padded noise) with the VLM's tokenizer copied
in, run through ``vla_ros.runtime`` against LeRobot's goldens: raw observation + instruction in,
raw actions out."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from flow_helpers import assert_card_reproduces_lerobot, observations
from lerobot_fixtures import BOUND, FIXTURES, folder

from vla_ros.cli import main
from vla_ros.contract.errors import ModelFileError, ObservationError
from vla_ros.export import PolicyCard
from vla_ros.export.parity import random_inputs
from vla_ros.runtime import Observation, load_runtime

VLM = FIXTURES / "smolvla_vlm_tiny"
CASES = ("smolvla_2cam", "smolvla_1cam_empty")


def copy_case(case: str, dest: Path, tokenizer_name: str | None = None) -> Path:
    """The case's folder at ``dest`` with an absolute VLM config path (and another tokenizer name)."""
    shutil.copytree(folder(case), dest)
    cfg = json.loads((dest / "config.json").read_text())
    cfg["vlm_model_name"] = str(VLM)
    (dest / "config.json").write_text(json.dumps(cfg))
    if tokenizer_name is not None:
        pre = json.loads((dest / "policy_preprocessor.json").read_text())
        for step in pre["steps"]:
            if step["registry_name"] == "tokenizer_processor":
                step["config"]["tokenizer_name"] = tokenizer_name
        (dest / "policy_preprocessor.json").write_text(json.dumps(pre))
    return dest


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An HF hub cache holding the tiny VLM's tokenizer as ``TestOrg/TinyVLM`` (HF_HUB_CACHE set)."""
    cache = tmp_path_factory.mktemp("hf") / "hub"
    snap = cache / "models--TestOrg--TinyVLM" / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(VLM / f, snap / f)
    old = os.environ.get("HF_HUB_CACHE")
    os.environ["HF_HUB_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("HF_HUB_CACHE", None)
    else:
        os.environ["HF_HUB_CACHE"] = old


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory, hf_cache: Path) -> dict[str, Path]:
    """smolvla_2cam with ``--tokenizer FILE`` (its configured name is found nowhere);
    smolvla_1cam_empty with the tokenizer found in the HF cache, which is then deleted."""
    root = tmp_path_factory.mktemp("smolvla_cards")
    two = copy_case("smolvla_2cam", root / "two" / "pretrained_model", "SomeOrg/NoSuchVLM")
    args = ["export", str(two), "--out", str(root / "two_card"), "--quiet"]
    assert main([*args, "--tokenizer", str(VLM / "tokenizer.json")]) == 0
    one = copy_case("smolvla_1cam_empty", root / "one" / "pretrained_model", "TestOrg/TinyVLM")
    assert main(["export", str(one), "--out", str(root / "one_card"), "--quiet"]) == 0
    shutil.rmtree(hf_cache)  # the card must not need it any more
    return {"smolvla_2cam": root / "two_card", "smolvla_1cam_empty": root / "one_card"}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_card_reproduces_lerobot(cards: dict[str, Path], case: str, backend: str) -> None:
    """Raw camera bytes, raw state and the task in, LeRobot's raw actions out (<= 1e-4), with
    LeRobot's noise [chunk, max_action_dim] through the runtime's Euler loop."""
    assert_card_reproduces_lerobot(cards[case], case, backend)


def test_card_layout_tokenizer_and_parity_gate(cards: dict[str, Path]) -> None:
    card = PolicyCard.load(cards["smolvla_2cam"])
    assert card.family == "lerobot_smolvla" and card.layout == "split"
    assert card.io.tokenizer == "smolvla:tokenizer.json"
    assert card.files["tokenizer"] == "tokenizer.json"
    assert (card.root / "tokenizer.json").read_bytes() == (VLM / "tokenizer.json").read_bytes()
    assert card.files["tokenizer_config"] == "tokenizer_config.json"
    assert card.provenance["tokenizer"]["source"] == str((VLM / "tokenizer.json").resolve())
    split = card.export["split"]
    assert split["prefix_inputs"] == ["images", "state", "tokens"]
    assert split["prefix_outputs"] == ["prefix_k", "prefix_v", "prefix_mask"]
    assert split["num_steps"] == 10
    assert card.io.noise_shape == (10, 32) and card.io.output_shape == (10, 6)
    assert card.io.input_shapes(1)["noise"] == (1, 10, 32)
    gate = card.parity["onnxruntime"]
    assert len(gate["inputs"]) == 4 and sum("random seed" in i for i in gate["inputs"]) == 3
    assert set(gate["per_output"]) == {"prefix", "step0", "actions"}
    assert card.parity["max_abs_err"] <= 1e-4
    # the gate's random instructions went through the card's own tokenizer (ids in its
    # vocabulary, BOS first, -1 padding), and do so from the card folder alone
    ids = random_inputs(card.io, 10_001, root=card.root)["tokens"]
    assert ids.shape == (1, 16) and ids[0, 0] == 1 and ids.max() < 320
    assert (ids[0] >= 0).sum() < 16 and (ids[0][(ids[0] >= 0).sum() :] == -1).all()
    one = PolicyCard.load(cards["smolvla_1cam_empty"])
    assert one.provenance["tokenizer"]["name"] == "TestOrg/TinyVLM"
    assert one.io.camera_names == ("front",) and one.io.noise_shape == (8, 32)


def test_card_folder_moves_with_its_tokenizer(cards: dict[str, Path], tmp_path: Path) -> None:
    moved = tmp_path / "robot" / "card"
    shutil.copytree(cards["smolvla_2cam"], moved)
    rt = load_runtime(moved, backend="onnxruntime")
    obs, noise, want, _ = observations("smolvla_2cam")
    assert np.abs(rt.infer(obs[0], noise=noise[0]) - want[0]).max() <= BOUND
    (moved / "tokenizer.json").write_text((moved / "tokenizer.json").read_text().replace("pick", "pack"))
    with pytest.raises(ModelFileError, match=r"tokenizer file .* is corrupt or was replaced"):
        load_runtime(moved, backend="onnxruntime")
    (moved / "tokenizer.json").unlink()
    with pytest.raises(ModelFileError, match=r"tokenizer file .* is missing"):
        load_runtime(moved, backend="onnxruntime")


def test_noise_and_instruction_are_inputs(cards: dict[str, Path]) -> None:
    rt = load_runtime(cards["smolvla_2cam"], backend="onnxruntime")
    obs, noise, want, _ = observations("smolvla_2cam")
    with pytest.raises(ObservationError, match=r"noise_dim=32; action_dim is 6"):
        rt.infer(obs[0], noise=noise[0][:, :6])
    padded_zero = noise[0].copy()
    padded_zero[:, 6:] = 0.0  # LeRobot samples the padded dims too: they change the actions
    assert np.abs(rt.infer(obs[0], noise=padded_zero) - want[0]).max() > 1e-2
    other = Observation(images=obs[0].images, state=obs[0].state, instruction="fold the towel", stamp_ns=1)
    assert np.abs(rt.infer(other, noise=noise[0]) - want[0]).max() > 1e-2
    drawn = rt.infer(obs[0])  # noise drawn by the runtime: [chunk, 32], a valid chunk
    assert drawn.shape == (10, 6) and np.all(np.isfinite(drawn))


def test_long_instruction_cut_as_lerobot_and_said_once(
    cards: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    rt = load_runtime(cards["smolvla_1cam_empty"], backend="onnxruntime")
    obs, noise, want, tokens = observations("smolvla_1cam_empty")
    long = Observation(images=obs[0].images, state=obs[0].state, instruction=obs[0].instruction)
    longer = Observation(images=obs[0].images, state=obs[0].state, instruction="push the button, " * 4)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            got = rt.infer(long, noise=noise[0])
        rt.infer(longer, noise=noise[0])
        rt.infer(obs[1], noise=noise[1])  # short: no note
    notes = [r.getMessage() for r in caplog.records if "longer than the tokenizer limit" in r.getMessage()]
    assert len(notes) == 2  # once per too-long instruction
    assert "open the top drawer" in notes[0] and "push the button" in notes[1]
    assert "8 tokens" in notes[0]
    assert np.abs(got - want[0]).max() <= BOUND  # the cut instruction is what LeRobot ran
    np.testing.assert_array_equal(rt.pre(long)["tokens"][0], tokens[0])


@pytest.mark.slow
def test_monolithic_layout_kept_as_an_option(tmp_path: Path) -> None:
    out = tmp_path / "mono"
    args = ["export", str(folder("smolvla_1cam_empty")), "--out", str(out), "--layout", "monolithic"]
    assert main([*args, "--quiet"]) == 0
    card = PolicyCard.load(out)
    assert card.layout == "monolithic" and card.has("onnx") and card.has("tokenizer")
    rt = load_runtime(out, backend="onnxruntime")
    obs, noise, want, _ = observations("smolvla_1cam_empty")
    got = np.stack([rt.infer(o, noise=n) for o, n in zip(obs, noise)])
    assert np.abs(got - want).max() <= BOUND


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_images_normalized_by_the_checkpoint(tmp_path: Path, backend: str) -> None:
    """VISUAL MEAN_STD: each camera normalized with its [3, 1, 1] statistics before SmolVLA's
    resize, as LeRobot's preprocessor does (ignoring them put the actions off by ~2)."""
    case = "smolvla_images_mean_std"
    out = tmp_path / "card"
    args = ["export", str(folder(case)), "--out", str(out), "--tokenizer", str(VLM), "--quiet"]
    assert main(args) == 0
    card = PolicyCard.load(out)
    norm = card.io.extra["lerobot"]["normalization"]
    assert norm["observation.images.left"] == norm["observation.images.right"] == "MEAN_STD"
    rt = load_runtime(out, backend=backend)
    obs, noise, want, _ = observations(case)
    got = np.stack([rt.infer(o, noise=n) for o, n in zip(obs, noise)])
    assert np.abs(got - want).max() <= BOUND


def _outcome(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_missing_tokenizer_exits_2_naming_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    d = copy_case("smolvla_1cam_empty", tmp_path / "pm", "SomeOrg/NoSuchVLM")
    out = tmp_path / "card"
    code, err = _outcome(["export", str(d), "--out", str(out), "--quiet"], capsys)
    assert code == 2
    assert "SmolVLA needs its VLM's tokenizer.json" in err
    assert "'SomeOrg/NoSuchVLM'" in err and "models--SomeOrg--NoSuchVLM" in err
    assert str(tmp_path / "empty_cache") in err  # the HF cache it looked in
    assert "--tokenizer PATH" in err
    assert not out.exists()
    bad = ["--tokenizer", str(tmp_path / "nope.json")]
    code, err = _outcome(["export", str(d), "--out", str(out), *bad], capsys)
    assert code == 2 and "nope.json" in err and "does not exist" in err
    assert not out.exists()


def test_tokenizer_option_is_for_smolvla_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "card"
    args = ["export", str(folder("act_1cam_meanstd")), "--out", str(out), "--tokenizer", str(VLM)]
    code, err = _outcome(args, capsys)
    assert code == 2 and "applies to SmolVLA checkpoints" in err and "'act'" in err
    assert not out.exists()
