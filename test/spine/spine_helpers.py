"""Helpers for the spine tests: the family list and a fixed training batch."""

from __future__ import annotations

import torch

from vla_ros.spine import BaseVLA

FAMILIES = ["act", "flow_matching", "diffusion", "tokens", "regression", "hierarchical"]


def fixed_batch(model: BaseVLA, batch_size: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """A training batch whose loss is a deterministic function of the weights."""
    batch = model.example_batch(batch_size, seed)
    batch.update(model.training_noise(batch_size, seed))
    return batch
