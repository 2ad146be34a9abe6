"""The default card name of a LeRobot checkpoint: the training run, not the step folder (every
``lerobot-train`` checkpoint sits in ``checkpoints/last`` or ``checkpoints/<step>``, and the name
is the first half of the policy id on every ActionChunk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vla_ros.export.sources import lerobot_card_name


@pytest.mark.parametrize(
    ("folder", "name"),
    [
        ("outputs/train/act_so101/checkpoints/last/pretrained_model", "act_so101"),
        ("outputs/train/act_so101/checkpoints/020000/pretrained_model", "act_so101"),
        ("outputs/train/act_so101/checkpoints/last", "act_so101"),  # the parent of pretrained_model
        ("/abs/runs/pick/checkpoints/last/pretrained_model", "pick"),
        ("hub/two_cams/pretrained_model", "two_cams"),  # no checkpoints/ folder: the parent
        ("snapshots/act_pick", "act_pick"),  # a hub snapshot: the folder itself
        ("checkpoints/last/pretrained_model", "last"),  # no run folder above: the step
    ],
)
def test_default_card_name(folder: str, name: str) -> None:
    assert lerobot_card_name(Path(folder)) == name
