"""pi0 / pi0.5 split export (prefix graph -> KV cache, step graph -> one Euler step) on ONNX Runtime
against LeRobot's goldens: the Euler loop runs here, with the golden noise as its input."""

from __future__ import annotations

from pathlib import Path

import pytest
from flow_helpers import ort_session, run_split_onnx
from lerobot_fixtures import BOUND, folder, golden
from test_pi0_model import obs_of

from vla_ros.export.onnx_export import export_onnx
from vla_ros.spine.checkpoints import build_lerobot_policy, read_lerobot_folder


@pytest.mark.parametrize(
    ("case", "outputs"),
    [
        ("pi0_2cam", ["prefix_k", "prefix_v", "prefix_mask", "prefix_state"]),
        ("pi05_2cam", ["prefix_k", "prefix_v", "prefix_mask"]),
    ],
)
def test_onnx_split_matches_lerobot(case: str, outputs: list[str], tmp_path: Path) -> None:
    ckpt = read_lerobot_folder(folder(case))
    model = build_lerobot_policy(ckpt)
    info = export_onnx(model, tmp_path, "split")
    split = info["split"]
    assert split["prefix_outputs"] == outputs
    assert split["num_steps"] == 3
    prefix_sess = ort_session(tmp_path / info["files"]["onnx_prefix"])
    step_sess = ort_session(tmp_path / info["files"]["onnx_step"])
    inputs, golden_out = golden(case)
    obs = obs_of(ckpt, model, inputs, case)
    # pi0.5's prefix graph has no state input (the state reached it through the tokens)
    names = {x.name for x in prefix_sess.get_inputs()}
    assert ("state" in names) == case.startswith("pi0_")
    feed_names = [n for n in split["prefix_inputs"] if n in names]
    normalized = run_split_onnx(
        split, prefix_sess, step_sess, obs, inputs["noise"], feed_names, model.io.action_dim
    )
    actions = ckpt.normalizer("action").unnormalize(normalized)
    assert (actions - golden_out["action"]).abs().max().item() <= BOUND
