"""The exported Diffusion Policy (split layout) on ONNX Runtime vs LeRobot's own outputs.

Layout: ``prefix.onnx`` (image normalization, the ResNet encoders, the global condition; once per
observation) and ``step.onnx`` (one U-Net call + one DDIM step, indexed by ``step_index``); the
runtime runs the K-step loop. Chosen over unrolling the loop into one graph: the step graph is
the U-Net once (not K copies of its nodes), one graph serves every K, and the encoders run once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from diffusion_helpers import load_case, spine_obs
from lerobot_fixtures import BOUND

from vla_ros.export.onnx_export import export_onnx


def _ort_chunk(
    out_dir: Path, meta: dict, obs: dict, noise: torch.Tensor, window: tuple[int, int]
) -> np.ndarray:
    split = meta["split"]
    prefix = ort.InferenceSession(
        str(out_dir / meta["files"]["onnx_prefix"]), providers=["CPUExecutionProvider"]
    )
    step = ort.InferenceSession(str(out_dir / meta["files"]["onnx_step"]), providers=["CPUExecutionProvider"])
    feats = prefix.run(split["prefix_outputs"], {k: obs[k].numpy() for k in split["prefix_inputs"]})
    feeds = dict(zip(split["prefix_outputs"], feats))
    x = noise.numpy()
    for i in range(split["num_steps"]):
        x = step.run(["x_next"], {**feeds, "x": x, "step_index": np.array(i, dtype=np.int64)})[0]
    return x[0, window[0] : window[1]]


@pytest.mark.parametrize("case", ["diffusion_gn_ddim", "diffusion_bn_sample"])
def test_onnx_split_export_matches_lerobot(case: str, tmp_path: Path) -> None:
    ckpt, model, inputs, outputs = load_case(case)
    meta = export_onnx(model, tmp_path, "split")
    assert meta["split"]["num_steps"] == model.num_inference_steps
    unnorm = ckpt.normalizer("action").unnormalize
    for i in range(outputs["action"].shape[0]):
        obs = spine_obs(ckpt, inputs, i)
        chunk = _ort_chunk(tmp_path, meta, obs, inputs["noise"][i][None], model.action_window)
        got = unnorm(torch.from_numpy(chunk))
        assert (got - outputs["action"][i]).abs().max().item() <= BOUND, case


def test_ddpm_checkpoint_exports_with_ddim(tmp_path: Path) -> None:
    """DDPM's step draws noise (not reproducible on another runtime): deploy it with DDIM, which
    matches vla_ros's torch DDIM on the same weights."""
    from lerobot_fixtures import folder

    from vla_ros.spine.checkpoints import read_lerobot_folder
    from vla_ros.spine.families.lerobot_diffusion import build_lerobot_diffusion

    ckpt = read_lerobot_folder(folder("diffusion_ddpm"))
    model = build_lerobot_diffusion(ckpt, noise_scheduler_type="DDIM", num_inference_steps=10)
    _, _, inputs, _ = load_case("diffusion_ddpm")
    obs, noise = spine_obs(ckpt, inputs, 1), inputs["noise"][1][None]
    meta = export_onnx(model, tmp_path, "split")
    got = _ort_chunk(tmp_path, meta, obs, noise, model.action_window)
    with torch.no_grad():
        ref = model.predict_action_chunk(obs, noise)[0].numpy()
    assert np.abs(got - ref).max() <= BOUND
