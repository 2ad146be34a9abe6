"""Independent review, live: LeRobot 0.6.1 builds checkpoints of NON-default configs
(``scripts/lerobot_goldens_review.py``), and ``vla-ros export`` reproduces its outputs on its own
inputs through the card (ONNX Runtime and torch, raw observation in, raw actions out).

Each case is a kind of config the committed goldens do not cover (cameras, dims, chunk and
steps, normalization modes, samplers, SmolVLA's resize / empty cameras / max dims / token
limits). Marked ``lerobot`` and ``slow``; skipped without the reference lane.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from lerobot_fixtures import BOUND
from safetensors.torch import load_file

from vla_ros.cli import main
from vla_ros.export import PolicyCard
from vla_ros.runtime import Observation, load_runtime

ROOT = Path(__file__).resolve().parents[2]
LANE = Path(os.environ.get("LEROBOT_VENV", ROOT / ".venv-lerobot")) / "bin" / "python"

pytestmark = [
    pytest.mark.lerobot,
    pytest.mark.slow,
    pytest.mark.timeout(900),  # the lane builds and runs every case in the first test's fixture
    pytest.mark.skipif(
        not LANE.is_file(), reason=f"no LeRobot reference lane at {LANE.parent.parent}: run make lerobot-ref"
    ),
]

#: name -> the review script's case (cameras {name: [H, W]}, dims, norm per feature type,
#: the policy's config overrides)
CASES: dict[str, dict] = {
    # three cameras, MIN_MAX state, no VAE, temporal ensembling (n_action_steps 1)
    "act_3cam_ensemble": {
        "policy": "act",
        "cameras": {"top": [40, 56], "left": [40, 56], "right": [40, 56]},
        "state_dim": 5,
        "action_dim": 3,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MEAN_STD"},
        "act": {
            "n_encoder_layers": 2,
            "n_decoder_layers": 2,
            "use_vae": False,
            "chunk_size": 7,
            "n_action_steps": 1,
            "temporal_ensemble_coeff": 0.01,
        },
    },
    # GELU, pre-norm, unnormalized images and state, a wide camera, a 12-action chunk
    "act_gelu_prenorm_identity": {
        "policy": "act",
        "cameras": {"front": [24, 80], "side": [24, 80]},
        "state_dim": 6,
        "action_dim": 2,
        "norm": {"VISUAL": "IDENTITY", "STATE": "IDENTITY", "ACTION": "MIN_MAX"},
        "act": {
            "n_encoder_layers": 3,
            "n_decoder_layers": 2,
            "feedforward_activation": "gelu",
            "pre_norm": True,
            "chunk_size": 12,
            "n_action_steps": 12,
        },
    },
    # GroupNorm trunk, crop, three observation steps, linear betas, epsilon, DDIM 4 steps
    "diffusion_ddim_linear_nobs3": {
        "policy": "diffusion",
        "cameras": {"top": [40, 48]},
        "state_dim": 3,
        "action_dim": 2,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "IDENTITY", "ACTION": "MEAN_STD"},
        "diffusion": {
            "vision_backbone": "resnet10_w16",
            "use_group_norm": True,
            "crop_shape": [32, 32],
            "spatial_softmax_num_keypoints": 16,
            "n_obs_steps": 3,
            "horizon": 16,
            "n_action_steps": 5,
            "down_dims": [16, 32],
            "kernel_size": 3,
            "diffusion_step_embed_dim": 16,
            "noise_scheduler_type": "DDIM",
            "num_inference_steps": 4,
            "beta_schedule": "linear",
            "prediction_type": "epsilon",
            "clip_sample_range": 0.5,
        },
    },
    # images resized to 128 (the vision positions bucketed), every expert layer self-attends,
    # a 64-token limit with a long task, unnormalized state
    "smolvla_resize128_tokens64": {
        "policy": "smolvla",
        "cameras": {"a": [30, 50], "b": [30, 50]},
        "state_dim": 2,
        "action_dim": 3,
        "norm": {"VISUAL": "IDENTITY", "STATE": "IDENTITY", "ACTION": "MIN_MAX"},
        "tasks": ["grasp the cup by its handle and then stack the green block on the blue block", "x"],
        "smolvla": {
            "chunk_size": 3,
            "n_action_steps": 2,
            "num_steps": 7,
            "num_vlm_layers": 6,
            "tokenizer_max_length": 64,
            "self_attn_every_n_layers": 1,
            "resize_imgs_with_padding": [128, 128],
        },
    },
    # one camera + two empty slots, max dims 16 / 12, a 6-token limit that cuts both tasks
    "smolvla_2empty_small_max_dims": {
        "policy": "smolvla",
        "cameras": {"only": [64, 64]},
        "state_dim": 8,
        "action_dim": 2,
        "norm": {"VISUAL": "IDENTITY", "STATE": "MIN_MAX", "ACTION": "QUANTILES"},
        "smolvla": {
            "chunk_size": 5,
            "n_action_steps": 5,
            "num_steps": 2,
            "num_vlm_layers": 2,
            "empty_cameras": 2,
            "tokenizer_max_length": 6,
            "max_state_dim": 16,
            "max_action_dim": 12,
        },
    },
    # images normalized by the preprocessor (VISUAL MEAN_STD, [3, 1, 1] stats) before SmolVLA's
    # resize and [-1, 1] scaling (vla_ros ignored them: actions off by ~2)
    "smolvla_images_mean_std": {
        "policy": "smolvla",
        "cameras": {"a": [40, 40], "b": [40, 40]},
        "state_dim": 4,
        "action_dim": 4,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
        "smolvla": {
            "chunk_size": 4,
            "n_action_steps": 4,
            "num_steps": 3,
            "num_vlm_layers": 2,
            "tokenizer_max_length": 10,
        },
    },
}


@pytest.fixture(scope="module")
def lane_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LeRobot builds, saves and runs every case (one lane process)."""
    out = tmp_path_factory.mktemp("review")
    args = [str(LANE), str(ROOT / "scripts" / "lerobot_goldens_review.py"), "--out", str(out)]
    for name, case in CASES.items():
        args += ["--case", f"{name}={json.dumps(case)}"]
    run = subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for name in CASES:
        prov = json.loads((out / name / "provenance.json").read_text())
        assert "lerobot_refused" not in prov, prov
    return out


