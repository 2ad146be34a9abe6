"""Helpers the LeRobot golden scripts share (``scripts/lerobot_goldens*.py``; the reference lane,
``requirements/lerobot-ref.txt``): a policy folder as LeRobot saves it, tensors, JSON and the
provenance every golden carries. LeRobot is imported only inside the functions that need it."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

#: how every golden's camera inputs reached LeRobot
IMAGES_NOTE = "inputs are uint8 HWC camera bytes; LeRobot received float32 CHW / 255"


def save_policy_folder(policy: torch.nn.Module, cfg: Any, stats: dict, dest: Path) -> Path:
    """Empty ``dest`` and write ``dest/pretrained_model`` as LeRobot does: the policy's
    ``save_pretrained`` plus its pre/post processors made from ``cfg`` and ``stats``; returns it."""
    from lerobot.policies.factory import make_pre_post_processors

    shutil.rmtree(dest, ignore_errors=True)
    folder = dest / "pretrained_model"
    policy.save_pretrained(str(folder))
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    pre.save_pretrained(str(folder))
    post.save_pretrained(str(folder))
    return folder


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """``tensors`` (made contiguous) as a safetensors file at ``path``."""
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))


def write_json(path: Path, data: Any, indent: int = 1) -> None:
    """``data`` as JSON at ``path`` with a final newline."""
    path.write_text(json.dumps(data, indent=indent) + "\n")


def folder_kb(dest: Path) -> float:
    """The size of every file under ``dest`` in kB (1e3 bytes)."""
    return sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) / 1e3


def versions(*modules: str) -> dict[str, str]:
    """``lerobot``, ``torch``, then each of ``modules``, then ``python``: their versions."""
    out = {"lerobot": importlib.import_module("lerobot").__version__, "torch": torch.__version__}
    out.update({m: importlib.import_module(m).__version__ for m in modules})
    out["python"] = sys.version.split()[0]
    return out


def provenance(
    script: str, case_name: str, modules: tuple[str, ...], path: str, extra: dict | None = None, **fields: Any
) -> dict:
    """A golden's provenance: ``script``, ``case``, :func:`versions` of ``modules``, the LeRobot
    ``path`` the inputs took, :data:`IMAGES_NOTE`, then ``fields`` and ``extra``."""
    return {
        "script": script,
        "case": case_name,
        "versions": versions(*modules),
        "path": path,
        "images": IMAGES_NOTE,
        **fields,
        **(extra or {}),
    }


def made_up_stats(case: dict, g: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    """Made-up dataset statistics with every stat LeRobot records (ordered quantiles) for
    ``case["cameras"]`` (near ImageNet's mean / std, min 0, max 1), ``observation.state`` and
    ``action``, drawn from ``g`` (ACT and Diffusion goldens)."""

    def vec(d: int, shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        mean = torch.randn(d, generator=g)
        std = 0.2 + torch.rand(d, generator=g)
        lo, hi = mean - 2.5 * std, mean + 2.5 * std
        out = {
            "mean": mean,
            "std": std,
            "min": lo,
            "max": hi,
            "q01": mean - 2.0 * std,
            "q10": mean - 1.2 * std,
            "q50": mean,
            "q90": mean + 1.3 * std,
            "q99": mean + 2.1 * std,
            "count": torch.tensor([1000.0]),
        }
        return {k: (v.reshape(shape) if k != "count" else v) for k, v in out.items()}

    stats = {}
    for cam in case["cameras"]:
        s = vec(3, (3, 1, 1))
        s["mean"] = torch.tensor([0.485, 0.456, 0.406]).reshape(3, 1, 1) + 0.05 * torch.randn(
            3, 1, 1, generator=g
        )
        s["std"] = torch.tensor([0.229, 0.224, 0.225]).reshape(3, 1, 1) + 0.02 * torch.rand(
            3, 1, 1, generator=g
        )
        s["min"], s["max"] = torch.zeros(3, 1, 1), torch.ones(3, 1, 1)
        stats[f"observation.images.{cam}"] = s
    stats["observation.state"] = vec(case["state_dim"], (case["state_dim"],))
    stats["action"] = vec(case["action_dim"], (case["action_dim"],))
    return stats


def meta_key_shapes(policy_cls: Any, cfg: Any) -> dict[str, list[int]]:
    """Every state-dict name and shape of ``policy_cls(cfg)`` built on the meta device."""
    with torch.device("meta"):
        policy = policy_cls(cfg)
    return {k: list(v.shape) for k, v in policy.state_dict().items()}


def write_full_keys(
    out: Path, name: str, cfg: Any, keys: dict[str, list[int]], prov: dict, **extra: Any
) -> None:
    """``out/<name>.json``: ``{"provenance": prov, "config": <cfg's saved config.json>, **extra,
    "keys": keys}`` (``keys`` from :func:`meta_key_shapes`); prints the key and parameter counts."""
    tmp = out / f"_{name}_cfg"
    tmp.mkdir(exist_ok=True)
    cfg._save_pretrained(tmp)
    data = {
        "provenance": prov,
        "config": json.loads((tmp / "config.json").read_text()),
        **extra,
        "keys": keys,
    }
    shutil.rmtree(tmp)
    write_json(out / f"{name}.json", data)
    n_params = sum(torch.Size(s).numel() for s in keys.values())
    print(f"{name}.json: {len(keys)} keys, {n_params / 1e6:.1f} M")


def one_camera_features(camera: str, height: int, width: int, dim: int) -> tuple[dict, dict]:
    """LeRobot ``(input_features, output_features)`` of one camera ``camera [3, height, width]``
    (VISUAL), ``observation.state [dim]`` (STATE) and ``action [dim]`` (ACTION)."""
    from lerobot.configs.types import FeatureType, PolicyFeature

    inputs = {
        camera: PolicyFeature(type=FeatureType.VISUAL, shape=(3, height, width)),
        "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(dim,)),
    }
    return inputs, {"action": PolicyFeature(type=FeatureType.ACTION, shape=(dim,))}
