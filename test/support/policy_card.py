"""A tiny real policy card for node tests, plus ROS message builders.

``make_card`` exports a small torch module (spine contract: ``io_spec``, ``example_inputs``,
``predict_action``) to ONNX and writes a real policy card in a folder. Its output is NaN whenever
the first state value is negative, so tests can provoke "NaN output from the model" through
real topics. The card is written by the real ``vla_ros.export.export_policy``.
"""

from __future__ import annotations

import array
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vla_ros.contract.io_spec import IOSpec

CAMERAS = ("wrist", "top")
STATE_JOINTS = ("j1", "j2", "j3")
ACTION_JOINTS = ("j1", "j2")


class NaNGatePolicy(nn.Module):
    """Mean image colour + state -> linear -> actions; NaN when state[0] < 0 (normalized)."""

    def __init__(
        self,
        cameras: tuple[str, ...] = CAMERAS,
        state_dim: int = 3,
        action_dim: int = 2,
        obs_history: int = 1,
        image_size: tuple[int, int] = (24, 32),
        nan_gate: bool = True,
    ) -> None:
        super().__init__()
        self.nan_gate = nan_gate
        self.spec = IOSpec(
            camera_names=cameras,
            image_size=image_size,
            state_dim=state_dim,
            action_dim=action_dim,
            horizon=4,
            dt=0.05,
            obs_history=obs_history,
        )
        n_in = obs_history * (len(cameras) * 3 + state_dim)
        self.head = nn.Linear(n_in, self.spec.horizon * action_dim)
        torch.manual_seed(0)
        nn.init.normal_(self.head.weight, std=0.3)

    def io_spec(self) -> IOSpec:
        return self.spec

    def example_inputs(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(1)
        return {
            k: torch.rand(shape, generator=g) + (1.0 if k == "state" else 0.0)
            for k, shape in self.spec.input_shapes(batch_size).items()
        }

    def predict_action(self, obs: dict[str, torch.Tensor], noise: torch.Tensor | None = None) -> torch.Tensor:
        images, state = obs["images"], obs["state"]
        b = state.shape[0]
        colour = images.mean(dim=(-1, -2)).reshape(b, -1)  # [B, T*N*C]
        x = torch.cat([colour, state.reshape(b, -1)], dim=-1)
        out = self.head(x)
        if self.nan_gate:
            out = out + 0.0 * torch.sqrt(state[:, -1, :1])  # NaN for a negative state[0]
        return out.reshape(b, self.spec.horizon, self.spec.action_dim)


def make_card(
    out_dir: Path,
    *,
    cameras: tuple[str, ...] = CAMERAS,
    state_joints: tuple[str, ...] = STATE_JOINTS,
    action_joints: tuple[str, ...] = ACTION_JOINTS,
    obs_history: int = 1,
    image_size: tuple[int, int] = (24, 32),
    nan_gate: bool = True,
) -> Path:
    """Export :class:`NaNGatePolicy` to a real ONNX policy card in ``out_dir``; returns it."""
    from vla_ros.export import export_policy

    model = NaNGatePolicy(cameras, len(state_joints), len(action_joints), obs_history, image_size, nan_gate)
    card = export_policy(
        model,
        Path(out_dir),
        backends=("onnx",),
        name="nan_gate",
        state_joints=list(state_joints),
        action_joints=list(action_joints),
    )
    return Path(card.root)


def image_msg(
    stamp_ns: int,
    rgb: np.ndarray,
    *,
    encoding: str = "rgb8",
    pad: int = 0,
    frame_id: str = "cam",
):
    """A sensor_msgs/Image from an ``[H, W, C]`` (or ``[H, W]``) uint8/uint16/float array."""
    from sensor_msgs.msg import Image

    h, w = rgb.shape[:2]
    rows = np.ascontiguousarray(rgb).reshape(h, -1).view(np.uint8)
    if pad:
        rows = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=rows.shape[1])
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.data = array.array("B", rows.tobytes())
    return msg


def joint_msg(stamp_ns: int, names, positions):
    """A sensor_msgs/JointState."""
    from sensor_msgs.msg import JointState

    msg = JointState(name=list(names), position=[float(p) for p in positions])
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return msg
