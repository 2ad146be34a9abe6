"""Diffusion Policy golden fixtures, made by LeRobot itself (the parity oracle).

Runs in the reference lane only (Python 3.12 + ``lerobot==0.6.1`` + diffusers, see
``scripts/setup_lerobot_ref.sh`` / ``make lerobot-ref``); vla_ros never imports LeRobot. Same
folder format as ``scripts/lerobot_goldens.py`` (ACT)::

    test/fixtures/lerobot/<case>/pretrained_model/   the checkpoint folder as LeRobot writes it
    test/fixtures/lerobot/<case>/inputs.safetensors  observation.images.<cam> uint8 [N, T, H, W, 3]
                                                     (T = n_obs_steps history, oldest first; HWC
                                                     camera bytes, LeRobot gets /255 CHW),
                                                     observation.state float32 [N, T, D],
                                                     noise float32 [N, horizon, A] (initial sample),
                                                     step_noise float32 [N, K - 1, horizon, A]
                                                     (DDPM only: the noise of every step)
    test/fixtures/lerobot/<case>/outputs.safetensors action float32 [N, n_action_steps, A] (raw),
                                                     action.normalized (before the postprocessor),
                                                     action.select [n_action_steps, A]: sample 0's
                                                     newest frame through a fresh select_action
                                                     queue (the history is that frame repeated)
    test/fixtures/lerobot/<case>/provenance.json     script, case, versions, seed

Every case builds a random-weight, reduced-size ``DiffusionPolicy`` with LeRobot's classes
(offline, ``pretrained_backbone_weights=None``), saves it with ``save_pretrained`` and the
processor pipelines (made-up statistics), reloads the folder with LeRobot (``strict=True``) and
runs raw observation -> preprocessor -> ``predict_action_chunk(noise=...)`` -> postprocessor.
DDPM draws fresh noise at every step from torch's global generator: the script seeds it per
sample and records the draws (``step_noise``) by replaying the same seed.

Reduced trunks: ``resnet10_w16`` (torchvision's ``ResNet``/``BasicBlock``, blocks [1, 1, 1, 1],
stem and stages 16/16/32/64/128: wide enough for ``GroupNorm(C // 16, C)``) is registered into
``torchvision.models`` here; ``resnet_reduced_test`` comes from ``lerobot_goldens.py`` (ACT).
The full-size key list (``diffusion_full_keys.json``) is LeRobot's default ``DiffusionConfig``
built on the meta device.

Usage (in the lane): ``python scripts/lerobot_goldens_diffusion.py [--out DIR] [--only CASE]``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
import torchvision
from lerobot_goldens import REDUCED_RESNET, _provenance
from lerobot_goldens_common import (
    folder_kb,
    meta_key_shapes,
    one_camera_features,
    save_policy_folder,
    save_tensors,
    write_full_keys,
    write_json,
)
from lerobot_goldens_common import made_up_stats as _stats
from safetensors.torch import save_file
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

TINY_RESNET = "resnet10_w16"


class TinyResNet(ResNet):
    """torchvision's ResNet, basic blocks [1, 1, 1, 1], stem and stages ``w, w, 2w, 4w, 8w``."""

    def __init__(self, w: int = 16) -> None:
        super().__init__(BasicBlock, [1, 1, 1, 1])
        self.inplanes, self.dilation = w, 1
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(w)
        self.layer1 = self._make_layer(BasicBlock, w, 1)
        self.layer2 = self._make_layer(BasicBlock, 2 * w, 1, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * w, 1, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * w, 1, stride=2)
        self.fc = nn.Linear(8 * w, 10)


def _tiny_resnet(*, weights=None, **kwargs) -> TinyResNet:
    assert weights is None and not kwargs, "the reduced test ResNet has no pretrained weights"
    return TinyResNet(16)


setattr(torchvision.models, TINY_RESNET, _tiny_resnet)

from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature  # noqa: E402
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig  # noqa: E402
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy  # noqa: E402
from lerobot.policies.factory import make_pre_post_processors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "test" / "fixtures" / "lerobot"
N_SAMPLES = 2

