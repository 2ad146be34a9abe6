"""The tiny NaN-gate policy card the node and policy tests run on (support.policy_card)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support.policy_card import CAMERAS, make_card


def test_tiny_card_runs_and_gates_nan(tmp_path: Path) -> None:
    from vla_ros.runtime import NonFiniteOutputError, Observation, load_runtime

    rt = load_runtime(make_card(tmp_path / "card"), backend="onnxruntime")
    assert rt.card.io.camera_names == CAMERAS
    images = {c: np.full((48, 64, 3), 128, np.uint8) for c in CAMERAS}
    out = rt.infer(Observation(images=images, state=np.array([1.0, 2.0, 3.0])))
    assert out.shape == (4, 2) and np.isfinite(out).all()
    try:
        rt.infer(Observation(images=images, state=np.array([-1.0, 2.0, 3.0])))
    except NonFiniteOutputError:
        pass
    else:
        raise AssertionError("a negative first state value must give NaN actions")
