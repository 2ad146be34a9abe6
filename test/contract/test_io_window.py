"""IOSpec.action_window: the rows of the model output that form the published action chunk."""

from __future__ import annotations

import pytest

from vla_ros.contract.io_spec import IOSpec


def _io(**extra) -> IOSpec:
    return IOSpec(("cam",), (8, 8), state_dim=2, action_dim=2, horizon=16, dt=0.1, extra=extra)


def test_whole_horizon_by_default_and_lerobot_diffusion_window():
    assert _io().action_window == (0, 16) and _io().chunk_shape == (16, 2)
    io = _io(action_window=[1, 9])  # n_obs_steps 2, n_action_steps 8
    assert io.action_window == (1, 9) and io.chunk_shape == (8, 2) and io.output_shape == (16, 2)


@pytest.mark.parametrize("window", [[0, 17], [5, 5], [-1, 3]])
def test_a_window_outside_the_horizon_is_an_error_naming_it(window):
    with pytest.raises(ValueError, match=r"action_window'\]=\[.*re-export the card"):
        _ = _io(action_window=window).action_window
