"""``vla-ros export`` from the command line, checkpoints, and unsafe/corrupt weight files."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import yaml

from vla_ros.cli import main
from vla_ros.contract.errors import ModelFileError, UnsafeCheckpointError
from vla_ros.export import PolicyCard, export_policy
from vla_ros.export.api import build_model
from vla_ros.runtime import load_runtime
from vla_ros.runtime.base import synthetic_observation
from vla_ros.runtime.trt_engine import tensorrt_unavailable_reason
from vla_ros.spine.weights import save_weights


def test_cli_export_with_stats_file(tmp_path, capsys):
    stats = {
        "state_joints": [f"j{i}" for i in range(7)],
        "action_joints": [f"j{i}" for i in range(7)],
        "normalization": {
            "state": {"mean": [0.1] * 7, "std": [2.0] * 7},
            "action": {"mean": [0.5] * 7, "std": [3.0] * 7},
        },
    }
    (tmp_path / "stats.yaml").write_text(yaml.safe_dump(stats))
    rc = main(
        [
            "export",
            "act_tiny",
            "--out",
            str(tmp_path / "card"),
            "--stats",
            str(tmp_path / "stats.yaml"),
            "--name",
            "pick",
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "[4/5] parity: onnxruntime vs torch" in out.err  # progress display
    assert "wrote" in out.out and "pick@" in out.out
    card = PolicyCard.load(tmp_path / "card")
    assert card.name == "pick"
    assert card.state_joints[0] == "j0"
    assert card.normalization.action.std == [3.0] * 7
    assert card.provenance["export_command"].startswith("vla-ros export")


def test_cli_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["export", "act_tiny"]) == 1
    assert "--out DIR is required" in capsys.readouterr().err
    assert main(["export", "no_such_family_tiny", "--out", str(tmp_path)]) == 1
    assert "neither a file nor a name" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("state: {mean: [1]}\n")
    assert (
        main(["export", "act_tiny", "--out", str(tmp_path / "c"), "--stats", str(tmp_path / "bad.yaml")]) == 1
    )
    assert "normalization" in capsys.readouterr().err
    assert main(["export", "act_tiny", "--out", str(tmp_path / "c"), "--precision", "fp16"]) == 1
    assert "applies to the TensorRT engine" in capsys.readouterr().err
    missing = str(tmp_path / "none.npz")
    args = [
        "export",
        "act_tiny",
        "--out",
        str(tmp_path / "c"),
        "--precision",
        "int8",
        "--calibration",
        missing,
    ]
    assert main(args) == 1
    assert f"--calibration {missing!r} does not exist" in capsys.readouterr().err


def test_cli_int8_export(tmp_path, capsys):
    assert main(["export", "act_tiny", "--out", str(tmp_path / "c"), "--precision", "int8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "model.int8.onnx" in out and "parity: max_abs_err" in out


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT can run here")
def test_cli_tensorrt_where_it_cannot_run(tmp_path, capsys):
    rc = main(["export", "act_tiny", "--out", str(tmp_path / "c"), "--backends", "onnx,tensorrt"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "cannot run here" in err and "--backends tensorrt" in err
    assert not (tmp_path / "c" / "card.yaml").exists()


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(123)
    trained, _, _ = build_model("act_tiny", None, seed=123)
    save_weights(trained, tmp_path / "w.safetensors")
    rc = main(
        ["export", "act_tiny", str(tmp_path / "w.safetensors"), "--out", str(tmp_path / "card"), "--quiet"]
    )
    assert rc == 0
    card = PolicyCard.load(tmp_path / "card")
    assert card.provenance["checkpoint"].endswith("w.safetensors")
    assert len(card.provenance["checkpoint_sha256"]) == 64
    obs = synthetic_observation(card)
    with torch.no_grad():
        from vla_ros.runtime.processing import Preprocessor

        feeds = {k: torch.from_numpy(v) for k, v in Preprocessor(card)(obs).items()}
        ref = trained.predict_action(feeds)[0].numpy()
    got = load_runtime(card.root, "onnxruntime").run_model(Preprocessor(card)(obs))[0]
    assert np.max(np.abs(got - ref)) < 1e-4
    # a checkpoint given alone finds its config next to it
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(card.model_config))
    assert main(["export", str(tmp_path / "w.safetensors"), "--out", str(tmp_path / "c2"), "--quiet"]) == 0
    assert PolicyCard.load(tmp_path / "c2").hashes[card.files["onnx"]] == card.hashes[card.files["onnx"]]


def test_unsafe_pickle_checkpoint_is_refused(tmp_path):
    model, _, _ = build_model("act_tiny", None)
    # a training checkpoint with a Python object beside the weights: loading it would need
    # unpickling arbitrary classes
    torch.save(
        {"state_dict": model.state_dict(), "hparams": argparse.Namespace(lr=1e-4)}, tmp_path / "ckpt.pt"
    )
    with pytest.raises(UnsafeCheckpointError, match=r"unpickling.*safetensors"):
        export_policy("act_tiny", tmp_path / "c", checkpoint=tmp_path / "ckpt.pt")


def test_corrupt_and_mismatched_checkpoints(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"\x00\x01 not a safetensors file")
    with pytest.raises(ModelFileError, match="cannot be read"):
        export_policy("act_tiny", tmp_path / "c", checkpoint=tmp_path / "junk.safetensors")
    other, _, _ = build_model("flow_matching_tiny", None)
    save_weights(other, tmp_path / "other.safetensors")
    with pytest.raises(ModelFileError, match=r"do not fit the model.*missing"):
        export_policy("act_tiny", tmp_path / "c", checkpoint=tmp_path / "other.safetensors")
    with pytest.raises(ModelFileError, match="does not exist"):
        export_policy("act_tiny", tmp_path / "c", checkpoint=tmp_path / "absent.safetensors")


@pytest.mark.skipif(tensorrt_unavailable_reason() is None, reason="TensorRT can run here")
def test_cli_add_engine_to_card_where_tensorrt_is_missing(tmp_path, capsys):
    from support.export_testlib import copy_card, exported_card

    card_dir = copy_card(exported_card("act_tiny"), tmp_path / "card")
    before = (card_dir / "card.yaml").read_text()
    assert main(["export", str(card_dir)]) == 1
    assert "already a policy card" in capsys.readouterr().err
    assert main(["export", str(card_dir), "--backends", "tensorrt", "--precision", "fp16"]) == 1
    err = capsys.readouterr().err
    assert "TensorRT engines cannot be built or run here" in err
    assert (card_dir / "card.yaml").read_text() == before  # the card is left as it was


def test_pretrained_entry_in_config(tmp_path):
    from vla_ros.spine.config import load_config

    trained, _, _ = build_model("act_tiny", None, seed=7)
    save_weights(trained, tmp_path / "w.safetensors")
    cfg = load_config("act_tiny")
    cfg["pretrained"] = {"path": str(tmp_path / "w.safetensors")}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(cfg))
    card = export_policy(str(tmp_path / "m.yaml"), tmp_path / "card")
    assert "pretrained" not in card.model_config
    assert card.provenance["pretrained"]["path"].endswith("w.safetensors")
    (tmp_path / "w.safetensors").unlink()  # the card carries its own weights
    obs = synthetic_observation(card)
    a = load_runtime(card.root, "torch").infer(obs)
    b = load_runtime(card.root, "onnxruntime").infer(obs)
    assert np.max(np.abs(a - b)) < 1e-4
    with torch.no_grad():
        from vla_ros.runtime.processing import Preprocessor

        feeds = {k: torch.from_numpy(v) for k, v in Preprocessor(card)(obs).items()}
        assert np.max(np.abs(trained.predict_action(feeds)[0].numpy() - a)) < 1e-4
    # a pickled pretrained checkpoint is refused like any other
    torch.save({"state_dict": trained.state_dict(), "hp": argparse.Namespace()}, tmp_path / "x.pt")
    cfg["pretrained"] = {"path": str(tmp_path / "x.pt")}
    with pytest.raises(UnsafeCheckpointError):
        export_policy(cfg, tmp_path / "card2")
