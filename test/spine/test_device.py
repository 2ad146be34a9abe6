"""Every tensor a family makes at inference follows the model's device (CUDA/Jetson readiness).

No GPU here, so the model runs on PyTorch's ``meta`` device: any tensor created on the CPU
inside ``predict_action`` (a mask, a zeros init, an index) meets meta tensors and raises
"Expected all tensors to be on the same device" exactly as it would against CUDA tensors.
"""

from __future__ import annotations

import pytest
import torch

from vla_ros.spine import VLAS, build_vla


@pytest.mark.parametrize("family", sorted(VLAS.list()))
def test_inference_stays_on_the_model_device(family):
    model = build_vla(f"{family}_tiny").eval().to("meta")
    obs = {k: v.to("meta") for k, v in model.example_inputs(1).items()}
    with torch.no_grad():
        out = model.predict_action(obs)
        split = model.run_split(obs, obs.get("noise")) if model.num_export_steps else out
    io = model.io_spec()
    assert out.device.type == "meta" and tuple(out.shape) == (1, io.horizon, io.action_dim)
    assert split.device.type == "meta" and split.shape == out.shape
