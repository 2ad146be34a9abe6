"""The spine's LeRobot SmolVLA against LeRobot's own outputs (torch, whole path, fixed noise),
its tokenizer against LeRobot's preprocessor, and its full-size keys against smolvla_base's."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from flow_helpers import (
    assert_split_layout_equals_predict,
    assert_whole_path_matches,
    full_keys_checkpoint,
    images_and_state,
    load_case,
    tasks,
)
from lerobot_fixtures import FIXTURES, folder, golden
from safetensors.torch import load_file, save_file

from vla_ros.spine.checkpoints import (
    LeRobotCheckpoint,
    LeRobotCheckpointError,
    build_lerobot_policy,
    read_lerobot_folder,
)
from vla_ros.spine.components.smolvla_text import TokenizerNotFoundError, find_tokenizer_file
from vla_ros.spine.families.lerobot_smolvla import NAME_MAPPING, UNUSED_PREFIXES, resize_with_pad
from vla_ros.spine.families.lerobot_smolvla_checkpoint import smolvla_model_config
from vla_ros.spine.weights import map_name

CASES = ("smolvla_2cam", "smolvla_1cam_empty", "smolvla_images_mean_std")


def obs_of(ckpt: LeRobotCheckpoint, model: torch.nn.Module, inputs: dict, case: str) -> dict:
    """Raw observation (uint8 HWC images, raw state, task strings) -> the spine's inputs."""
    images, state = images_and_state(ckpt, model, inputs)
    return {"images": images[:, None], "state": state[:, None], "tokens": model.tokenize(tasks(case))}


@pytest.fixture(scope="module", params=CASES)
def loaded(request: pytest.FixtureRequest) -> tuple[str, LeRobotCheckpoint, torch.nn.Module]:
    return load_case(request.param)


def test_torch_whole_path_matches_lerobot(loaded) -> None:
    case, ckpt, model = loaded
    inputs, outputs = golden(case)
    assert_whole_path_matches(ckpt, model, obs_of(ckpt, model, inputs, case), inputs, outputs)


def test_split_layout_equals_predict_and_noise_matters(loaded) -> None:
    case, ckpt, model = loaded
    inputs, _ = golden(case)
    obs = obs_of(ckpt, model, inputs, case)
    assert_split_layout_equals_predict(model, obs, inputs["noise"])


def test_tokens_match_lerobot_preprocessor(loaded, caplog: pytest.LogCaptureFixture) -> None:
    case, _, model = loaded
    _, outputs = golden(case)
    model._tokenizer = None  # a fresh tokenizer: its truncation note is logged once
    with caplog.at_level(logging.WARNING):
        got = model.tokenize(tasks(case))
        model.tokenize(tasks(case))
    assert torch.equal(got, outputs["tokens"])
    assert (got[:, 0] == 1).all()  # the tokenizer file's BOS post-processor ran, as in LeRobot
    notes = [r for r in caplog.records if "longer than the tokenizer limit" in r.getMessage()]
    assert len(notes) == (1 if case == "smolvla_1cam_empty" else 0)  # once per tokenizer


def test_resize_with_pad_keeps_aspect_and_pads_left_top() -> None:
    img = torch.rand(1, 3, 48, 64)
    out = resize_with_pad(img, 512, 512)
    assert out.shape == (1, 3, 512, 512)
    assert out[:, :, :128].abs().max().item() == 0.0  # 512 * (1 - 48/64) rows on top
    assert out[:, :, 128:].min().item() >= 0.0 and out[:, :, 128:].std().item() > 0.1
    tall = resize_with_pad(torch.ones(1, 3, 72, 40), 512, 512)
    w = int(40 / (72 / 512))
    assert tall[..., : 512 - w].abs().max().item() == 0.0 and tall[..., 512 - w :].min().item() == 1.0


def test_spine_slots_and_io(loaded) -> None:
    case, _, model = loaded
    assert model.present_slots() == ["vision_backbone", "llm_backbone", "projector", "vla_head"]
    io = model.io_spec()
    assert io.extra["noise_dim"] == 32 and io.extra["export_layout"] == "split"
    if case == "smolvla_1cam_empty":
        assert io.camera_names == ("front",)  # the empty-camera slot is not a card camera
        assert io.extra["lerobot"]["empty_cameras"] == 1
        assert (io.text_max_len, io.horizon, io.action_dim, io.state_dim) == (8, 8, 4, 5)


def test_full_size_key_list_matches_lerobot() -> None:
    """Every weight of LeRobot's default-size SmolVLA (smolvla_base's layout; names and shapes on
    the meta device), the VLM's unused LM head aside."""
    data, ckpt = full_keys_checkpoint("smolvla")
    from vla_ros.spine.build import build_vla

    model_cfg = smolvla_model_config(ckpt)
    assert model_cfg["lerobot"]["vlm_config"] == "built-in SmolVLM2-500M numbers"
    with torch.device("meta"):
        model = build_vla(model_cfg)
    ours = {map_name(k, list(NAME_MAPPING.items())): list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: v for k, v in data["keys"].items() if not k.startswith(UNUSED_PREFIXES)}
    assert ours == theirs
    assert sum(torch.Size(s).numel() for s in data["keys"].values()) > 440e6  # smolvla_base's 450 M
    assert any(k.startswith(UNUSED_PREFIXES) for k in data["keys"])  # what the spine drops exists


