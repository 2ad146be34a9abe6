"""read_lerobot_folder and LeRobot's normalization modes, against LeRobot's own files and outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from lerobot_fixtures import ACT_CASES, golden
from lerobot_fixtures import folder as case_folder
from safetensors.torch import load_file, save_file

from vla_ros.spine.checkpoints import (
    FeatureNormalizer,
    LeRobotCheckpointError,
    card_affine,
    read_lerobot_folder,
)

EXPECTED_MODES = {
    "act_1cam_meanstd": {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
    "act_2cam_minmax_prenorm": {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"},
    "act_quantiles": {"VISUAL": "IDENTITY", "STATE": "QUANTILES", "ACTION": "QUANTILE10"},
    "act_legacy_v03": {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
}


@pytest.mark.parametrize("case", ACT_CASES)
def test_reader_reads_every_fixture(case: str) -> None:
    ck = read_lerobot_folder(case_folder(case))
    assert ck.policy_type == "act"
    assert ck.norm_map == EXPECTED_MODES[case]
    assert ck.layout == ("legacy" if case == "act_legacy_v03" else "processor")
    assert ck.output_features["action"].type == "ACTION"
    assert ck.input_features["observation.state"].type == "STATE"
    # no normalization buffer is left among the weights, every weight is the model's
    assert all(k.startswith("model.") for k in ck.state_dict)
    for cam in ck.image_features:
        if ck.mode_of(cam) != "IDENTITY":
            assert ck.stats[cam]["mean"].shape == (3, 1, 1)
    assert ck.warnings == []


def test_legacy_stats_equal_the_processor_stats() -> None:
    """The pre-0.4 buffers carry the same numbers as the 0.6 processor files they were written from."""
    new = read_lerobot_folder(case_folder("act_1cam_meanstd"))
    old = read_lerobot_folder(case_folder("act_legacy_v03"))
    assert set(old.stats) == set(new.stats)
    for feat, stats in old.stats.items():
        for name, t in stats.items():
            assert torch.equal(t, new.stats[feat][name]), (feat, name)
    assert set(old.state_dict) == set(new.state_dict)


@pytest.mark.parametrize("case", ["act_1cam_meanstd", "act_2cam_minmax_prenorm", "act_quantiles"])
def test_unnormalize_matches_lerobot_postprocessor(case: str) -> None:
    """LeRobot's own normalized -> raw actions (MEAN_STD, MIN_MAX, QUANTILE10) through ours."""
    ck = read_lerobot_folder(case_folder(case))
    _, out = golden(case)
    norm = ck.normalizer("action")
    got = norm.unnormalize(out["action.normalized"])
    assert (got - out["action"]).abs().max().item() <= 1e-6
    # the card's (mean, std) form of the same map
    mean, std = card_affine(ck.mode_of("action"), ck.stats["action"], ck.eps, inverse=True)
    card = out["action.normalized"] * torch.tensor(std, dtype=torch.float32) + torch.tensor(mean)
    assert (card - out["action"]).abs().max().item() <= 1e-5


@pytest.mark.parametrize("mode", ["MEAN_STD", "MIN_MAX", "QUANTILES", "QUANTILE10"])
def test_normalize_formulas_and_card_affine(mode: str) -> None:
    g = torch.Generator().manual_seed(3)
    lo = torch.randn(5, generator=g)
    hi = lo + 0.5 + torch.rand(5, generator=g)
    hi[2] = lo[2]  # a zero range: LeRobot divides by eps there
    stats = {"mean": lo, "std": hi - lo, "min": lo, "max": hi, "q01": lo, "q99": hi, "q10": lo, "q90": hi}
    x = torch.randn(7, 5, generator=g)
    n = FeatureNormalizer(mode, (5,), stats)
    a, b = (stats[s] for s in n.stat_names)
    if mode == "MEAN_STD":
        want = (x - a) / (b + 1e-8)
    else:
        d = torch.where(hi - lo == 0, torch.tensor(1e-8), hi - lo)
        want = 2 * (x - a) / d - 1
    assert torch.equal(n.normalize(x), want)
    keep = [0, 1, 3, 4]  # away from the eps column, round trips are exact to float rounding
    assert torch.allclose(n.unnormalize(n.normalize(x))[:, keep], x[:, keep], atol=1e-5)
    mean, std = card_affine(mode, stats)
    card = (x - torch.tensor(mean)) / torch.tensor(std)
    assert torch.allclose(card[:, keep], want[:, keep], rtol=1e-5, atol=1e-5)


