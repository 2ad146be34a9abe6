"""Node executables given a bad parameter: one FATAL line naming it and its value, exit 1, no traceback.

Each case runs the executable as ``ros2 run`` does (the installed launcher is
``sys.exit(main())``) in a subprocess, with the bad value on the command line.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros

CASES = [
    # node, --ros-args -p ..., what the line must say
    ("policy_node", "rate_hz:=-5.0", "parameter rate_hz=-5.0: Parameter rate_hz out of range"),
    ("policy_node", "backend:=foo", "parameter backend='foo' is not one of ['onnxruntime', 'torch',"),
    ("policy_node", "image_staleness_s:=soon", "parameter image_staleness_s='soon' is a STRING; it must"),
    ("executor_node", "control_rate_hz:=-1.0", "parameter control_rate_hz=-1.0: Parameter control_rate_hz"),
    ("doctor_node", "period_s:=-3.0", "parameter period_s=-3.0: Parameter period_s out of range"),
    ("sim_node", "camera_rate_hz:=-2.0", "parameter camera_rate_hz=-2.0: Parameter camera_rate_hz out of"),
]
IDS = [f"{node}-{param.split(':')[0]}" for node, param, _ in CASES]


def _run(node: str, *ros_args: str) -> subprocess.CompletedProcess[str]:
    launcher = f"import sys; from vla_ros.nodes.{node} import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", launcher, "--ros-args", *ros_args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("node", "param", "says"), CASES, ids=IDS)
def test_bad_parameter_is_one_line_and_exit_1(node: str, param: str, says: str) -> None:
    proc = _run(node, "-p", param)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    fatal = [line for line in proc.stderr.splitlines() if "[FATAL]" in line]
    assert len(fatal) == 1, proc.stderr
    assert f"[{node}]: cannot start: " in fatal[0], fatal[0]
    assert says in fatal[0], fatal[0]


def test_unparsable_ros_args_is_one_line_and_exit_1() -> None:
    proc = _run("sim_node", "-p", "camera_rate_hz")  # no ':=': rcl cannot parse the rule
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    fatal = [line for line in proc.stderr.splitlines() if "[FATAL]" in line]
    assert len(fatal) == 1 and "[sim_node]: cannot start:" in fatal[0], proc.stderr
    assert "-p camera_rate_hz" in fatal[0], fatal[0]


def test_ctrl_c_stops_the_executor_without_a_traceback() -> None:
    import signal
    import time

    launcher = "import sys; from vla_ros.nodes.executor_node import main; sys.exit(main())"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            launcher,
            "--ros-args",
            "-p",
            "joint_names:=[a]",
            "-p",
            "allow_unlimited:=true",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "executor_node" not in line and time.monotonic() < deadline:  # its start-up line: spinning
            line = proc.stderr.readline()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