def _copy(case: str, tmp_path: Path) -> Path:
    dst = tmp_path / case
    shutil.copytree(folder(case), dst)
    return dst


def test_weight_mismatch_names_the_keys(tmp_path: Path) -> None:
    d = _copy("smolvla_1cam_empty", tmp_path)
    sd = load_file(str(d / "model.safetensors"))
    sd.pop("model.vlm_with_expert.lm_expert.layers.1.self_attn.k_proj.weight")
    sd["model.state_proj.weight"] = torch.zeros(64, 30)
    save_file(sd, str(d / "model.safetensors"))
    with pytest.raises(LeRobotCheckpointError) as err:
        build_lerobot_policy(read_lerobot_folder(d))
    msg = str(err.value)
    assert "lm_expert.layers.1.self_attn.k_proj.weight" in msg
    assert "state_proj.weight model(64, 32) vs checkpoint(64, 30)" in msg


def test_missing_tokenizer_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(TokenizerNotFoundError) as err:
        find_tokenizer_file("SomeOrg/NoSuchVLM", near=tmp_path)
    msg = str(err.value)
    assert "SomeOrg/NoSuchVLM" in msg and "models--SomeOrg--NoSuchVLM" in msg
    d = _copy("smolvla_2cam", tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["vlm_model_name"] = str(FIXTURES / "smolvla_vlm_tiny")  # the VLM config is found ...
    (d / "config.json").write_text(json.dumps(cfg))
    pre = json.loads((d / "policy_preprocessor.json").read_text())
    for step in pre["steps"]:
        if step["registry_name"] == "tokenizer_processor":
            step["config"]["tokenizer_name"] = "SomeOrg/NoSuchVLM"  # ... but not the tokenizer
    (d / "policy_preprocessor.json").write_text(json.dumps(pre))
    model = build_lerobot_policy(read_lerobot_folder(d))
    with pytest.raises(TokenizerNotFoundError, match="tokenizer"):
        model.tokenize("pick up the cube")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda c: c.update(adapt_to_pi_aloha=True),
            r"options vla_ros does not run: adapt_to_pi_aloha = true \(supported: false; the pi-ALOHA",
        ),
        (
            lambda c: c.update(use_delta_joint_actions_aloha=True, attention_mode="self_attn"),
            r"use_delta_joint_actions_aloha = true \(supported: false; LeRobot 0.6.1 refuses it too "
            r"\(not ported\)\); attention_mode = \"self_attn\" \(supported: 'cross_attn'\)",
        ),
        (
            lambda c: c.update(num_expert_layers=2),
            r"num_expert_layers = 2 \(supported: -1 or num_vlm_layers \(4\)\)",
        ),
        (
            lambda c: c.update(resize_imgs_with_padding=[512, 384]),
            r"resize_imgs_with_padding is \[512, 384\]; .* square images whose side is a multiple of 64",
        ),
        (  # null: LeRobot feeds the 48x64 cameras unresized (and fails in the pixel shuffle)
            lambda c: c.update(resize_imgs_with_padding=None),
            r"resize_imgs_with_padding is null \(the cameras' own size 48x64\)",
        ),
        (lambda c: c.update(vlm_model_name="SomeOrg/NoSuchVLM"), "models--SomeOrg--NoSuchVLM"),
        (lambda c: c["input_features"].pop("observation.state"), "no 'observation.state' input"),
        (lambda c: c.update(num_vlm_layers=2), r"unexpected 36 .*lm_expert.layers.2"),
    ],
)
def test_options_and_configs_vla_ros_refuses(tmp_path: Path, edit, match: str) -> None:
    d = _copy("smolvla_2cam", tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["vlm_model_name"] = str(FIXTURES / "smolvla_vlm_tiny")
    edit(cfg)
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(LeRobotCheckpointError, match=match):
        build_lerobot_policy(read_lerobot_folder(d))


def test_noise_of_the_action_dim_is_refused(loaded) -> None:
    case, ckpt, model = loaded
    inputs, _ = golden(case)
    obs = obs_of(ckpt, model, inputs, case)
    with pytest.raises(ValueError, match="max_action_dim=32"):
        model.predict_action(obs, noise=inputs["noise"][..., : model.io.action_dim])


def test_vision_positions_of_a_smaller_resize_are_bucketed() -> None:
    """resize_imgs_with_padding below the tower's size: transformers buckets the patch grid's
    fractional coordinates into the learned 32 x 32 table (checked against LeRobot live in
    test_review_live.py): 16 x 16 patches (256 px) take every other row and column, 8 x 8
    (128 px) every fourth; the tower's own size is the identity."""
    from vla_ros.spine.components.siglip import bucketed_position_ids

    i = torch.arange(16)
    assert torch.equal(bucketed_position_ids(16, 16, 32), (2 * i[:, None] * 32 + 2 * i[None, :]).reshape(-1))
    j = torch.arange(8)
    assert torch.equal(bucketed_position_ids(8, 8, 32), (4 * j[:, None] * 32 + 4 * j[None, :]).reshape(-1))
    assert torch.equal(bucketed_position_ids(32, 32, 32), torch.arange(32 * 32))
