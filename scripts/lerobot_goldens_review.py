"""Independent-review checkpoints: LeRobot builds a policy of any (non-default) config, saves it
with ``save_pretrained`` and its processors, and records its own outputs on its own inputs.

Runs in the reference lane only (Python 3.12 + ``lerobot[smolvla,diffusion]==0.6.1``); vla_ros
never imports LeRobot. The folder format is the golden scripts' (``scripts/lerobot_goldens*.py``)::

    <out>/<name>/pretrained_model/     the checkpoint folder as LeRobot writes it
    <out>/<name>/inputs.safetensors    raw observations (uint8 HWC cameras, raw state), noise
    <out>/<name>/outputs.safetensors   LeRobot's raw actions (``action``), normalized ones
    <out>/<name>/provenance.json       script, case, versions, seed

A case is JSON ``{"policy": "act" | "diffusion" | "smolvla", "cameras": {name: [H, W]},
"state_dim": D, "action_dim": A, "norm": {"VISUAL": mode, ...}, "env_dim": E (optional,
``observation.environment_state``; ACT and Diffusion), "<policy>": {config overrides},
"tasks": [...] (SmolVLA)}``; the reduced trunks, the tiny VLM and the per-policy whole path
are the golden scripts' own (imported from them). A config LeRobot itself refuses is reported
as ``{"lerobot_refused": message}`` in provenance.json, with no checkpoint written.

Usage (in the lane): ``python scripts/lerobot_goldens_review.py --out DIR --case NAME=JSON [...]``
(``JSON`` inline or ``@file.json``); ``--float64 CASE_DIR`` reruns a Diffusion case's folder in
float64 (``lerobot_float64.safetensors``: whether a float32 gap is conditioning or a formula).
Used by ``test/lerobot/test_review_live.py`` and ``test_diffusion_live.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

ROOT = Path(__file__).resolve().parents[1]
ENV = "observation.environment_state"


def _with_env(module, case: dict) -> None:
    """Wrap ``module``'s config / stats / inputs makers so that ``case["env_dim"]`` adds an
    ``observation.environment_state`` input (ENV feature, its own stats, random raw values)."""
    from lerobot.configs.types import FeatureType, PolicyFeature

    env_dim = int(case.get("env_dim") or 0)
    if not env_dim:
        return
    config_fn = module._config if hasattr(module, "_config") else module._act_config

    def config(c: dict):
        cfg = config_fn(c)
        cfg.input_features[ENV] = PolicyFeature(type=FeatureType.ENV, shape=(env_dim,))
        return cfg

    stats_fn = module._stats

    def stats(c: dict, g: torch.Generator) -> dict:
        out = stats_fn(c, g)
        mean, std = torch.randn(env_dim, generator=g), 0.2 + torch.rand(env_dim, generator=g)
        out[ENV] = {"mean": mean, "std": std, "min": mean - 2 * std, "max": mean + 2 * std}
        for q, z in (("q01", -1.9), ("q10", -1.1), ("q50", 0.0), ("q90", 1.2), ("q99", 2.0)):
            out[ENV][q] = mean + z * std
        return out

    inputs_fn = module._inputs

    def inputs(c: dict, *args):
        out = inputs_fn(c, *args)
        g = args[-1]
        lead = out["observation.state"].shape[:-1]
        out[ENV] = torch.randn(*lead, env_dim, generator=g) * 1.5
        return out

    if hasattr(module, "_config"):
        module._config = config
    else:
        module._act_config = config
    module._stats, module._inputs = stats, inputs
    if hasattr(module, "_obs"):  # Diffusion: the observation LeRobot receives
        obs_fn = module._obs

        def obs(inputs: dict, i: int, frames: slice) -> dict:
            out = obs_fn(inputs, i, frames)
            out[ENV] = inputs[ENV][i, frames][None]
            return out

        module._obs = obs


def _smolvla_norm(module, case: dict) -> None:
    """``case["norm"]`` as the SmolVLA config's normalization_mapping (the golden script's is fixed)."""
    if "norm" not in case:
        return
    from lerobot.configs.types import NormalizationMode

    config_fn = module._config

    def config(c: dict, vlm_name: str):
        cfg = config_fn(c, vlm_name)
        cfg.normalization_mapping = {k: NormalizationMode(v) for k, v in c["norm"].items()}
        return cfg

    module._config = config
    stats_fn = module._stats

    def stats(c: dict, g: torch.Generator) -> dict:
        out = stats_fn(c, g)
        for s in out.values():
            s["q01"], s["q99"] = s["min"] + 0.1, s["max"] - 0.1
            s["q10"], s["q90"] = s["min"] + 0.3, s["max"] - 0.3
        for cam in c["cameras"]:  # image statistics [3, 1, 1] (used when VISUAL is normalized)
            mean = torch.tensor([0.45, 0.42, 0.40]) + 0.05 * torch.randn(3, generator=g)
            std = torch.tensor([0.23, 0.22, 0.24]) + 0.02 * torch.rand(3, generator=g)
            img = {"mean": mean, "std": std, "min": torch.zeros(3) + 0.02, "max": torch.ones(3) - 0.03}
            img.update(q01=img["min"] + 0.01, q99=img["max"] - 0.01, q10=mean - std, q90=mean + std)
            out[f"observation.images.{cam}"] = {k: v.reshape(3, 1, 1) for k, v in img.items()}
        return out

    module._stats = stats


PATCHED = ("_config", "_act_config", "_stats", "_inputs", "_obs", "_run_lerobot")


def _any_resize(module, case: dict) -> None:
    """The golden script checks the vision position ids are ``0..P-1``, right at the tower's
    own size only; at another ``resize_imgs_with_padding`` SmolVLM buckets them (not checked)."""
    if "resize_imgs_with_padding" not in case.get("smolvla", {}):
        return
    run = module._run_lerobot

    def run_lerobot(*args):
        out, _ = run(*args)
        return out, True

    module._run_lerobot = run_lerobot


def make(name: str, case: dict, out: Path, seed: int) -> None:
    """Build, save and run one case with LeRobot (see the module docstring)."""
    policy = case["policy"]
    case = dict(case)
    case["cameras"] = {k: tuple(v) for k, v in case["cameras"].items()}
    for key in ("act", "diffusion", "smolvla"):
        for k, v in list(case.get(key, {}).items()):
            if isinstance(v, list):
                case[key][k] = tuple(v)
    if policy == "act":
        import lerobot_goldens as module
    elif policy == "diffusion":
        import lerobot_goldens_diffusion as module
    elif policy == "smolvla":
        import lerobot_goldens_smolvla as module

        case.setdefault("tasks", ["pick up the red cube", "open the top drawer\n"])
        vlm = out / module.VLM_DIR
        if not (vlm / "config.json").is_file():
            module.make_vlm_folder(vlm, module.TINY_TEXT, module.TINY_VISION, module.TINY_SCALE_FACTOR)
    else:
        raise SystemExit(f"unknown policy {policy!r}")
    saved = {k: getattr(module, k) for k in PATCHED if hasattr(module, k)}
    if policy == "smolvla":
        _smolvla_norm(module, case)
        _any_resize(module, case)
    _with_env(module, case)
    dest = out / name
    try:
        module.make_case(name, case, out, seed)
    except (Exception, SystemExit) as e:  # a config LeRobot refuses: recorded, not written
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        msg = f"{type(e).__name__}: {e}"
        (dest / "provenance.json").write_text(
            json.dumps({"case": name, "case_spec": case, "lerobot_refused": msg}, indent=1, default=str)
        )
        print(f"{name}: LeRobot refused: {msg}")
        traceback.print_exc(limit=3)
    finally:
        for k, v in saved.items():
            setattr(module, k, v)


def diffusion_float64(case_dir: Path) -> None:
    """LeRobot's Diffusion Policy of ``case_dir`` run in float64 (``torch.set_default_dtype``, the
    policy and the preprocessed batch cast) on the case's inputs and noise; writes
    ``lerobot_float64.safetensors`` (``action.normalized`` float64). A float32 result can only be
    as close to another float32 implementation as the problem's conditioning allows; float64
    shows whether the formulas agree."""
    import lerobot_goldens_diffusion as module
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors
    from safetensors.torch import load_file, save_file

    folder = case_dir / "pretrained_model"
    inputs = load_file(str(case_dir / "inputs.safetensors"))
    policy = DiffusionPolicy.from_pretrained(str(folder)).eval()
    pre, _ = make_pre_post_processors(policy.config, pretrained_path=str(folder))
    torch.set_default_dtype(torch.float64)
    policy = policy.to(torch.float64)
    out = []
    for i in range(inputs["noise"].shape[0]):
        policy.reset()
        batch = {
            k: (v.double() if torch.is_tensor(v) and v.is_floating_point() else v)
            for k, v in pre(module._obs(inputs, i, slice(None))).items()
        }
        out.append(policy.predict_action_chunk(batch, noise=inputs["noise"][i][None].double())[0])
    torch.set_default_dtype(torch.float32)
    dest = case_dir / "lerobot_float64.safetensors"
    save_file({"action.normalized": torch.stack(out).contiguous()}, str(dest))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/lerobot_review"))
    ap.add_argument("--case", action="append", default=[], help="NAME=JSON or NAME=@file.json")
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--float64", type=Path, action="append", default=[], help="Diffusion case dir")
    args = ap.parse_args(argv)
    for case_dir in args.float64:
        diffusion_float64(case_dir.resolve())
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)
    torch.set_num_threads(2)
    for i, spec in enumerate(args.case):
        name, _, text = spec.partition("=")
        case = json.loads(Path(text[1:]).read_text() if text.startswith("@") else text)
        make(name, case, args.out, args.seed + i)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
