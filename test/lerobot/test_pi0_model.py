"""The spine's LeRobot pi0 / pi0.5 against LeRobot's own outputs (torch, whole path, fixed noise),
their tokens against LeRobot's preprocessor, their loading rules, and bad checkpoints."""

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
    images_and_state,
    load_case,
    provenance,
    tasks,
)
from lerobot_fixtures import BOUND, FIXTURES, folder, golden
from safetensors.torch import load_file, save_file

from vla_ros.spine.checkpoints import (
    LeRobotCheckpoint,
    LeRobotCheckpointError,
    build_lerobot_policy,
    read_lerobot_folder,
)
from vla_ros.spine.checkpoints.normalize import FeatureNormalizer
from vla_ros.spine.components.pi_text import pi05_prompt, state_bins
from vla_ros.spine.components.smolvla_text import TokenizerNotFoundError
from vla_ros.spine.families.lerobot_pi0 import resize_with_pad_centered

TOKENIZER = FIXTURES / "google" / "paligemma-3b-pt-224" / "tokenizer.json"
CASES = (
    "pi0_2cam",
    "pi0_1cam_empty",
    "pi05_2cam",
    "pi05_1cam_trunc",
    "pi0_images_mean_std",
    "pi05_images_min_max",
)
#: goldens whose images LeRobot's preprocessor normalizes (camera feature -> VISUAL mode)
IMAGE_NORM = {
    "pi0_images_mean_std": {"observation.images.top": "MEAN_STD"},
    "pi05_images_min_max": {"observation.images.front": "MIN_MAX"},
}


def obs_of(ckpt: LeRobotCheckpoint, model: torch.nn.Module, inputs: dict, case: str) -> dict:
    """Raw observation (uint8 HWC images, raw state, task strings) -> the spine's inputs."""
    images, state = images_and_state(ckpt, model, inputs)
    texts = tasks(case)
    tokens = model.tokenize(texts, state) if ckpt.policy_type == "pi05" else model.tokenize(texts)
    return {"images": images[:, None], "state": state[:, None], "tokens": tokens}


@pytest.fixture(scope="module", params=CASES)
def loaded(request: pytest.FixtureRequest) -> tuple[str, LeRobotCheckpoint, torch.nn.Module]:
    return load_case(request.param)


def test_torch_whole_path_matches_lerobot(loaded) -> None:
    case, ckpt, model = loaded
    inputs, outputs = golden(case)
    assert_whole_path_matches(ckpt, model, obs_of(ckpt, model, inputs, case), inputs, outputs)


def test_split_layout_equals_predict_and_inputs_matter(loaded) -> None:
    case, ckpt, model = loaded
    inputs, _ = golden(case)
    obs = obs_of(ckpt, model, inputs, case)
    prefix, whole = assert_split_layout_equals_predict(model, obs, inputs["noise"])
    with torch.no_grad():
        moved = model.predict_action({**obs, "state": obs["state"] + 2.0}, noise=inputs["noise"])
    # pi0 reads the state tensor (the expert's state token); pi0.5 only through the prompt
    assert ("prefix_state" in prefix) == (ckpt.policy_type == "pi0")
    if ckpt.policy_type == "pi0":
        assert (moved - whole).abs().max().item() > 1e-3
    else:
        assert torch.equal(moved, whole)


def test_tokens_match_lerobot_preprocessor(loaded, caplog: pytest.LogCaptureFixture) -> None:
    case, ckpt, model = loaded
    inputs, outputs = golden(case)
    model._tokenizer = None  # a fresh tokenizer: its truncation note is logged once per task
    with caplog.at_level(logging.WARNING):
        got = obs_of(ckpt, model, inputs, case)["tokens"]
        obs_of(ckpt, model, inputs, case)
    assert torch.equal(got, outputs["tokens"])
    assert (got[:, 0] == 2).all()  # Gemma's <bos>, added by the tokenizer file's post-processor
    notes = [r for r in caplog.records if "longer than the tokenizer limit" in r.getMessage()]
    expected = {"pi0_1cam_empty": 1, "pi05_1cam_trunc": 2}.get(case, 0)  # once per long task
    assert len(notes) == expected