def test_identity_and_bad_modes() -> None:
    x = torch.randn(3, 4)
    assert torch.equal(FeatureNormalizer("IDENTITY", (4,)).normalize(x), x)
    with pytest.raises(ValueError, match="not one of"):
        FeatureNormalizer("ZSCORE", (4,))
    with pytest.raises(ValueError, match="needs the statistic 'q99'"):
        FeatureNormalizer("QUANTILES", (4,), {"q01": torch.zeros(4)})
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(4,\)"):
        FeatureNormalizer("MEAN_STD", (4,), {"mean": torch.zeros(3), "std": torch.ones(3)})


# ----------------------------------------------------------------------------- bad input
def _copy(case: str, tmp_path: Path) -> Path:
    dst = tmp_path / case
    shutil.copytree(case_folder(case), dst)
    return dst


def test_not_a_folder_or_not_lerobot(tmp_path: Path) -> None:
    with pytest.raises(LeRobotCheckpointError, match="does not exist"):
        read_lerobot_folder(tmp_path / "nope")
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"x")
    with pytest.raises(LeRobotCheckpointError, match="is a file; pass the folder"):
        read_lerobot_folder(f)
    with pytest.raises(
        LeRobotCheckpointError, match=r"not a LeRobot checkpoint folder: it has no config\.json"
    ):
        read_lerobot_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(LeRobotCheckpointError, match="not a LeRobot policy config"):
        read_lerobot_folder(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(LeRobotCheckpointError, match="not valid JSON"):
        read_lerobot_folder(tmp_path)


def test_parent_of_pretrained_model_is_accepted() -> None:
    assert read_lerobot_folder(case_folder("act_quantiles").parent).path == case_folder("act_quantiles")


def test_unsupported_type_names_the_supported_ones(tmp_path: Path) -> None:
    d = _copy("act_quantiles", tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    cfg["type"] = "tdmpc"
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        LeRobotCheckpointError, match=r"type 'tdmpc' is not supported; vla_ros builds \[.*'act'"
    ):
        read_lerobot_folder(d)
    assert read_lerobot_folder(d, check_type=False).policy_type == "tdmpc"


def test_missing_or_corrupt_files(tmp_path: Path) -> None:
    d = _copy("act_quantiles", tmp_path)
    (d / "model.safetensors").unlink()
    with pytest.raises(LeRobotCheckpointError, match=r"model.safetensors is missing"):
        read_lerobot_folder(d)
    d = _copy("act_1cam_meanstd", tmp_path / "b")
    (d / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(LeRobotCheckpointError, match="not readable safetensors"):
        read_lerobot_folder(d)
    d = _copy("act_1cam_meanstd", tmp_path / "c")
    next(d.glob("policy_preprocessor_step_*")).unlink()
    with pytest.raises(
        LeRobotCheckpointError,
        match=r"policy_preprocessor_step_3_normalizer_processor.safetensors is missing",
    ):
        read_lerobot_folder(d)
    d = _copy("act_1cam_meanstd", tmp_path / "d")
    for p in d.glob("policy_*"):
        p.unlink()
    with pytest.raises(LeRobotCheckpointError, match=r"has no policy_preprocessor\.json"):
        read_lerobot_folder(d)


def test_stats_that_do_not_fit(tmp_path: Path) -> None:
    d = _copy("act_quantiles", tmp_path)
    for p in d.glob("policy_*processor_step_*.safetensors"):
        flat = load_file(str(p))
        flat = {k: v for k, v in flat.items() if not k.startswith("observation.state.q99")}
        save_file(flat, str(p))
    with pytest.raises(
        LeRobotCheckpointError, match=r"'observation.state' is normalized QUANTILES .* lack \['q99'\]"
    ):
        read_lerobot_folder(d)
    d = _copy("act_1cam_meanstd", tmp_path / "b")
    for p in d.glob("policy_*processor_step_*.safetensors"):
        flat = load_file(str(p))
        flat["action.mean"] = torch.zeros(9)
        save_file(flat, str(p))
    with pytest.raises(LeRobotCheckpointError, match=r"action.mean has 9 values .* feature has shape \[6\]"):
        read_lerobot_folder(d)


def test_legacy_buffer_of_another_feature(tmp_path: Path) -> None:
    d = _copy("act_legacy_v03", tmp_path)
    sd = load_file(str(d / "model.safetensors"))
    sd["normalize_inputs.buffer_observation_images_wrist.mean"] = torch.zeros(3, 1, 1)
    save_file(sd, str(d / "model.safetensors"))
    with pytest.raises(
        LeRobotCheckpointError, match=r"buffer_observation_images_wrist\.mean' names no feature"
    ):
        read_lerobot_folder(d)
    sd.pop("normalize_inputs.buffer_observation_images_wrist.mean")
    sd["normalize_inputs.buffer_observation_state.mean"] = torch.full((6,), float("inf"))
    save_file(sd, str(d / "model.safetensors"))
    with pytest.raises(LeRobotCheckpointError, match="holds inf/nan"):
        read_lerobot_folder(d)


def test_processor_files_of_an_early_migration_are_read_and_named(tmp_path: Path) -> None:
    """Hub folders migrated early name their processors ``robot_preprocessor.json``: they are
    read in place of ``policy_*processor.json`` (same format; same statistics) with a warning."""
    d = tmp_path / "pm"
    shutil.copytree(case_folder("act_2cam_minmax_prenorm"), d)
    want = read_lerobot_folder(d)
    for kind in ("preprocessor", "postprocessor"):
        (d / f"policy_{kind}.json").rename(d / f"robot_{kind}.json")
    got = read_lerobot_folder(d)
    assert got.norm_map == want.norm_map and set(got.stats) == set(want.stats)
    for feat, stats in want.stats.items():
        for name, t in stats.items():
            assert torch.equal(got.stats[feat][name], t), (feat, name)
    assert got.warnings == [
        f"no policy_{k}.json: read robot_{k}.json in its place (LeRobot 0.6.1 loads only "
        f"policy_{k}.json; rename it)"
        for k in ("preprocessor", "postprocessor")
    ]
    shutil.copyfile(d / "robot_preprocessor.json", d / "other_preprocessor.json")
    (d / "robot_postprocessor.json").unlink()
    with pytest.raises(LeRobotCheckpointError, match=r"has no policy_preprocessor\.json"):
        read_lerobot_folder(d)


def test_inputs_take_the_preprocessor_stats_and_actions_the_postprocessor(tmp_path: Path) -> None:
    # LeRobot normalizes observations with policy_preprocessor's statistics and unnormalizes actions
    # with policy_postprocessor's; the two files usually agree, so make them differ
    d = _copy("act_1cam_meanstd", tmp_path)
    (post,) = d.glob("policy_postprocessor_step_*.safetensors")
    (pre,) = d.glob("policy_preprocessor_step_*.safetensors")
    flat = load_file(str(post))
    flat["observation.state.mean"] = flat.get("observation.state.mean", torch.zeros(6)) + 5.0
    flat["action.mean"] = flat["action.mean"] + 7.0
    save_file(flat, str(post))
    ckpt = read_lerobot_folder(d)
    pre_flat = load_file(str(pre))
    torch.testing.assert_close(ckpt.stats["observation.state"]["mean"], pre_flat["observation.state.mean"])
    torch.testing.assert_close(ckpt.stats["action"]["mean"], flat["action.mean"])
