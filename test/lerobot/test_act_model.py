"""The spine's LeRobot ACT against LeRobot's own outputs (torch, whole path) and its full-size keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from lerobot_fixtures import ACT_CASES, BOUND, FIXTURES, folder, golden
from safetensors.torch import load_file, save_file

from vla_ros.spine.checkpoints import (
    LeRobotCheckpoint,
    LeRobotCheckpointError,
    LeRobotFeature,
    build_lerobot_policy,
    read_lerobot_folder,
)
from vla_ros.spine.families.lerobot_act import NAME_MAPPING, VAE_PREFIX, act_model_config
from vla_ros.spine.weights import map_name


def whole_path(ckpt: LeRobotCheckpoint, model: torch.nn.Module, inputs: dict) -> torch.Tensor:
    """Raw observation (uint8 HWC images, raw state) -> raw actions, as the card's runtime does it."""
    images = torch.stack(
        [inputs[f].permute(0, 3, 1, 2).to(torch.float32) / 255.0 for f in ckpt.image_features], dim=1
    )[:, None]
    state = ckpt.normalizer("observation.state").normalize(inputs["observation.state"])[:, None]
    with torch.no_grad():
        actions = model.predict_action({"images": images, "state": state})
    return ckpt.normalizer("action").unnormalize(actions)


@pytest.mark.parametrize("case", ACT_CASES)
def test_torch_whole_path_matches_lerobot(case: str) -> None:
    ckpt = read_lerobot_folder(folder(case))
    model = build_lerobot_policy(ckpt)
    inputs, outputs = golden(case)
    got = whole_path(ckpt, model, inputs)
    assert got.shape == outputs["action"].shape
    assert (got - outputs["action"]).abs().max().item() <= BOUND
    # the golden actions vary over the chunk and between observations (a constant would not)
    assert outputs["action"].std(dim=1).min().item() > 1e-3


def test_spine_slots_and_io() -> None:
    model = build_lerobot_policy(read_lerobot_folder(folder("act_2cam_minmax_prenorm")))
    assert model.present_slots() == ["vision_backbone", "projector", "vla_head"]
    io = model.io_spec()
    assert io.camera_names == ("cam_high", "cam_wrist")
    assert io.image_size == (64, 48)
    assert (io.state_dim, io.action_dim, io.horizon) == (7, 5, 10)
    assert io.extra["lerobot"]["n_action_steps"] == 5
    assert io.extra["lerobot"]["normalization"]["observation.state"] == "MIN_MAX"


def test_full_size_key_list_matches_lerobot() -> None:
    """Every LeRobot default-size ACT weight (names and shapes, meta device), VAE aside."""
    data = json.loads((FIXTURES / "act_full_keys.json").read_text())
    cfg = data["config"]
    feats = {
        k: LeRobotFeature(v["type"], tuple(v["shape"]))
        for k, v in {**cfg["input_features"], **cfg["output_features"]}.items()
    }
    ckpt = LeRobotCheckpoint(
        path=Path("full"),
        policy_type="act",
        config=cfg,
        state_dict={},
        stats={},
        norm_map=dict(cfg["normalization_mapping"]),
        input_features={k: v for k, v in feats.items() if k in cfg["input_features"]},
        output_features={"action": feats["action"]},
    )
    from vla_ros.spine.build import build_vla

    with torch.device("meta"):
        model = build_vla(act_model_config(ckpt))
    pairs = list(NAME_MAPPING.items())
    ours = {
        map_name(k, pairs): list(v.shape)
        for k, v in model.state_dict().items()
        if not k.startswith("image_norm.")
    }
    theirs = {k: v for k, v in data["keys"].items() if not k.startswith(VAE_PREFIX)}
    assert ours == theirs
    assert sum(torch.Size(s).numel() for s in theirs.values()) > 30e6  # the real size (34 M without the VAE)
    assert any(k.startswith(VAE_PREFIX) for k in data["keys"])  # what the spine drops exists


def _copy(case: str, tmp_path: Path) -> Path:
    dst = tmp_path / case
    shutil.copytree(folder(case), dst)
    return dst


def test_weight_mismatch_names_the_keys(tmp_path: Path) -> None:
    d = _copy("act_1cam_meanstd", tmp_path)
    sd = load_file(str(d / "model.safetensors"))
    sd.pop("model.decoder.layers.1.linear1.weight")
    sd["model.extra.weight"] = torch.zeros(2)
    sd["model.action_head.weight"] = torch.zeros(3, 32)
    save_file(sd, str(d / "model.safetensors"))
    with pytest.raises(LeRobotCheckpointError) as err:
        build_lerobot_policy(read_lerobot_folder(d))
    msg = str(err.value)
    assert "decoder.layers.1.linear1.weight" in msg
    assert "model.extra.weight" in msg
    assert "action_head.weight model(6, 32) vs checkpoint(3, 32)" in msg


def test_config_that_does_not_fit_the_weights(tmp_path: Path) -> None:
    d = _copy("act_1cam_meanstd", tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["n_decoder_layers"] = 1
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LeRobotCheckpointError, match=r"unexpected .*model.decoder.layers.1"):
        build_lerobot_policy(read_lerobot_folder(d))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c.update(vision_backbone="resnet50"), r"'resnet50' is not supported; .*resnet18"),
        (lambda c: c["input_features"].pop("observation.state"), "no 'observation.state' input"),
        (
            lambda c: c["input_features"].update(
                {"observation.environment_state": {"type": "ENV", "shape": [4]}}
            ),
            "environment state",
        ),
    ],
)
def test_features_and_options_the_card_cannot_map(tmp_path: Path, edit, match: str) -> None:
    d = _copy("act_quantiles", tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    edit(cfg)
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LeRobotCheckpointError, match=match):
        build_lerobot_policy(read_lerobot_folder(d))


def test_cameras_of_different_sizes(tmp_path: Path) -> None:
    d = _copy("act_2cam_minmax_prenorm", tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["input_features"]["observation.images.cam_wrist"]["shape"] = [3, 32, 32]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LeRobotCheckpointError, match="cameras have different sizes"):
        build_lerobot_policy(read_lerobot_folder(d))