def _export(lane_out: Path, name: str, layout: str | None = None) -> Path:
    card = lane_out / name / f"card_{layout or 'default'}"
    args = ["export", str(lane_out / name / "pretrained_model"), "--out", str(card), "--quiet"]
    if CASES[name]["policy"] == "smolvla":
        args += ["--tokenizer", str(lane_out / "smolvla_vlm_tiny" / "tokenizer.json")]
    if layout:
        args += ["--layout", layout]
    assert main(args) == 0
    return card


def _worst(card: Path, backend: str, lane_out: Path, name: str) -> float:
    """Max abs difference between the card's raw actions and LeRobot's over the case's samples."""
    inputs = load_file(str(lane_out / name / "inputs.safetensors"))
    want = load_file(str(lane_out / name / "outputs.safetensors"))["action"].numpy()
    tasks = json.loads((lane_out / name / "provenance.json").read_text()).get("tasks")
    cams = {k.split("observation.images.", 1)[1]: v.numpy() for k, v in inputs.items() if "images." in k}
    rt = load_runtime(card, backend=backend)
    worst = 0.0
    for i in range(want.shape[0]):
        obs = Observation(
            images={c: v[i] for c, v in cams.items()},
            state=inputs["observation.state"][i].numpy(),
            instruction=tasks[i] if tasks else None,
            stamp_ns=i + 1,
        )
        kw = {"noise": inputs["noise"][i].numpy()} if "noise" in inputs else {}
        got = rt.infer(obs, **kw)
        assert got.shape == want[i].shape
        worst = max(worst, float(np.abs(got - want[i]).max()))
    assert np.abs(want).max() > 0.5 and want.std() > 0.1  # LeRobot's actions are not trivial
    return worst


@pytest.mark.parametrize("name", list(CASES))
def test_export_reproduces_lerobot_on_its_own_checkpoint(lane_out: Path, name: str) -> None:
    card = _export(lane_out, name)
    for backend in ("onnxruntime", "torch"):
        assert _worst(card, backend, lane_out, name) <= BOUND, backend
    c = PolicyCard.load(card)
    spec = CASES[name][CASES[name]["policy"]]
    if CASES[name]["policy"] == "diffusion":
        start = spec["n_obs_steps"] - 1
        assert c.io.extra["action_window"] == [start, start + spec["n_action_steps"]]
        assert c.export["split"]["num_steps"] == spec["num_inference_steps"]
    else:
        assert c.io.horizon == spec["chunk_size"]
        assert c.io.extra["lerobot"]["n_action_steps"] == spec["n_action_steps"]
    if name == "act_3cam_ensemble":
        assert c.io.extra["lerobot"]["temporal_ensemble_coeff"] == 0.01
        assert c.io.camera_names == ("top", "left", "right")


def test_smolvla_monolithic_option_reproduces_lerobot(lane_out: Path) -> None:
    name = "smolvla_resize128_tokens64"
    card = _export(lane_out, name, "monolithic")
    assert PolicyCard.load(card).layout == "monolithic"
    assert _worst(card, "onnxruntime", lane_out, name) <= BOUND