def test_pi05_prompt_and_state_bins_as_lerobot() -> None:
    """LeRobot's prompts (recorded by the goldens script) from the normalized state."""
    for case in ("pi05_2cam", "pi05_1cam_trunc"):
        ckpt = read_lerobot_folder(folder(case))
        inputs, _ = golden(case)
        state = ckpt.normalizer("observation.state").normalize(inputs["observation.state"])
        bins = state_bins(state)
        prov = provenance(case)
        got = [pi05_prompt(t, b) for t, b in zip(prov["tasks"], bins.tolist(), strict=True)]
        assert got == [p[0] for p in prov["prompts"]]
    # the edges: below -1 -> -1, -1 -> 0, just under 1 - 2/256 -> 254, 1 and above -> 255
    edge = torch.tensor([[-1.5, -1.0, 0.0, 1.0 - 2.0 / 256 - 1e-6, 1.0, 3.0]])
    assert state_bins(edge).tolist() == [[-1, 0, 128, 254, 255, 255]]
    assert pi05_prompt(" pick_up\nthe cube ", [3, -1]) == "Task: pick up the cube, State: 3 -1;\nAction: "


def test_resize_with_pad_centred() -> None:
    img = torch.rand(1, 3, 60, 80)
    out = resize_with_pad_centered(img, 224, 224)
    assert out.shape == (1, 3, 224, 224)
    assert out[:, :, :28].abs().max().item() == 0.0 and out[:, :, 196:].abs().max().item() == 0.0
    assert out[:, :, 28:196].min().item() >= 0.0 and out[:, :, 28:196].std().item() > 0.1
    tall = resize_with_pad_centered(torch.ones(1, 3, 72, 40), 224, 224)
    h, w = int(72 / (72 / 224)), int(40 / (72 / 224))  # 223 x 124: LeRobot's int() truncation
    left = (224 - w) // 2
    assert tall[..., :left].abs().max().item() == 0.0 and tall[..., left + w :].abs().max().item() == 0.0
    assert tall[..., :h, left : left + w].min().item() == 1.0 and tall[..., h:, :].abs().max().item() == 0.0


def test_spine_slots_and_io(loaded) -> None:
    case, ckpt, model = loaded
    assert model.present_slots() == ["vision_backbone", "llm_backbone", "projector", "vla_head"]
    io = model.io_spec()
    assert io.extra["noise_dim"] == int(ckpt.config.get("max_action_dim", 32))  # LeRobot's default 32
    assert io.extra["export_layout"] == "split"
    assert io.extra["family"] == ("lerobot_pi0" if ckpt.policy_type == "pi0" else "lerobot_pi05")
    if case == "pi0_images_mean_std":
        assert io.extra["noise_dim"] == 8
    if case == "pi0_1cam_empty":
        assert io.camera_names == ("front",)  # the empty-camera slot is not a card camera
        assert io.extra["lerobot"]["empty_cameras"] == 1
        assert (io.text_max_len, io.horizon, io.action_dim, io.state_dim) == (6, 6, 5, 7)
        assert io.extra["num_steps"] == 2
    if case == "pi05_2cam":
        assert io.extra["lerobot"]["normalization"] == {
            "observation.images.top": "IDENTITY",  # pi0.5's default: images not normalized
            "observation.images.wrist": "IDENTITY",
            "observation.state": "QUANTILES",
            "action": "QUANTILES",
        }


@pytest.mark.parametrize("case", sorted(IMAGE_NORM))
def test_image_statistics_are_applied_as_lerobot(case: str) -> None:
    """The checkpoint's VISUAL mode and ``[3, 1, 1]`` statistics are the model's per camera (in
    the card's LeRobot summary too), and they matter: the same model with its images left as
    they are misses LeRobot's actions by far more than the parity bound (the bug this guards)."""
    ckpt = read_lerobot_folder(folder(case))
    model = build_lerobot_policy(ckpt)
    ((feature, mode),) = IMAGE_NORM[case].items()
    assert model.io_spec().extra["lerobot"]["normalization"][feature] == mode
    (norm,) = model.image_norm
    assert norm.mode == mode and norm.shape == (3, 1, 1)
    for stat in norm.stat_names:
        assert torch.equal(getattr(norm, stat), ckpt.stats[feature][stat].reshape(3, 1, 1).float())
    inputs, outputs = golden(case)
    obs = obs_of(ckpt, model, inputs, case)
    with torch.no_grad():
        raw = model.predict_action(obs, noise=inputs["noise"])
        model.image_norm = torch.nn.ModuleList([FeatureNormalizer("IDENTITY", (3, 1, 1))])
        plain = model.predict_action(obs, noise=inputs["noise"])
    unnorm = ckpt.normalizer("action").unnormalize
    assert (unnorm(raw) - outputs["action"]).abs().max().item() <= BOUND
    assert (unnorm(plain) - outputs["action"]).abs().max().item() > 0.1