CASES: dict[str, dict] = {
    # GroupNorm trunk shared by two cameras, center crop, two observation steps, DDIM 10 steps
    "diffusion_gn_ddim": {
        "cameras": {"top": (40, 48), "wrist": (40, 48)},
        "state_dim": 5,
        "action_dim": 4,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"},
        "diffusion": {
            "vision_backbone": TINY_RESNET,
            "use_group_norm": True,
            "use_separate_rgb_encoder_per_camera": False,
            "crop_shape": (32, 40),
            "spatial_softmax_num_keypoints": 8,
            "n_obs_steps": 2,
            "horizon": 16,
            "n_action_steps": 8,
            "down_dims": (16, 32),
            "kernel_size": 3,
            "diffusion_step_embed_dim": 16,
            "noise_scheduler_type": "DDIM",
            "num_inference_steps": 10,
        },
    },
    # BatchNorm trunk per camera, resize + crop_ratio, sample prediction, no clipping, FiLM bias only
    "diffusion_bn_sample": {
        "cameras": {"front": (48, 64), "side": (48, 64)},
        "state_dim": 3,
        "action_dim": 3,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "QUANTILES"},
        "diffusion": {
            "vision_backbone": REDUCED_RESNET,
            "use_group_norm": False,
            "use_separate_rgb_encoder_per_camera": True,
            "resize_shape": (36, 44),
            "crop_ratio": 0.9,
            "spatial_softmax_num_keypoints": 6,
            "n_obs_steps": 1,
            "horizon": 8,
            "n_action_steps": 6,
            "down_dims": (8, 16, 24),
            "kernel_size": 5,
            "diffusion_step_embed_dim": 8,
            "use_film_scale_modulation": False,
            "prediction_type": "sample",
            "clip_sample": False,
            "noise_scheduler_type": "DDIM",
            "num_train_timesteps": 50,
            "num_inference_steps": 5,
        },
    },
    # DDPM over every training step, with the noise of every step recorded
    "diffusion_ddpm": {
        "cameras": {"top": (64, 64)},
        "state_dim": 2,
        "action_dim": 2,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"},
        "diffusion": {
            "vision_backbone": REDUCED_RESNET,
            "spatial_softmax_num_keypoints": 4,
            "n_obs_steps": 2,
            "horizon": 8,
            "n_action_steps": 4,
            "down_dims": (16,),
            "kernel_size": 3,
            "diffusion_step_embed_dim": 8,
            "noise_scheduler_type": "DDPM",
            "num_train_timesteps": 20,
        },
    },
}


def _config(case: dict) -> DiffusionConfig:
    inputs = {
        f"observation.images.{cam}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w))
        for cam, (h, w) in case["cameras"].items()
    }
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(case["state_dim"],))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(case["action_dim"],))}
    return DiffusionConfig(
        input_features=inputs,
        output_features=outputs,
        normalization_mapping={k: NormalizationMode(v) for k, v in case["norm"].items()},
        pretrained_backbone_weights=None,
        device="cpu",
        **case["diffusion"],
    )


@torch.no_grad()
def _randomize(policy: nn.Module, g: torch.Generator) -> None:
    """Random weights everywhere, BatchNorm running statistics included (not the pos_grid)."""
    for name, t in policy.state_dict().items():
        if not t.is_floating_point() or name.endswith("pos_grid"):
            continue
        if name.endswith("running_var"):
            t.copy_(0.5 + torch.rand(t.shape, generator=g))
        elif name.endswith("running_mean") or name.endswith(".bias"):
            t.copy_(0.1 * torch.randn(t.shape, generator=g))
        elif t.ndim == 1:  # BatchNorm / GroupNorm scales
            t.copy_(0.8 + 0.4 * torch.rand(t.shape, generator=g))
        else:
            t.copy_(torch.randn(t.shape, generator=g) / max(t[0].numel(), 1) ** 0.5)


def _inputs(case: dict, cfg: DiffusionConfig, g: torch.Generator) -> dict[str, torch.Tensor]:
    n, t, a = N_SAMPLES, cfg.n_obs_steps, case["action_dim"]
    out = {
        f"observation.images.{cam}": torch.randint(0, 256, (n, t, h, w, 3), generator=g, dtype=torch.uint8)
        for cam, (h, w) in case["cameras"].items()
    }
    out["observation.state"] = torch.randn(n, t, case["state_dim"], generator=g) * 1.5
    out["noise"] = torch.randn(n, cfg.horizon, a, generator=g)
    return out


