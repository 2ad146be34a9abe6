"""Shared by the LeRobot robot-path tests: a card on the real policy_node -> executor_node graph
with the simulated arm, brought up by ``vla-ros bringup`` in a subprocess (no doctor_node: it is
not under test there; test_bringup covers it)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vla_ros.sim.robot import SimArmConfig


def write_bringup_params(path: Path, card: Path, image_width: int, image_height: int) -> SimArmConfig:
    """Write the bringup parameters file at ``path`` (policy on ``card`` at 10 Hz, executor armed
    at 50 Hz with the sim arm's limits, sim cameras ``image_width`` x ``image_height`` pixels at
    30 Hz); returns the arm whose limits the executor enforces."""
    arm = SimArmConfig()
    params = {
        "/**/policy_node": {"ros__parameters": {"card": str(card), "warmup": 0, "rate_hz": 10.0}},
        "/**/executor_node": {
            "ros__parameters": {
                "armed_on_start": True,
                "control_rate_hz": 50.0,
                "position_lower": list(arm.lower),
                "position_upper": list(arm.upper),
                "max_velocity": list(arm.max_velocity),
            }
        },
        "/**/sim_node": {
            "ros__parameters": {
                "image_width": image_width,
                "image_height": image_height,
                "camera_rate_hz": 30.0,
            }
        },
    }
    path.write_text(yaml.safe_dump(params))
    return arm


@dataclass
class BringupRun:
    """A finished bringup: its exit code and its whole stdout + stderr."""

    returncode: int | None = None
    output: str = ""


@contextmanager
def bringup(params: Path, duration_s: float) -> Iterator[BringupRun]:
    """``vla-ros bringup params --no-doctor`` for at most ``duration_s`` seconds while the block
    runs; stopped with SIGINT (killed after 30 s more) when the block exits, after which the
    yielded :class:`BringupRun` holds the exit code and the output."""
    args = ["bringup", str(params), "--duration", str(int(duration_s)), "--log-level", "warn", "--no-doctor"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vla_ros.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = BringupRun()
    try:
        yield run
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        run.returncode, run.output = proc.returncode, out


def publish_instruction(ros: Any, chunks: Any, instruction: Any, text: str) -> None:
    """After the first chunk, publish ``text`` three times on ``instruction`` (the same task
    again: one note all the same), then wait for three more chunks (several observations)."""
    from std_msgs.msg import String

    chunks.wait_for(1, timeout=60)
    ros.wait_for_subscribers(instruction, 1, timeout=20)
    for _ in range(3):
        instruction.publish(String(data=text))
    n = len(chunks.messages)
    chunks.wait_for(n + 3, timeout=30)


def assert_in_limits(commands: Iterable[Any], arm: SimArmConfig) -> None:
    """Every ``JointState`` command's positions lie in the arm's limits (to 1e-9 rad)."""
    for cmd in list(commands):
        for q, lo, hi in zip(cmd.position, arm.lower, arm.upper):
            assert lo - 1e-9 <= q <= hi + 1e-9