def test_missing_image_statistic_is_refused_naming_it(tmp_path: Path) -> None:
    """A MEAN_STD camera without its ``std`` statistic: refused naming the feature, the mode and
    the statistic (never run un-normalized); with none of its statistics it is not normalized,
    as LeRobot's normalizer skips a feature without statistics."""
    d = _copy("pi0_images_mean_std", tmp_path)
    files = [
        d / "policy_preprocessor_step_6_normalizer_processor.safetensors",
        d / "policy_postprocessor_step_0_unnormalizer_processor.safetensors",  # it has them too
    ]
    full = [load_file(str(f)) for f in files]
    for f, stats in zip(files, full, strict=True):
        save_file({k: v for k, v in stats.items() if k != "observation.images.top.std"}, str(f))
    with pytest.raises(LeRobotCheckpointError, match=r"'observation.images.top' .*MEAN_STD.*'std'"):
        build_lerobot_policy(read_lerobot_folder(d))
    for f, stats in zip(files, full, strict=True):
        save_file({k: v for k, v in stats.items() if not k.startswith("observation.images.")}, str(f))
    model = build_lerobot_policy(read_lerobot_folder(d))
    assert [n.mode for n in model.image_norm] == ["IDENTITY"]


def _copy(case: str, tmp_path: Path) -> Path:
    dst = tmp_path / case
    shutil.copytree(folder(case), dst)
    return dst


def _predict(d: Path, case: str) -> torch.Tensor:
    ckpt = read_lerobot_folder(d)
    model = build_lerobot_policy(ckpt)
    model.tokenizer_file = str(TOKENIZER)  # the copy is not under test/fixtures/lerobot
    inputs, _ = golden(case)
    with torch.no_grad():
        return model.predict_action(obs_of(ckpt, model, inputs, case), noise=inputs["noise"])


@pytest.mark.parametrize("case", ["pi0_1cam_empty", "pi05_1cam_trunc"])
def test_openpi_key_names_and_tied_lm_head_load_as_lerobot(case: str, tmp_path: Path) -> None:
    """openpi-style names (no ``model.``; pi0 ``time_mlp_*``, pi0.5 ``action_time_mlp_*`` and a stray
    ``state_proj``) and a checkpoint whose embed_tokens lives only in the tied lm_head."""
    d = _copy(case, tmp_path)
    sd = load_file(str(d / "model.safetensors"))
    embed = "model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
    sd["model.paligemma_with_expert.paligemma.lm_head.weight"] = sd.pop(embed)
    renamed = {}
    for k, v in sd.items():
        k = k[len("model.") :]
        if case.startswith("pi0_") and k.startswith("action_time_mlp_"):
            k = k[len("action_") :]
        elif case.startswith("pi05") and k.startswith("time_mlp_"):
            k = "action_" + k
        renamed[k] = v
    if case.startswith("pi05"):
        renamed["state_proj.weight"] = torch.zeros(3, 32)  # LeRobot skips it for pi0.5
    assert any(k.startswith(("time_mlp_", "action_time_mlp_")) for k in renamed)
    save_file(renamed, str(d / "model.safetensors"))
    _, outputs = golden(case)
    got = _predict(d, case)
    assert (got - outputs["action.normalized"]).abs().max().item() <= BOUND


def test_weight_mismatch_names_the_keys(tmp_path: Path) -> None:
    d = _copy("pi0_2cam", tmp_path)
    sd = load_file(str(d / "model.safetensors"))
    sd.pop("model.paligemma_with_expert.gemma_expert.model.layers.1.self_attn.k_proj.weight")
    sd["model.state_proj.weight"] = torch.zeros(48, 30)
    save_file(sd, str(d / "model.safetensors"))
    with pytest.raises(LeRobotCheckpointError) as err:
        build_lerobot_policy(read_lerobot_folder(d))
    msg = str(err.value)
    assert "gemma_expert.model.layers.1.self_attn.k_proj.weight" in msg
    assert "state_proj.weight model(48, 32) vs checkpoint(48, 30)" in msg


