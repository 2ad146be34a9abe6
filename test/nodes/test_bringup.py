"""``vla-ros bringup PARAMS.yaml``: node selection, ROS arguments, and a real end-to-end run."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vla_ros.nodes.bringup import (
    BringupError,
    add_arguments,
    ros_arguments,
    run,
    select_nodes,
    yaml_sections,
)

SIM_JOINTS = tuple(f"joint_{i}" for i in range(1, 7))


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_sections_of_the_shipped_yaml(repo_root: Path) -> None:
    sections = yaml_sections(repo_root / "config" / "vla.yaml")
    assert sections == {"policy_node", "executor_node", "doctor_node"}
    assert select_nodes(sections) == ["policy_node", "executor_node", "doctor_node"]
    assert select_nodes(sections, doctor=False) == ["policy_node", "executor_node"]
    assert select_nodes(sections, sim=True)[0] == "sim_node"
    with_sim = sections | {"sim_node"}
    assert select_nodes(with_sim)[0] == "sim_node"
    assert "sim_node" not in select_nodes(with_sim, sim=False)


def test_bad_parameter_files(tmp_path: Path) -> None:
    with pytest.raises(BringupError, match="does not exist"):
        yaml_sections(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy_node:\n  card: x\n")
    with pytest.raises(BringupError, match="'policy_node' has no 'ros__parameters'"):
        yaml_sections(bad)
    bad.write_text("[1, 2]\n")
    with pytest.raises(BringupError, match="must map node names"):
        yaml_sections(bad)
    bad.write_text("a: [\n")
    with pytest.raises(BringupError, match="not valid YAML"):
        yaml_sections(bad)
    assert run(_args(str(tmp_path / "nope.yaml"))) == 1


def test_ros_arguments() -> None:
    args = ros_arguments("/p.yaml", namespace="robot1", use_sim_time=True, log_level="warn")
    assert args[1:] == [
        "--ros-args",
        "--params-file",
        "/p.yaml",
        "-r",
        "__ns:=/robot1",
        "-p",
        "use_sim_time:=true",
        "--log-level",
        "warn",
    ]
    assert "-r" not in ros_arguments("/p.yaml")


@pytest.mark.ros
def test_a_node_that_fails_to_start_is_reported(tmp_path: Path, capsys) -> None:
    params = tmp_path / "p.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                # a configuration error (a missing card FILE is not one: the node waits for it)
                "/**/policy_node": {"ros__parameters": {"card": ""}},
            }
        )
    )
    assert run(_args(str(params), "--no-doctor")) == 1
    err = capsys.readouterr().err
    assert "policy_node failed to start" in err and "parameter 'card' is empty" in err


@pytest.mark.ros
def test_bringup_with_sim_end_to_end(ros, tmp_path: Path) -> None:
    """sim_node + policy_node + executor_node in one process: chunks and commands flow; Ctrl-C."""
    from sensor_msgs.msg import JointState
    from support.policy_card import make_card

    from vla_ros.contract.card import PolicyCard
    from vla_ros.msg import ActionChunk
    from vla_ros.sim.robot import SimArmConfig

    card = make_card(
        tmp_path / "card",
        cameras=("front", "wrist"),
        state_joints=SIM_JOINTS,
        action_joints=SIM_JOINTS,
        nan_gate=False,
    )
    params = tmp_path / "bringup.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "/**/policy_node": {"ros__parameters": {"card": str(card), "warmup": 0, "rate_hz": 20.0}},
                "/**/executor_node": {
                    "ros__parameters": {
                        "armed_on_start": True,
                        "control_rate_hz": 50.0,
                        # the simulated arm's limits (the executor arms only with limits)
                        "position_lower": list(SimArmConfig().lower),
                        "position_upper": list(SimArmConfig().upper),
                        "max_velocity": list(SimArmConfig().max_velocity),
                    }
                },
                "/**/sim_node": {
                    "ros__parameters": {"image_width": 64, "image_height": 48, "camera_rate_hz": 30.0}
                },
            }
        )
    )
    chunks = ros.subscribe("/vla/action_chunk", ActionChunk)
    commands = ros.subscribe("/vla/joint_command", JointState)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vla_ros.cli",
            "bringup",
            str(params),
            "--duration",
            "60",
            "--log-level",
            "warn",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        chunk = chunks.wait_for(1, timeout=40)[0]
        command = commands.wait_for(1, timeout=20)[0]
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean shutdown, exit code 0
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert chunk.policy_id == PolicyCard.load(card).policy_id
    assert list(chunk.joint_names) == list(SIM_JOINTS)
    assert list(command.name) == list(SIM_JOINTS)
