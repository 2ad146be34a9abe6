"""`make setup` on a bad machine: a clear message naming what is missing and the fix, no traceback.

Each test runs the real scripts/setup.sh with PATH reduced to a folder holding only the tools the
situation allows, so the missing tool is really missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bin_with(tmp_path: Path, tools: list[str], fakes: dict[str, str] | None = None) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ["dirname", *tools]:
        real = shutil.which(tool)
        assert real, f"test machine lacks {tool}"
        (bindir / tool).symlink_to(real)
    for name, script in (fakes or {}).items():
        path = bindir / name
        path.write_text("#!/bin/bash\n" + script)
        path.chmod(0o755)
    return bindir


def _run_setup(tmp_path: Path, bindir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "VLA_ROS_", "AMENT"))}
    env.update(PATH=str(bindir), VLA_ROS_VENV=str(tmp_path / "venv"))
    return subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "setup.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_clear_failure(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "ERROR:" in proc.stderr and "fix:" in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_no_cmake(tmp_path):
    proc = _run_setup(tmp_path, _bin_with(tmp_path, ["cc", "c++"]))
    _assert_clear_failure(proc, "CMake", "apt-get install cmake")


def test_no_compiler(tmp_path):
    proc = _run_setup(tmp_path, _bin_with(tmp_path, ["cmake"]))
    _assert_clear_failure(proc, "C compiler", "build-essential")


def test_python_too_old(tmp_path):
    fake_py39 = (
        'case "$*" in *version_info*) echo False ;; -V|--version) echo "Python 3.9.18" ;; *) exit 1 ;; esac\n'
    )
    bindir = _bin_with(tmp_path, ["cmake", "cc", "c++"], {"python3": fake_py39})
    proc = _run_setup(tmp_path, bindir)
    _assert_clear_failure(proc, "CPython 3.11", "Python 3.9.18", "VLA_ROS_PYTHON")
    assert not (tmp_path / "venv").exists()


def test_no_python_at_all(tmp_path):
    proc = _run_setup(tmp_path, _bin_with(tmp_path, ["cmake", "cc", "c++"]))
    _assert_clear_failure(proc, "no python3")