def _edit_config(d: Path, edit) -> None:
    cfg = json.loads((d / "config.json").read_text())
    edit(cfg)
    (d / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c.update(paligemma_variant="gemma_7b"), r"paligemma_variant 'gemma_7b' is not a variant"),
        (lambda c: c.update(action_expert_variant="gemma_tiny_expert_gqa"), "share one KV cache"),
        (lambda c: c.update(use_relative_actions=True), "use_relative_actions"),
        (lambda c: c.update(image_resolution=[224, 256]), "not square"),
        (lambda c: c["input_features"].pop("observation.state"), "no 'observation.state' input"),
        (lambda c: c.update(max_state_dim=16), r"state_proj.weight model\(48, 16\)"),
    ],
)
def test_options_and_configs_vla_ros_refuses(tmp_path: Path, edit, match: str) -> None:
    d = _copy("pi0_2cam", tmp_path)
    if "gqa" in str(edit.__code__.co_consts):
        variants = json.loads(
            (FIXTURES / "pi05_2cam" / "pretrained_model" / "gemma_variants.json").read_text()
        )
        mine = json.loads((d / "gemma_variants.json").read_text())
        mine["variants"].update(variants["variants"])
        (d / "gemma_variants.json").write_text(json.dumps(mine))
    _edit_config(d, edit)
    with pytest.raises(LeRobotCheckpointError, match=match):
        build_lerobot_policy(read_lerobot_folder(d))


def test_missing_tokenizer_says_where_it_looked(tmp_path: Path) -> None:
    d = _copy("pi0_2cam", tmp_path)  # outside test/fixtures: google/paligemma-3b-pt-224 is not near
    model = build_lerobot_policy(read_lerobot_folder(d))
    assert "models--google--paligemma-3b-pt-224" in model.io_spec().extra["lerobot"]["tokenizer_missing"]
    with pytest.raises(TokenizerNotFoundError, match="paligemma-3b-pt-224"):
        model.tokenize("pick up the cube")


def test_pi05_tokenize_needs_the_state_and_noise_shape_is_checked() -> None:
    case = "pi05_2cam"
    ckpt = read_lerobot_folder(folder(case))
    model = build_lerobot_policy(ckpt)
    with pytest.raises(ValueError, match="discretized state"):
        model.tokenize("pick up the cube")
    with pytest.raises(ValueError, match="one normalized state row per task"):
        model.tokenize(["a", "b"], torch.zeros(3, 6))
    inputs, _ = golden(case)
    obs = obs_of(ckpt, model, inputs, case)
    with pytest.raises(ValueError, match="max_action_dim=32"):
        model.predict_action(obs, noise=inputs["noise"][..., : model.io.action_dim])


def test_siglip_tower_drops_the_remainder_of_an_unaligned_resolution() -> None:
    """LeRobot's ``image_resolution`` need not be a multiple of SigLIP's 14 px patch: 100 px is a
    7 x 7 grid (transformers' stride-14 conv drops the last 2 px), positions 0..48 as at 98 px."""
    from vla_ros.spine.components.paligemma import SiglipVisionTower

    torch.manual_seed(0)
    kw = {"patch_size": 14, "dim": 16, "depth": 1, "heads": 2, "mlp_hidden": 24}
    t100, t98 = SiglipVisionTower(image_size=100, **kw), SiglipVisionTower(image_size=98, **kw)
    t98.load_state_dict(t100.state_dict())
    x = torch.rand(2, 3, 100, 100) * 2 - 1
    with torch.no_grad():
        out = t100(x)
        assert out.shape == (2, 49, 16)
        assert torch.equal(out, t98(x[..., :98, :98]))
        assert not torch.equal(out, t100(torch.roll(x, 1, dims=-1)))


def test_another_models_tokenizer_is_refused_naming_both_sizes() -> None:
    """SmolVLM's tokenizer (320 tokens) on a pi0 whose table has 298 rows: ids past the table
    would fail inside the graph; refused at build, naming the file, both sizes and the fix."""
    smolvlm = FIXTURES / "smolvla_vlm_tiny" / "tokenizer.json"
    with pytest.raises(LeRobotCheckpointError) as err:
        build_lerobot_policy(read_lerobot_folder(folder("pi0_2cam")), tokenizer=smolvlm)
    msg = str(err.value)
    assert f"tokenizer {smolvlm} has 320 tokens" in msg and "embeds 298" in msg
    assert "--tokenizer" in msg and "paligemma-3b-pt-224" in msg
    # PaliGemma's own (the fixture tokenizer, 298 tokens) fits
    model = build_lerobot_policy(read_lerobot_folder(folder("pi0_2cam")), tokenizer=TOKENIZER)
    assert model.tokenizer_file == str(TOKENIZER)


