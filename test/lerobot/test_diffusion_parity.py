"""vla_ros's Diffusion Policy vs LeRobot 0.6.1's own outputs (the committed goldens), torch.

Whole path: camera bytes and raw state in, the checkpoint's statistics, the model, the action
unnormalization out; bound 1e-4 max abs on raw actions. DDIM is deterministic given the initial
noise; DDPM also needs the noise of every step, which the goldens recorded.
"""

from __future__ import annotations

import pytest
import torch
from diffusion_helpers import DIFFUSION_CASES, load_case, repeat_history, spine_obs
from lerobot_fixtures import BOUND


@pytest.mark.parametrize("case", DIFFUSION_CASES)
def test_whole_path_matches_lerobot(case: str) -> None:
    ckpt, model, inputs, outputs = load_case(case)
    unnorm = ckpt.normalizer("action").unnormalize
    n = outputs["action"].shape[0]
    for i in range(n):
        step_noise = inputs["step_noise"][i][:, None] if "step_noise" in inputs else None
        with torch.no_grad():
            chunk = model.predict_action_chunk(
                spine_obs(ckpt, inputs, i), inputs["noise"][i][None], step_noise=step_noise
            )[0]
        assert chunk.shape == outputs["action"][i].shape
        assert (chunk - outputs["action.normalized"][i]).abs().max().item() <= BOUND
        assert (unnorm(chunk) - outputs["action"][i]).abs().max().item() <= BOUND
    # the comparison can fail: LeRobot's chunks are not flat, and another noise moves them
    assert outputs["action"].std() > 0.1
    with torch.no_grad():
        other = model.predict_action_chunk(spine_obs(ckpt, inputs, 0), inputs["noise"][1][None] * 0.5)[0]
    assert (unnorm(other) - outputs["action"][0]).abs().max().item() > 1e-2


@pytest.mark.parametrize("case", DIFFUSION_CASES)
def test_fresh_select_action_queue_is_the_repeated_newest_frame(case: str) -> None:
    """LeRobot's select_action after reset fills the history with copies of the first frame;
    the runtime's history padding (oldest frame repeated) gives the same chunk."""
    ckpt, model, inputs, outputs = load_case(case)
    obs = repeat_history(spine_obs(ckpt, inputs, 0, slice(-1, None)), model.io.obs_history)
    step_noise = inputs["step_noise"][0][:, None] if "step_noise" in inputs else None
    with torch.no_grad():
        chunk = model.predict_action_chunk(obs, inputs["noise"][0][None], step_noise=step_noise)[0]
    got = ckpt.normalizer("action").unnormalize(chunk)
    assert (got - outputs["action.select"]).abs().max().item() <= BOUND


def test_ddpm_is_stochastic_without_the_step_noise() -> None:
    """DDPM draws fresh noise at every step: the same initial noise alone does not fix the
    output (the reason DDPM parity needs every step's noise, and deployment uses DDIM)."""
    ckpt, model, inputs, outputs = load_case("diffusion_ddpm")
    assert model.sampler == "DDPM" and model.num_inference_steps == 20
    obs, noise = spine_obs(ckpt, inputs, 0), inputs["noise"][0][None]
    torch.manual_seed(0)
    with torch.no_grad():
        a = model.predict_action_chunk(obs, noise)
        b = model.predict_action_chunk(obs, noise)
    assert not torch.equal(a, b)
    assert (a[0] - outputs["action.normalized"][0]).abs().max().item() > 1e-3
    with pytest.raises(ValueError, match="step_noise holds 3 tensors; DDPM with 20 steps needs 19"):
        model.predict_action_chunk(obs, noise, step_noise=inputs["step_noise"][0][:3, None])


def test_ddim_override_deploys_a_ddpm_policy_deterministically() -> None:
    from lerobot_fixtures import folder

    from vla_ros.spine.checkpoints import read_lerobot_folder
    from vla_ros.spine.families.lerobot_diffusion import build_lerobot_diffusion

    ckpt = read_lerobot_folder(folder("diffusion_ddpm"))
    model = build_lerobot_diffusion(ckpt, noise_scheduler_type="DDIM", num_inference_steps=5)
    assert model.io_spec().extra["num_inference_steps"] == 5
    assert model.sched_timesteps.tolist() == [16, 12, 8, 4, 0]  # diffusers' "leading" spacing
    _, _, inputs, _ = load_case("diffusion_ddpm")
    obs, noise = spine_obs(ckpt, inputs, 0), inputs["noise"][0][None]
    with torch.no_grad():
        assert torch.equal(model.predict_action_chunk(obs, noise), model.predict_action_chunk(obs, noise))
