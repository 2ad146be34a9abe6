"""A demonstration rosbag2 of the simulated arm, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sim_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two 3 s expert episodes (sqlite3): 2 cameras at 30 Hz, joint_states at 100 Hz, instruction."""
    from vla_ros.eval.simbag import write_sim_bag

    return write_sim_bag(tmp_path_factory.mktemp("bags") / "sim_demo")