def test_a_fitting_tokenizer_without_gemmas_layout_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A tokenizer small enough for the table but without Gemma's ``<bos>`` at id 2 (another
    model's, ids silently different): built, with one warning, kept in ``ckpt.warnings``."""
    from tokenizers import Tokenizer as Tok
    from tokenizers import models

    vocab = {"<|endoftext|>": 0, "<|im_start|>": 1, "<bos>": 5, "[UNK]": 3, "pick": 4}
    other = tmp_path / "tokenizer.json"
    Tok(models.WordLevel(vocab, unk_token="[UNK]")).save(str(other))
    ckpt = read_lerobot_folder(folder("pi0_2cam"))
    with caplog.at_level(logging.WARNING):
        build_lerobot_policy(ckpt, tokenizer=other)
    notes = [r.getMessage() for r in caplog.records if "no Gemma <bos> at id 2 (it has 5)" in r.getMessage()]
    assert len(notes) == 1 and str(other) in notes[0]
    assert [w for w in ckpt.warnings if "no Gemma <bos>" in w] == notes
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build_lerobot_policy(read_lerobot_folder(folder("pi0_2cam")), tokenizer=TOKENIZER)
    assert not [r for r in caplog.records if "Gemma <bos>" in r.getMessage()]


def test_build_in_place_shares_the_checkpoint_tensors_and_keeps_their_dtypes() -> None:
    """The low-memory build (full-size benchmarks): the model's parameters ARE the checkpoint's
    tensors (no copy); at fp32 it predicts exactly what the copying build does; with LeRobot's
    bf16 layout (``to_bfloat16_for_selected_params``: SigLIP, projector and norms stay fp32) the
    dtypes are kept and the actions stay within bf16 rounding of fp32's."""
    from vla_ros.spine.families.lerobot_pi0_checkpoint import build_in_place

    case = "pi05_2cam"
    ckpt = read_lerobot_folder(folder(case))
    inputs, _ = golden(case)
    ref = build_lerobot_policy(ckpt)
    obs = obs_of(ckpt, ref, inputs, case)
    model = build_in_place(ckpt)
    ptrs = {t.data_ptr() for t in ckpt.state_dict.values()}
    assert all(p.data_ptr() in ptrs for p in model.parameters())
    with torch.no_grad():
        want = ref.predict_action(obs, noise=inputs["noise"])
        assert torch.equal(model.predict_action(obs, noise=inputs["noise"]), want)
    keep = (
        "vision_tower",
        "multi_modal_projector",
        "input_layernorm",
        "post_attention_layernorm",
        "model.norm",
    )
    ckpt.state_dict = {
        k: v
        if not k.startswith("model.paligemma_with_expert.") or any(s in k for s in keep)
        else v.bfloat16()
        for k, v in ckpt.state_dict.items()
    }
    low = build_in_place(ckpt)
    assert low.llm_backbone.layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16
    assert low.llm_backbone.layers[0].input_layernorm.weight.dtype == torch.float32
    assert low.vision_backbone.embeddings.patch_embedding.weight.dtype == torch.float32
    assert low.vla_head.action_in_proj.weight.dtype == torch.float32
    with torch.no_grad():
        got = low.predict_action(obs, noise=inputs["noise"])
    assert got.dtype == torch.float32
    assert 0.0 < (got - want).abs().max().item() < 5e-2


def test_build_in_place_normalizes_images_as_the_copying_build() -> None:
    """The low-memory build carries the cameras' VISUAL statistics too (not the zeros of a meta
    buffer): its actions are exactly the copying build's, LeRobot's within the bound."""
    from vla_ros.spine.families.lerobot_pi0_checkpoint import build_in_place

    case = "pi0_images_mean_std"
    ckpt = read_lerobot_folder(folder(case))
    inputs, outputs = golden(case)
    ref = build_lerobot_policy(ckpt)
    model = build_in_place(ckpt)
    obs = obs_of(ckpt, ref, inputs, case)
    assert torch.equal(model.image_norm[0].std, ckpt.stats["observation.images.top"]["std"].reshape(3, 1, 1))
    with torch.no_grad():
        got = model.predict_action(obs, noise=inputs["noise"])
        assert torch.equal(got, ref.predict_action(obs, noise=inputs["noise"]))
    actions = ckpt.normalizer("action").unnormalize(got)
    assert (actions - outputs["action"]).abs().max().item() <= BOUND
