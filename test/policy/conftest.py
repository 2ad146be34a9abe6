"""Fixtures for the policy-step tests: a real tiny ONNX card (the node tests' NaN-gate policy)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cameras wrist+top, state joints j1..j3, actions j1..j2, horizon 4, dt 0.05 s; NaN if state[0] < 0."""
    from support.policy_card import make_card

    return make_card(tmp_path_factory.mktemp("policy_card") / "nan_gate")


@pytest.fixture(scope="session")
def history_card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As ``card`` with obs_history=2."""
    from support.policy_card import make_card

    return make_card(tmp_path_factory.mktemp("policy_card_hist") / "nan_gate", obs_history=2)
