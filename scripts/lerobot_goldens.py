"""Golden fixtures for the LeRobot checkpoint path, made by LeRobot itself (the parity oracle).

Runs in the reference lane only (Python 3.12 + ``lerobot==0.6.1``, see
``scripts/setup_lerobot_ref.sh`` / ``make lerobot-ref``); vla_ros never imports LeRobot.

For every case it builds a random-weight, reduced-size policy with LeRobot's own classes
(offline, ``pretrained_backbone_weights=None``), saves it with LeRobot's ``save_pretrained`` and
processor pipelines (made-up dataset statistics: mean/std, min/max, quantiles), reloads that
folder with LeRobot, and records raw observations and LeRobot's outputs through the whole path
(raw observation -> preprocessor -> ``predict_action_chunk`` -> postprocessor)::

    test/fixtures/lerobot/<case>/pretrained_model/   the checkpoint folder as LeRobot writes it
    test/fixtures/lerobot/<case>/inputs.safetensors  observation.images.<cam> uint8 [N, H, W, 3]
                                                     (HWC camera bytes; LeRobot gets /255 CHW),
                                                     observation.state float32 [N, D]
    test/fixtures/lerobot/<case>/outputs.safetensors action float32 [N, chunk, A] (raw units),
                                                     action.normalized (before the postprocessor)
    test/fixtures/lerobot/<case>/provenance.json     script, case, versions, seed

Reduced size: ACT's torchvision ResNet-18 alone is 11 M parameters (45 MB), so the fixtures use
``resnet_reduced_test``, torchvision's own ``ResNet``/``BasicBlock``/``FrozenBatchNorm2d`` with
narrow widths, registered into ``torchvision.models`` here (vla_ros knows it by that name). The
full-size architecture is checked by the key list (``act_full_keys.json``: every state-dict name
and shape of LeRobot's default ACT, built on the meta device) and by the live lane test.

Usage (in the lane): ``python scripts/lerobot_goldens.py [--out test/fixtures/lerobot] [--only CASE]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import torchvision
from lerobot_goldens_common import (
    folder_kb,
    meta_key_shapes,
    one_camera_features,
    provenance,
    save_policy_folder,
    save_tensors,
    write_full_keys,
    write_json,
)
from lerobot_goldens_common import (
    made_up_stats as _stats,
)
from safetensors.torch import load_file, save_file
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

REDUCED_RESNET = "resnet_reduced_test"
REDUCED_LAYERS = (2, 1, 1, 1)
REDUCED_WIDTHS = (8, 16, 16, 32)


class ReducedResNet(ResNet):
    """torchvision's ResNet with BasicBlocks at reduced widths (same module names as resnet18)."""

    def __init__(self, widths=REDUCED_WIDTHS, layers=REDUCED_LAYERS, **kwargs) -> None:
        super().__init__(BasicBlock, [1, 1, 1, 1], **kwargs)
        dil = kwargs.get("replace_stride_with_dilation") or [False, False, False]
        self.inplanes, self.dilation = widths[0], 1
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(widths[0])
        self.layer1 = self._make_layer(BasicBlock, widths[0], layers[0])
        self.layer2 = self._make_layer(BasicBlock, widths[1], layers[1], stride=2, dilate=dil[0])
        self.layer3 = self._make_layer(BasicBlock, widths[2], layers[2], stride=2, dilate=dil[1])
        self.layer4 = self._make_layer(BasicBlock, widths[3], layers[3], stride=2, dilate=dil[2])
        self.fc = nn.Linear(widths[3], 10)


def _reduced_resnet(*, weights=None, **kwargs) -> ReducedResNet:
    assert weights is None, "the reduced test ResNet has no pretrained weights"
    return ReducedResNet(**kwargs)


setattr(torchvision.models, REDUCED_RESNET, _reduced_resnet)

from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature  # noqa: E402
from lerobot.policies.act.configuration_act import ACTConfig  # noqa: E402
from lerobot.policies.act.modeling_act import ACTPolicy  # noqa: E402
from lerobot.policies.factory import make_pre_post_processors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "test" / "fixtures" / "lerobot"
N_SAMPLES = 3

