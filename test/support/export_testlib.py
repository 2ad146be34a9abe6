"""Test helpers for export and runtime tests.

``TinyPolicy`` is a small torch policy that follows the spine contract but is not a spine
family: export and the runtimes are tested on a module whose behaviour the tests control (split
hooks, tokens, delta actions, history, a NaN switch). ``exported_card`` exports real spine tiny
configs once per test process.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from vla_ros.contract.io_spec import IOSpec


class TinyPolicy(nn.Module):
    """Conv image encoder + state MLP; flow-style Euler loop when ``needs_noise``."""

    EXPORT_LAYOUT = "split"

    def __init__(
        self,
        needs_noise: bool = True,
        text_max_len: int = 0,
        obs_history: int = 1,
        cameras: tuple[str, ...] = ("front",),
        steps: int = 4,
        action_mode: str = "absolute",
        state_dim: int = 4,
        action_dim: int = 3,
    ) -> None:
        super().__init__()
        self.spec = IOSpec(
            camera_names=cameras,
            image_size=(24, 32),
            state_dim=state_dim,
            action_dim=action_dim,
            horizon=5,
            dt=0.05,
            obs_history=obs_history,
            text_max_len=text_max_len,
            needs_noise=needs_noise,
            action_mode=action_mode,
        )
        self.num_export_steps = steps
        d = 16
        self.conv = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.GELU(), nn.Conv2d(8, d, 3, stride=2)
        )
        self.state = nn.Linear(state_dim * obs_history, d)
        self.text = nn.Embedding(257, d) if text_max_len else None
        self.norm = nn.LayerNorm(d)
        n_act = self.spec.horizon * action_dim
        self.head = nn.Sequential(nn.Linear(2 * d + n_act + 1, 32), nn.GELU(), nn.Linear(32, n_act))
        self.poison = False  # tests flip this to make outputs NaN

    def io_spec(self) -> IOSpec:
        return self.spec

    def example_inputs(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(1)
        out = {}
        for k, shp in self.spec.input_shapes(batch_size).items():
            if k == "tokens":
                out[k] = torch.randint(0, 256, shp, generator=g)
            elif k == "images":
                out[k] = torch.rand(shp, generator=g)
            else:
                out[k] = torch.randn(shp, generator=g)
        return out

    def export_prefix(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        img = obs["images"]
        b = img.shape[0]
        flat = img.reshape(-1, *img.shape[-3:])
        f = self.conv(flat * 2.0 - 1.0).mean(dim=(2, 3)).reshape(b, -1, self.conv[-1].out_channels)
        feat = f.mean(dim=1)
        if self.text is not None:
            feat = feat + self.text(obs["tokens"]).mean(dim=1)
        s = self.state(obs["state"].reshape(b, -1))
        return {"context": self.norm(torch.cat([feat, s], dim=-1).reshape(b, 2, -1)).reshape(b, -1)}

    def export_step(
        self, prefix: dict[str, torch.Tensor], x: torch.Tensor, step_index: torch.Tensor
    ) -> torch.Tensor:
        b = x.shape[0]
        t = (step_index.to(x.dtype) / self.num_export_steps).reshape(1, 1).expand(b, 1)
        v = self.head(torch.cat([prefix["context"], x.reshape(b, -1), t], dim=-1))
        out = x + v.reshape(x.shape) / self.num_export_steps
        if self.poison:
            out = out * float("nan")
        return out

    def predict_action(self, obs: dict[str, torch.Tensor], noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = obs.get("noise")
        b = obs["state"].shape[0]
        shape = (b, self.spec.horizon, self.spec.action_dim)
        x = noise if noise is not None else torch.zeros(shape, dtype=obs["state"].dtype)
        prefix = self.export_prefix(obs)
        for i in range(self.num_export_steps):
            x = self.export_step(prefix, x, torch.tensor(i, dtype=torch.int64))
        return x


# ---------------------------------------------------------------------- shared exported cards
_CARDS: dict[tuple[str, str | None], Path] = {}
_ROOT: list[Path] = []


def cards_root() -> Path:
    """One temporary folder per test process for cards shared between tests."""
    if not _ROOT:
        _ROOT.append(Path(tempfile.mkdtemp(prefix="vla_ros_cards_")))
    return _ROOT[0]


def exported_card(config: str, layout: str | None = None) -> Path:
    """Export ``config`` (a name in config/models) once per process; returns the card folder.

    Tests must not modify these folders; copy them (``copy_card``) to break things.
    """
    if layout is None:  # the family's default layout: share the export with explicit requests
        from vla_ros.export.api import build_model
        from vla_ros.export.onnx_export import default_layout

        layout = default_layout(build_model(config, None)[0])
    key = (config, layout)
    if key not in _CARDS:
        from vla_ros.export import export_policy

        out = cards_root() / f"{config}_{layout}"
        export_policy(config, out, layout=layout)
        _CARDS[key] = out
    return _CARDS[key]


def copy_card(src: Path, dst: Path) -> Path:
    """A private copy of a card folder."""
    shutil.copytree(src, dst)
    return dst


def family_cases() -> list:
    """``pytest.param(family, layout)`` for every registered family and each layout it supports
    (a family without ``config/models/<family>_tiny.yaml`` yet is a skip that says so)."""
    import pytest

    from vla_ros.export.api import build_model
    from vla_ros.export.onnx_export import model_layouts
    from vla_ros.spine import VLAS
    from vla_ros.spine.config import MODEL_CONFIG_DIR

    out = []
    for fam in VLAS.list():
        if not (MODEL_CONFIG_DIR / f"{fam}_tiny.yaml").is_file():
            reason = f"family {fam!r} has no config/models/{fam}_tiny.yaml yet"
            out.append(pytest.param(fam, None, marks=pytest.mark.skip(reason=reason)))
            continue
        model, _, _ = build_model(f"{fam}_tiny", None)
        for layout in model_layouts(model):
            out.append(pytest.param(fam, layout, id=f"{fam}-{layout}"))
    return out