def _obs(inputs: dict[str, torch.Tensor], i: int, frames: slice) -> dict[str, torch.Tensor]:
    """Sample ``i``'s frames as LeRobot receives them: float CHW in [0, 1], batch of one."""
    obs = {}
    for k, v in inputs.items():
        if k.startswith("observation.images."):
            obs[k] = (v[i, frames].permute(0, 3, 1, 2).to(torch.float32) / 255.0)[None]
        elif k == "observation.state":
            obs[k] = v[i, frames][None]
    return obs


def _run_lerobot(
    folder: Path, inputs: dict[str, torch.Tensor], seed: int
) -> tuple[dict, torch.Tensor | None]:
    """Reload ``folder`` with LeRobot and run the whole path on every sample."""
    policy = DiffusionPolicy.from_pretrained(str(folder), strict=True).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(folder))
    cfg = policy.config
    ddpm = cfg.noise_scheduler_type == "DDPM"
    k = cfg.num_inference_steps or cfg.num_train_timesteps
    actions, normalized, step_noise = [], [], []
    for i in range(N_SAMPLES):
        policy.reset()
        batch = pre(_obs(inputs, i, slice(None)))
        noise = inputs["noise"][i][None]
        torch.manual_seed(seed + i)
        chunk = policy.predict_action_chunk(batch, noise=noise.clone())
        if ddpm:  # replay the global generator: the draws DDPMScheduler.step made (all but t = 0)
            torch.manual_seed(seed + i)
            step_noise.append(torch.stack([torch.randn(noise.shape)[0] for _ in range(k - 1)]))
        normalized.append(chunk[0].clone())
        actions.append(post(chunk)[0].clone())
    # select_action on a fresh queue: the newest frame alone, repeated to fill the history
    policy.reset()
    newest = _obs(inputs, 0, slice(-1, None))
    batch = pre({key: v[:, 0] for key, v in newest.items()})
    torch.manual_seed(seed)
    select = [
        post(policy.select_action(dict(batch), noise=inputs["noise"][0][None].clone()))[0]
        for _ in range(cfg.n_action_steps)
    ]
    out = {
        "action": torch.stack(actions).contiguous(),
        "action.normalized": torch.stack(normalized).contiguous(),
        "action.select": torch.stack(select).contiguous(),
    }
    return out, (torch.stack(step_noise).contiguous() if ddpm else None)


def make_case(name: str, case: dict, out: Path, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    cfg = _config(case)
    policy = DiffusionPolicy(cfg)
    _randomize(policy, g)
    stats = _stats(case, g)
    dest = out / name
    folder = save_policy_folder(policy, cfg, stats, dest)
    inputs = _inputs(case, cfg, g)
    outputs, step_noise = _run_lerobot(folder, inputs, seed)
    if step_noise is not None:
        inputs["step_noise"] = step_noise
    save_tensors(inputs, dest / "inputs.safetensors")
    save_file(outputs, str(dest / "outputs.safetensors"))
    prov = _provenance(name, {"seed": seed, "case_spec": case})
    prov["script"] = "scripts/lerobot_goldens_diffusion.py"
    prov["path"] += " (noise=inputs.noise; DDPM: torch.manual_seed(seed + i), draws in step_noise)"
    import diffusers

    prov["versions"]["diffusers"] = diffusers.__version__
    write_json(dest / "provenance.json", prov)
    print(f"{name}: {folder_kb(dest):.0f} kB")


def full_size_keys(out: Path) -> None:
    """Every state-dict name and shape of LeRobot's default DiffusionConfig (1 camera 96x96, 2-D)."""
    inputs, outputs = one_camera_features("observation.image", 96, 96, 2)
    cfg = DiffusionConfig(
        input_features=inputs, output_features=outputs, pretrained_backbone_weights=None, device="cpu"
    )
    keys = meta_key_shapes(DiffusionPolicy, cfg)
    prov = {
        **_provenance("diffusion_full_keys", {"built_on": "meta device, default DiffusionConfig"}),
        "script": "scripts/lerobot_goldens_diffusion.py",
    }
    write_full_keys(out, "diffusion_full_keys", cfg, keys, prov)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", default=None, help="one case name")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    for i, (name, case) in enumerate(CASES.items()):
        if args.only in (None, name):
            make_case(name, case, args.out, seed=2000 + i)
    if args.only in (None, "diffusion_full_keys"):
        full_size_keys(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
