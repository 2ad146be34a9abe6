"""A tiny flow-matching policy trained on ramps, for the real-time chunking tests.

The task: every chunk is a ramp ``a_i = c + s * i / H`` (per action dimension) with offset
``c`` and slope ``s`` drawn uniformly in ``[-1, 1]``, independent of the observation. An
unconditioned policy cannot know ``c`` and ``s`` (it samples some ramp); a policy given the
first ``d >= 2`` actions of the chunk can continue the ramp exactly. So the error of the
continuation measures whether the policy uses the committed prefix.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

TINY_RTC: dict[str, Any] = {
    "name": "flow_matching_rtc_tiny",
    "type": "flow_matching",
    "io": {
        "camera_names": ["cam"],
        "image_size": [8, 8],
        "state_dim": 2,
        "action_dim": 2,
        "horizon": 8,
        "dt": 0.1,
        "text_max_len": 0,
    },
    "num_steps": 5,
    "vision_backbone": {"type": "ViT", "patch_size": 8, "dim": 8, "depth": 1, "heads": 1},
    "projector": {"type": "MLPProjector"},
    "llm_backbone": {
        "type": "DecoderLM",
        "dim": 32,
        "depth": 1,
        "heads": 2,
        "kv_heads": 1,
        "head_dim": 16,
        "max_len": 32,
    },
    "vla_head": {"type": "FlowMatchingExpert", "dim": 32, "heads": 2},
}


def config(rtc: Any = None) -> dict[str, Any]:
    """:data:`TINY_RTC` with ``rtc`` set (None: no RTC)."""
    cfg = copy.deepcopy(TINY_RTC)
    if rtc is not None:
        cfg["rtc"] = rtc
    return cfg


def ramps(n: int, horizon: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """``[n, horizon, dim]`` ramps ``c + s * i / horizon``, ``c, s ~ U(-1, 1)``."""
    c = torch.rand(n, 1, dim, generator=gen) * 2 - 1
    s = torch.rand(n, 1, dim, generator=gen) * 2 - 1
    i = torch.arange(horizon, dtype=torch.float32)[None, :, None] / horizon
    return c + s * i


def observations(model: Any, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random (uninformative) images and states for ``n`` samples."""
    shapes = model.io.input_shapes(n)
    return {
        "images": torch.rand(shapes["images"], generator=gen),
        "state": torch.randn(shapes["state"], generator=gen),
    }


def train_ramps(rtc: Any = None, steps: int = 300, batch: int = 64, seed: int = 0) -> Any:
    """Build :func:`config` (``rtc``) and fit it to ramps with the family's own loss; eval mode."""
    from vla_ros.spine import build_vla

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is ~20x faster on a shared 2-core machine
    try:
        return _train(build_vla, rtc, steps, batch, seed)
    finally:
        torch.set_num_threads(threads)


def _train(build_vla: Any, rtc: Any, steps: int, batch: int, seed: int) -> Any:
    torch.manual_seed(seed)
    model = build_vla(config(rtc))
    io = model.io
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch_in = observations(model, batch, gen)
        batch_in["actions"] = ramps(batch, io.horizon, io.action_dim, gen)
        loss = model(batch_in)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


#: statistics of the exported RTC test cards (not the identity: the runtime converts)
STATE_STATS = {"mean": [0.1, -0.2], "std": [2.0, 0.5]}
ACTION_STATS = {"mean": [0.3, -0.1], "std": [0.2, 0.05]}
_CARDS: dict[str, Any] = {}


def rtc_card(kind: str, root: Any) -> Any:
    """A policy card (exported once per process under ``root``) of a ramp-trained policy:
    ``conditioned`` (trained with ``rtc: {max_delay: 3}``, exported as a delta-action policy
    so that the runtime's delta conversion is exercised), ``guided`` (trained without
    conditioning, exported with ``rtc: {guidance: 5.0}``) or ``plain`` (no RTC)."""
    if kind in _CARDS:
        return _CARDS[kind]
    from pathlib import Path

    from vla_ros.contract.card import Normalization, Stats
    from vla_ros.export import export_policy
    from vla_ros.spine import build_vla

    rtc = {"conditioned": {"max_delay": 3}, "guided": {"guidance": 5.0}, "plain": None}[kind]
    trained = train_ramps({"max_delay": 3} if kind == "conditioned" else None)
    cfg = config(rtc)
    if kind == "conditioned":
        cfg["io"]["action_mode"] = "delta"
    model = build_vla(cfg)
    model.load_state_dict(trained.state_dict())
    norm = Normalization(Stats(**STATE_STATS), Stats(**ACTION_STATS))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        card = export_policy(
            model.eval(), Path(root) / kind, layout="split", model_config=cfg, normalization=norm
        )
    finally:
        torch.set_num_threads(threads)
    _CARDS[kind] = card
    return card
