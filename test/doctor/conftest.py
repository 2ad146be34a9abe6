"""Fixtures for the doctor tests: a real colcon-built workspace, fake system roots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_XML = """<?xml version="1.0"?>
<package format="3">
  <name>vla_ros</name><version>0.0.1</version><description>doctor test package</description>
  <maintainer email="test@example.com">test</maintainer><license>Apache-2.0</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>ament_cmake_python</buildtool_depend>
  <export><build_type>ament_cmake</build_type></export>
</package>
"""
CMAKELISTS = """cmake_minimum_required(VERSION 3.16)
project(vla_ros NONE)
find_package(ament_cmake REQUIRED)
find_package(ament_cmake_python REQUIRED)
_ament_cmake_python_get_python_install_dir()
install(DIRECTORY vla_ros/ DESTINATION ${PYTHON_INSTALL_DIR}/${PROJECT_NAME}
  PATTERN "__pycache__" EXCLUDE PATTERN "*.pyc" EXCLUDE)
install(DIRECTORY msg config DESTINATION share/${PROJECT_NAME})
ament_package()
"""
OLD = 1_600_000_000  # sources are dated in the past so "touched" files are clearly newer


def build_env() -> dict[str, str]:
    """Environment in which colcon finds ament_cmake (a distro, or the ROS wheels' prefix)."""
    env = dict(os.environ)
    for var in ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH"):
        env[var] = os.pathsep.join([sys.prefix] + [p for p in env.get(var, "").split(os.pathsep) if p])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def colcon_build(ws: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run a real ``colcon build`` in ``ws``."""
    colcon = shutil.which("colcon", path=build_env()["PATH"])
    return subprocess.run(
        [
            colcon,
            "build",
            "--event-handlers",
            "console_direct-",
            "--cmake-args",
            f"-DPython3_EXECUTABLE={sys.executable}",
            "-DBUILD_TESTING=OFF",
            *extra,
        ],
        cwd=ws,
        env=build_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _write_sources(src: Path) -> None:
    (src / "vla_ros" / "doctor").mkdir(parents=True)
    (src / "msg").mkdir()
    (src / "config").mkdir()
    (src / "package.xml").write_text(PACKAGE_XML)
    (src / "CMakeLists.txt").write_text(CMAKELISTS)
    (src / "vla_ros" / "__init__.py").write_text('"""test package."""\n')
    (src / "vla_ros" / "doctor" / "__init__.py").write_text("")
    (src / "vla_ros" / "doctor" / "checks.py").write_text("def f():\n    return 1\n")
    (src / "msg" / "ActionChunk.msg").write_text("uint32 horizon\n")
    (src / "config" / "executor.yaml").write_text("control_rate_hz: 100\n")
    for p in src.rglob("*"):
        os.utime(p, (OLD, OLD))


@pytest.fixture(scope="session")
def built_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A colcon workspace ``ws/src/vla_ros`` built once per session with real colcon + CMake."""
    if shutil.which("colcon", path=build_env()["PATH"]) is None or shutil.which("cmake") is None:
        pytest.skip("colcon or cmake not available: cannot build a real workspace")
    ws = tmp_path_factory.mktemp("ws")
    _write_sources(ws / "src" / "vla_ros")
    proc = colcon_build(ws)
    if proc.returncode != 0:
        pytest.fail(
            f"colcon build of the test workspace failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return ws


@pytest.fixture
def workspace(built_workspace: Path, tmp_path: Path) -> Path:
    """A private copy of the built workspace (mtimes and symlinks preserved).

    Its build folder still names the original paths: tests that rebuild delete it first."""
    dst = tmp_path / "ws"
    shutil.copytree(built_workspace, dst, symlinks=True)
    return dst


@pytest.fixture(scope="session")
def exported_cards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real policy cards written once per session by ``vla_ros.export.export_policy``: ``act``
    (monolithic act_tiny) and ``split`` (flow_matching_tiny, prefix + step graphs)."""
    export = pytest.importorskip("vla_ros.export")
    root = tmp_path_factory.mktemp("cards")
    models = Path(__file__).resolve().parents[2] / "config" / "models"
    export.export_policy(models / "act_tiny.yaml", root / "act")
    export.export_policy(models / "flow_matching_tiny.yaml", root / "split", layout="split")
    return {"act": root / "act", "split": root / "split"}


@pytest.fixture
def card_copy(exported_cards: dict[str, Path], tmp_path: Path):
    """``card_copy(kind)``: a private copy of an exported card folder (``act`` or ``split``)."""

    def make(kind: str = "act") -> Path:
        dst = tmp_path / f"card_{kind}"
        shutil.copytree(exported_cards[kind], dst)
        return dst

    return make