# name -> (cameras {name: (H, W)}, state dim, action dim, norm map, ACTConfig overrides)
CASES: dict[str, dict] = {
    "act_1cam_meanstd": {
        "cameras": {"top": (48, 64)},
        "state_dim": 6,
        "action_dim": 6,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
        "act": {"n_encoder_layers": 2, "n_decoder_layers": 2, "use_vae": True, "pre_norm": False},
    },
    "act_2cam_minmax_prenorm": {
        "cameras": {"cam_high": (64, 48), "cam_wrist": (64, 48)},
        "state_dim": 7,
        "action_dim": 5,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"},
        "act": {"n_encoder_layers": 1, "n_decoder_layers": 1, "use_vae": False, "pre_norm": True},
    },
    "act_quantiles": {
        "cameras": {"front": (32, 40)},
        "state_dim": 4,
        "action_dim": 4,
        "norm": {"VISUAL": "IDENTITY", "STATE": "QUANTILES", "ACTION": "QUANTILE10"},
        "act": {"n_encoder_layers": 1, "n_decoder_layers": 3, "use_vae": True, "pre_norm": False},
    },
    # the simulated arm's cameras and 6 joints (end-to-end node and eval tests)
    "act_sim_arm": {
        "cameras": {"front": (48, 64), "wrist": (48, 64)},
        "state_dim": 6,
        "action_dim": 6,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
        "act": {"n_encoder_layers": 1, "n_decoder_layers": 1, "use_vae": True, "pre_norm": False},
    },
}
LEGACY_CASE = "act_legacy_v03"  # pre-0.4 layout written from act_1cam_meanstd's weights
LEGACY_FROM = "act_1cam_meanstd"


def _act_config(case: dict) -> ACTConfig:
    inputs = {
        f"observation.images.{cam}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w))
        for cam, (h, w) in case["cameras"].items()
    }
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(case["state_dim"],))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(case["action_dim"],))}
    kw = {
        "dim_model": 32,
        "n_heads": 4,
        "dim_feedforward": 64,
        "latent_dim": 8,
        "n_vae_encoder_layers": 1,
        "chunk_size": 10,
        "n_action_steps": 5,
        "vision_backbone": REDUCED_RESNET,
        "pretrained_backbone_weights": None,
        "device": "cpu",
        **case["act"],
    }
    return ACTConfig(
        input_features=inputs,
        output_features=outputs,
        normalization_mapping={k: NormalizationMode(v) for k, v in case["norm"].items()},
        **kw,
    )


@torch.no_grad()
def _randomize(policy: nn.Module, g: torch.Generator) -> None:
    """Random weights everywhere, FrozenBatchNorm statistics included (they start at identity)."""
    for name, t in policy.state_dict().items():
        if name.endswith("running_var"):
            t.copy_(0.5 + torch.rand(t.shape, generator=g))
        elif name.endswith("running_mean") or name.endswith(".bias"):
            t.copy_(0.1 * torch.randn(t.shape, generator=g))
        elif (
            name.endswith("bn1.weight")
            or name.endswith("bn2.weight")
            or ".downsample.1." in name
            or (".norm" in name and name.endswith(".weight"))
        ):
            t.copy_(0.8 + 0.4 * torch.rand(t.shape, generator=g))
        elif "embed" in name:  # learned positions and tokens at unit scale, so they matter
            t.copy_(torch.randn(t.shape, generator=g))
        elif t.is_floating_point():
            fan_in = t[0].numel() if t.ndim > 1 else t.numel()
            t.copy_(torch.randn(t.shape, generator=g) / max(fan_in, 1) ** 0.5)


def _inputs(case: dict, g: torch.Generator) -> dict[str, torch.Tensor]:
    out = {
        f"observation.images.{cam}": torch.randint(
            0, 256, (N_SAMPLES, h, w, 3), generator=g, dtype=torch.uint8
        )
        for cam, (h, w) in case["cameras"].items()
    }
    d = case["state_dim"]
    out["observation.state"] = torch.randn(N_SAMPLES, d, generator=g) * 1.5
    return out


