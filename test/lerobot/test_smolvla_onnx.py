"""SmolVLA's split export (prefix graph -> KV cache, step graph -> one Euler step) on ONNX Runtime
against LeRobot's goldens: the Euler loop runs here, with the golden noise as its input."""

from __future__ import annotations

from pathlib import Path

import pytest
from flow_helpers import ort_session, run_split_onnx
from lerobot_fixtures import BOUND, folder, golden
from test_smolvla_model import obs_of

from vla_ros.export.onnx_export import export_onnx
from vla_ros.spine.checkpoints import build_lerobot_policy, read_lerobot_folder


@pytest.mark.parametrize("case", ["smolvla_1cam_empty"])
def test_onnx_split_matches_lerobot(case: str, tmp_path: Path) -> None:
    ckpt = read_lerobot_folder(folder(case))
    model = build_lerobot_policy(ckpt)
    info = export_onnx(model, tmp_path, "split")
    split = info["split"]
    assert split["prefix_outputs"] == ["prefix_k", "prefix_v", "prefix_mask"]
    assert split["num_steps"] == 4
    prefix_sess = ort_session(tmp_path / info["files"]["onnx_prefix"])
    step_sess = ort_session(tmp_path / info["files"]["onnx_step"])
    inputs, outputs = golden(case)
    obs = obs_of(ckpt, model, inputs, case)
    normalized = run_split_onnx(
        split, prefix_sess, step_sess, obs, inputs["noise"], split["prefix_inputs"], model.io.action_dim
    )
    actions = ckpt.normalizer("action").unnormalize(normalized)
    assert (actions - outputs["action"]).abs().max().item() <= BOUND
