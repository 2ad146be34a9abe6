"""SmolVLA's split export (prefix graph -> KV cache, step graph -> one Euler step) on ONNX Runtime
against LeRobot's goldens: the Euler loop runs here, with the golden noise as its input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from lerobot_fixtures import BOUND, folder, golden
from test_smolvla_model import obs_of

from vla_ros.export.onnx_export import export_onnx
from vla_ros.spine.checkpoints import build_lerobot_policy, read_lerobot_folder


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("case", ["smolvla_1cam_empty"])
def test_onnx_split_matches_lerobot(case: str, tmp_path: Path) -> None:
    ckpt = read_lerobot_folder(folder(case))
    model = build_lerobot_policy(ckpt)
    info = export_onnx(model, tmp_path, "split")
    split = info["split"]
    assert split["prefix_outputs"] == ["prefix_k", "prefix_v", "prefix_mask"]
    assert split["num_steps"] == 4
    prefix_sess = _session(tmp_path / info["files"]["onnx_prefix"])
    step_sess = _session(tmp_path / info["files"]["onnx_step"])
    inputs, outputs = golden(case)
    obs = obs_of(ckpt, model, inputs, case)
    got = []
    for i in range(obs["state"].shape[0]):
        feeds = {n: obs[n][i : i + 1].numpy() for n in split["prefix_inputs"]}
        cache = dict(zip(split["prefix_outputs"], prefix_sess.run(split["prefix_outputs"], feeds)))
        x = inputs["noise"][i : i + 1].numpy()
        for step in range(split["num_steps"]):
            x = step_sess.run(["x_next"], {**cache, "x": x, "step_index": np.array(step, dtype=np.int64)})[0]
        got.append(torch.from_numpy(x[0, :, : model.io.action_dim]))
    actions = ckpt.normalizer("action").unnormalize(torch.stack(got))
    assert (actions - outputs["action"]).abs().max().item() <= BOUND