def _run_lerobot(folder: Path, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reload ``folder`` with LeRobot and run the whole path on every sample."""
    policy = ACTPolicy.from_pretrained(str(folder), strict=True).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(folder))
    actions, normalized = [], []
    for i in range(N_SAMPLES):
        obs = {}
        for k, v in inputs.items():
            if k.startswith("observation.images."):
                obs[k] = v[i].permute(2, 0, 1).to(torch.float32) / 255.0
            else:
                obs[k] = v[i]
        batch = pre(obs)
        chunk = policy.predict_action_chunk(batch)
        normalized.append(chunk[0].clone())
        actions.append(post(chunk)[0].clone())
    return {
        "action": torch.stack(actions).contiguous(),
        "action.normalized": torch.stack(normalized).contiguous(),
    }


def _provenance(case_name: str, extra: dict | None = None) -> dict:
    return provenance(
        "scripts/lerobot_goldens.py",
        case_name,
        ("torchvision", "transformers"),
        "raw observation -> preprocessor -> predict_action_chunk -> postprocessor",
        extra,
    )


def make_case(name: str, case: dict, out: Path, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    cfg = _act_config(case)
    policy = ACTPolicy(cfg)
    _randomize(policy, g)
    stats = _stats(case, g)
    dest = out / name
    folder = save_policy_folder(policy, cfg, stats, dest)
    inputs = _inputs(case, g)
    save_tensors(inputs, dest / "inputs.safetensors")
    save_file(_run_lerobot(folder, inputs), str(dest / "outputs.safetensors"))
    prov = _provenance(name, {"seed": seed, "case_spec": case})
    write_json(dest / "provenance.json", prov)
    print(f"{name}: {folder_kb(dest):.0f} kB")


def make_legacy(out: Path) -> None:
    """The pre-0.4 layout: stats inside model.safetensors, no processor files.

    Keys as LeRobot <= 0.3 wrote them: ``normalize_inputs.buffer_<feature with . -> _>.<stat>``
    for the inputs, ``normalize_targets.`` and ``unnormalize_outputs.`` for the action; only the
    stats of each feature's mode (mean/std or min/max). The outputs are the source case's
    (the same weights and statistics run by LeRobot 0.6.1).
    """
    src, dest = out / LEGACY_FROM, out / LEGACY_CASE
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "pretrained_model").mkdir(parents=True)
    cfg = json.loads((src / "pretrained_model" / "config.json").read_text())
    cfg.pop("pretrained_revision", None)
    sd = load_file(str(src / "pretrained_model" / "model.safetensors"))
    stats_file = next(
        (src / "pretrained_model").glob("policy_preprocessor_step_*_normalizer_processor.safetensors")
    )
    flat = load_file(str(stats_file))
    modes = cfg["normalization_mapping"]
    feats = {**cfg["input_features"], **cfg["output_features"]}
    for feat, spec in feats.items():
        mode = modes.get(spec["type"], "IDENTITY")
        names = {"MEAN_STD": ("mean", "std"), "MIN_MAX": ("min", "max")}.get(mode, ())
        buf = "buffer_" + feat.replace(".", "_")
        prefixes = (
            ["normalize_targets", "unnormalize_outputs"] if spec["type"] == "ACTION" else ["normalize_inputs"]
        )
        for p in prefixes:
            for stat in names:
                sd[f"{p}.{buf}.{stat}"] = flat[f"{feat}.{stat}"].clone()
    save_file(sd, str(dest / "pretrained_model" / "model.safetensors"))
    write_json(dest / "pretrained_model" / "config.json", cfg, indent=4)
    for f in ("inputs.safetensors", "outputs.safetensors"):
        shutil.copy(src / f, dest / f)
    prov = _provenance(LEGACY_CASE, {"written_from": LEGACY_FROM, "note": make_legacy.__doc__.split("\n")[0]})
    write_json(dest / "provenance.json", prov)
    print(f"{LEGACY_CASE}: written from {LEGACY_FROM}")


def full_size_keys(out: Path) -> None:
    """Every state-dict name and shape of LeRobot's default-size ACT (1 camera 480x640, 14-D)."""
    inputs, outputs = one_camera_features("observation.images.top", 480, 640, 14)
    cfg = ACTConfig(
        input_features=inputs, output_features=outputs, pretrained_backbone_weights=None, device="cpu"
    )
    keys = meta_key_shapes(ACTPolicy, cfg)
    prov = _provenance("act_full_keys", {"built_on": "meta device, default ACTConfig"})
    write_full_keys(out, "act_full_keys", cfg, keys, prov)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", default=None, help="one case name")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    for i, (name, case) in enumerate(CASES.items()):
        if args.only in (None, name):
            make_case(name, case, args.out, seed=1000 + i)
    if args.only in (None, LEGACY_CASE):
        make_legacy(args.out)
    if args.only in (None, "act_full_keys"):
        full_size_keys(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
