"""The workspace checks' fixes name a command that works where the user is: ``make setup`` in this
project's Makefile setup (colcon is on PATH only inside ./env.sh there), ``colcon build`` after
sourcing ROS 2 elsewhere; and ``--workspace DIR`` without a source tree says what DIR holds."""

from __future__ import annotations

import shutil
from pathlib import Path

from vla_ros.doctor import workspace as w
from vla_ros.doctor.report import DoctorOptions, run_checks
from vla_ros.doctor.result import DoctorContext, Status

REPO = Path(__file__).resolve().parents[2]


def _ctx(path: str = "") -> DoctorContext:
    return DoctorContext(env={"PATH": path})


def _checkout(root: Path) -> Path:
    """A copy of this project's setup files and package.xml, with a source file, never built."""
    for name in ("env.sh", "Makefile", "scripts/setup.sh", "package.xml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    (root / "vla_ros").mkdir()
    (root / "vla_ros" / "__init__.py").write_text("")
    return root


def test_this_projects_checkout_is_built_with_make_setup(tmp_path: Path) -> None:
    root = _checkout(tmp_path / "vla_ros_checkout")
    ws = w.find_workspace(_ctx(), root)
    assert ws.source == root.resolve() and w.wheels_setup(ws.root)
    res = w.check_stale(_ctx(), ws)
    assert res.status is Status.FAIL and res.fix == f"cd {root.resolve()} && make setup"
    assert w.build_command(_ctx(), ws, clean=True) == (
        f"rm -rf {root.resolve()}/build/vla_ros && cd {root.resolve()} && make setup"
    )
    index = w.check_ament_index(_ctx(), ws, prefixes=[])
    assert (
        index.fix
        == f"run it through {root.resolve()}/env.sh (build it first: cd {root.resolve()} && make setup)"
    )
    assert w.build_command(_ctx(), w.find_workspace(_ctx(), REPO)) == f"cd {REPO} && make setup"


def test_a_colcon_workspace_is_built_with_colcon_after_sourcing_ros(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    pkg = _checkout(root / "src" / "vla_ros")
    (pkg / "env.sh").unlink()  # a plain colcon workspace: the package under src/, no Makefile setup
    ws = w.find_workspace(_ctx(), root)
    assert ws.source == pkg.resolve() and not w.wheels_setup(ws.root)
    want = f"cd {root.resolve()} && colcon build --packages-select vla_ros"
    assert (
        w.check_stale(_ctx(), ws).fix
        == f"source /opt/ros/<distro>/setup.bash (colcon is not on PATH), then {want}"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "colcon").write_text("#!/bin/sh\n")
    (bin_dir / "colcon").chmod(0o755)
    assert w.check_stale(_ctx(str(bin_dir)), ws).fix == want


def test_a_given_workspace_without_sources_says_what_it_holds(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    opts = DoctorOptions(workspace=empty, groups=("workspace",))
    by_id = {r.id: r for r in run_checks(DoctorContext(env={}), opts)}
    stale = by_id["workspace.stale"]
    assert stale.status is Status.SKIP and "--workspace" not in stale.message
    assert stale.message == (
        f"no vla_ros source tree in {empty.resolve()}: no package.xml naming vla_ros there or under "
        "src/ (and no build/vla_ros naming one); nor a build, install or log of vla_ros"
    )
    installed = tmp_path / "installed"
    (installed / "install" / "vla_ros" / "share" / "vla_ros").mkdir(parents=True)
    (installed / "log").mkdir()
    res = w.check_stale(_ctx(), w.find_workspace(_ctx(), installed))
    assert res.message.endswith("; it holds an install of vla_ros, a colcon log/"), res.message
    # nothing located at all (no --workspace, nothing sourced): then --workspace is the advice
    assert w.check_stale(_ctx(), None).message == "no vla_ros source tree found (use --workspace DIR)"
