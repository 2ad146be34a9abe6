"""Every weight name and shape of LeRobot's default-size pi0 and pi0.5 (PaliGemma gemma_2b +
SigLIP so400m, gemma_300m expert; listed on the meta device by scripts/lerobot_goldens_pi0.py)
against the spine models built from the same config.json on the meta device."""

from __future__ import annotations

import pytest
import torch
from flow_helpers import full_keys_checkpoint

from vla_ros.spine.build import build_vla
from vla_ros.spine.families.lerobot_pi0_checkpoint import NAME_MAPPING, UNUSED_PREFIXES, pi_model_config
from vla_ros.spine.weights import map_name


@pytest.mark.parametrize(("kind", "n_params"), [("pi0", 4.03e9), ("pi05", 4.14e9)])
def test_full_size_key_list_matches_lerobot(kind: str, n_params: float) -> None:
    data, ckpt = full_keys_checkpoint(kind)
    model_cfg = pi_model_config(ckpt)
    assert model_cfg["lerobot"]["architecture"].startswith("LeRobot's gemma_2b")
    with torch.device("meta"):
        model = build_vla(model_cfg)
    ours = {map_name(k, list(NAME_MAPPING.items())): list(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: v for k, v in data["keys"].items() if not k.startswith(UNUSED_PREFIXES)}
    assert ours == theirs
    total = sum(torch.Size(s).numel() for s in data["keys"].values())
    assert abs(total - n_params) < 0.01e9  # LeRobot's 4.03 G / 4.14 G (both lm_heads included)
    assert all(any(k.startswith(p) for k in data["keys"]) for p in UNUSED_PREFIXES)  # what is dropped exists
