"""The full-size Diffusion Policy key list and the errors a user meets building one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from lerobot_fixtures import FIXTURES, folder

from vla_ros.spine.checkpoints import LeRobotCheckpointError, build_lerobot_policy, read_lerobot_folder
from vla_ros.spine.components.lerobot_vision import resnet_spec
from vla_ros.spine.families.lerobot_diffusion import vla_config_from_lerobot
from vla_ros.spine.weights import WeightLoadError, map_name


def test_full_size_model_has_lerobots_keys_and_shapes() -> None:
    """LeRobot's default DiffusionConfig (ResNet-18 with BatchNorm, U-Net 512/1024/2048, 263 M
    parameters), built on the meta device: every name and shape under the name mapping."""
    data = json.loads((FIXTURES / "diffusion_full_keys.json").read_text())
    from vla_ros.spine.build import build_vla

    with torch.device("meta"):
        model = build_vla(vla_config_from_lerobot(data["config"]))
    pairs = [(k, v) for k, v in model.name_mapping().items()]
    ours = {map_name(k, pairs): list(v.shape) for k, v in model.state_dict().items()}
    assert ours == data["keys"]
    assert len(ours) == 273
    assert sum(torch.Size(s).numel() for s in ours.values()) > 260_000_000


@pytest.mark.parametrize(
    ("name", "widths"),
    [
        ("resnet18", (64, 128, 256, 512)),
        ("resnet50", (64, 128, 256, 512)),
        ("resnet10_w16", (16, 32, 64, 128)),
    ],
)
def test_resnet_names(name: str, widths: tuple[int, ...]) -> None:
    assert resnet_spec(name).widths == widths
    assert resnet_spec("resnet50").block == "bottleneck" and resnet_spec("resnet34").layers == (3, 4, 6, 3)


def test_unknown_backbone_is_named() -> None:
    with pytest.raises(ValueError, match=r"vision_backbone 'efficientnet_b0' is not supported; use one of"):
        resnet_spec("efficientnet_b0")


def _copy(tmp_path: Path, case: str = "diffusion_gn_ddim") -> Path:
    dest = tmp_path / "pretrained_model"
    shutil.copytree(folder(case), dest)
    return dest


def _edit_config(path: Path, **changes) -> None:
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(changes)
    (path / "config.json").write_text(json.dumps(cfg))


def test_config_weights_mismatch_names_the_keys(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    _edit_config(path, down_dims=[16, 48])
    with pytest.raises(LeRobotCheckpointError, match=r"shape-mismatched .*vla_head\.") as err:
        build_lerobot_policy(read_lerobot_folder(path))
    assert isinstance(err.value.__cause__, WeightLoadError) and err.value.__cause__.report.mismatched


def test_environment_state_input_is_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["input_features"]["observation.environment_state"] = {"type": "ENV", "shape": [4]}
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        LeRobotCheckpointError, match=r"\['observation.environment_state'\] are not supported"
    ):
        build_lerobot_policy(read_lerobot_folder(path))


def test_group_norm_on_too_narrow_trunk_is_named(tmp_path: Path) -> None:
    path = _copy(tmp_path, "diffusion_bn_sample")
    _edit_config(path, use_group_norm=True)
    with pytest.raises(LeRobotCheckpointError, match=r"use_group_norm needs >= 16 channels"):
        build_lerobot_policy(read_lerobot_folder(path))


def test_unknown_sampler_is_named(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    _edit_config(path, noise_scheduler_type="DPMSolver")
    with pytest.raises(LeRobotCheckpointError, match=r"noise_scheduler_type 'DPMSolver' is not supported"):
        build_lerobot_policy(read_lerobot_folder(path))


@pytest.mark.parametrize(("size_in", "size_out"), [((48, 64), (36, 44)), ((30, 40), (60, 50))])
def test_resize_matrices_equal_torchs_antialiased_bilinear(size_in, size_out) -> None:
    """The MatMul form of torchvision's tensor Resize (what LeRobot runs) that ONNX can hold."""
    import torch.nn.functional as F

    from vla_ros.spine.components.lerobot_vision import resize_matrix

    x = torch.rand(2, 3, *size_in, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(x, size=size_out, mode="bilinear", align_corners=False, antialias=True)
    got = resize_matrix(size_in[0], size_out[0]) @ x @ resize_matrix(size_in[1], size_out[1]).t()
    assert (got - ref).abs().max().item() <= 1e-6
