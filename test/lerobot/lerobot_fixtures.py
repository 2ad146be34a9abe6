"""The committed LeRobot golden fixtures (made by scripts/lerobot_goldens.py in the reference lane)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lerobot"
ACT_CASES = ("act_1cam_meanstd", "act_2cam_minmax_prenorm", "act_quantiles", "act_legacy_v03")
#: the issue's bound on fp32 actions (raw units) through the whole path
BOUND = 1e-4


def folder(case: str) -> Path:
    """The case's LeRobot pretrained_model folder."""
    return FIXTURES / case / "pretrained_model"


def golden(case: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(inputs, outputs): raw observations (images uint8 [N, H, W, 3]) and LeRobot's actions."""
    return load_file(str(FIXTURES / case / "inputs.safetensors")), load_file(
        str(FIXTURES / case / "outputs.safetensors")
    )
