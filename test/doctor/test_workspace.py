"""Workspace checks against a real colcon-built workspace whose sources change after the build."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from conftest import colcon_build

from vla_ros.doctor import workspace as w
from vla_ros.doctor.result import CheckResult, DoctorContext, Status


def _ctx(*prefixes: Path) -> DoctorContext:
    return DoctorContext(env={"AMENT_PREFIX_PATH": os.pathsep.join(map(str, prefixes))})


def _touch(p: Path) -> None:
    now = time.time() + 5
    os.utime(p, (now, now))


def _stale_after_editing(workspace: Path, text: str | None = None) -> CheckResult:
    """check_stale after touching the built source vla_ros/doctor/checks.py (rewritten to ``text``)."""
    f = workspace / "src" / "vla_ros" / "vla_ros" / "doctor" / "checks.py"
    if text is not None:
        f.write_text(text)
    _touch(f)
    return w.check_stale(_ctx(), w.find_workspace(_ctx(), workspace))


def test_fresh_build_is_clean(workspace: Path) -> None:
    ctx = _ctx(workspace / "install" / "vla_ros")
    ws = w.find_workspace(ctx, workspace)
    assert ws.source == workspace / "src" / "vla_ros"
    assert ws.install == workspace / "install" / "vla_ros"
    for check in (w.check_stale, w.check_symlink_install, w.check_colcon_log, w.check_ament_index):
        res = check(ctx, ws)
        assert res.status is Status.PASS, res
    assert w.check_underlay(ctx, ws).status is Status.PASS


def test_workspace_found_from_the_sourced_install(workspace: Path) -> None:
    ctx = _ctx(workspace / "install" / "vla_ros")
    ws = w.find_workspace(ctx)
    assert ws is not None and ws.root == workspace.resolve()
    assert ws.source == (workspace / "src" / "vla_ros").resolve()


def test_touched_source_warns_and_names_the_file(workspace: Path) -> None:
    res = _stale_after_editing(workspace)
    assert res.status is Status.WARN
    assert "vla_ros/doctor/checks.py" in res.message
    assert res.details["touched_only"] == ["vla_ros/doctor/checks.py"]
    assert "colcon build" in res.fix


def test_edited_source_fails_and_names_the_file(workspace: Path) -> None:
    res = _stale_after_editing(workspace, "def f():\n    return 2\n")
    assert res.status is Status.FAIL
    assert "vla_ros/doctor/checks.py" in res.message


def test_comment_only_edit_is_not_a_code_change(workspace: Path) -> None:
    res = _stale_after_editing(workspace, "def f():  # a comment\n    return 1\n")
    assert res.status is Status.WARN and res.details["touched_only"]


def test_new_source_file_and_changed_msg_and_cmake(workspace: Path) -> None:
    src = workspace / "src" / "vla_ros"
    (src / "vla_ros" / "doctor" / "new_check.py").write_text("X = 1\n")
    (src / "msg" / "ActionChunk.msg").write_text("uint32 horizon\nuint32 dim\n")
    _touch(src / "msg" / "ActionChunk.msg")
    _touch(src / "CMakeLists.txt")
    res = w.check_stale(_ctx(), w.find_workspace(_ctx(), workspace))
    assert res.status is Status.FAIL
    assert "vla_ros/doctor/new_check.py" in res.details["new"]
    assert "msg/ActionChunk.msg" in res.details["changed"]
    assert "CMakeLists.txt" in res.details["changed"]


def _fresh_build(workspace: Path, *extra: str) -> None:
    """The copy's build folder points at the original workspace: build this copy from scratch."""
    shutil.rmtree(workspace / "build")
    shutil.rmtree(workspace / "install")
    proc = colcon_build(workspace, extra)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_rebuild_clears_stale(workspace: Path) -> None:
    _fresh_build(workspace)
    f = workspace / "src" / "vla_ros" / "vla_ros" / "doctor" / "checks.py"
    f.write_text("def f():\n    return 3\n")
    assert w.check_stale(_ctx(), w.find_workspace(_ctx(), workspace)).status is Status.FAIL
    proc = colcon_build(workspace)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert w.check_stale(_ctx(), w.find_workspace(_ctx(), workspace)).status is Status.PASS


def test_deleted_source_leaves_an_installed_orphan(workspace: Path) -> None:
    (workspace / "src" / "vla_ros" / "vla_ros" / "doctor" / "checks.py").unlink()
    res = w.check_stale(_ctx(), w.find_workspace(_ctx(), workspace))
    assert res.status is Status.WARN
    assert res.details["installed_without_source"] == ["vla_ros/doctor/checks.py"]


def test_not_built(tmp_path: Path, workspace: Path) -> None:
    shutil.rmtree(workspace / "install")
    res = w.check_stale(_ctx(), w.find_workspace(_ctx(), workspace))
    assert res.status is Status.FAIL and "colcon build" in res.fix


def test_ament_index_not_sourced_and_wrong_install(workspace: Path, tmp_path: Path) -> None:
    ws = w.find_workspace(_ctx(), workspace)
    res = w.check_ament_index(_ctx(), ws)
    assert res.status is Status.FAIL and "setup.bash" in res.fix
    other = tmp_path / "other_ws" / "install" / "vla_ros"
    shutil.copytree(workspace / "install" / "vla_ros", other, symlinks=True)
    res = w.check_ament_index(_ctx(other, workspace / "install" / "vla_ros"), ws)
    assert res.status is Status.FAIL and str(other) in res.message


def test_underlay_shadowing(workspace: Path, tmp_path: Path) -> None:
    ours = workspace / "install" / "vla_ros"
    underlay = tmp_path / "underlay" / "install" / "vla_ros"
    shutil.copytree(ours, underlay, symlinks=True)
    ws = w.find_workspace(_ctx(), workspace)
    ahead = w.check_underlay(_ctx(underlay, ours), ws)
    assert ahead.status is Status.FAIL and str(underlay) in ahead.message
    behind = w.check_underlay(_ctx(ours, underlay), ws)
    assert behind.status is Status.WARN and str(underlay) in behind.message


def test_python_imports_a_foreign_copy(workspace: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "site-packages" / "vla_ros" / "__init__.py"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("")
    ours = workspace / "install" / "vla_ros"
    ws = w.find_workspace(_ctx(ours), workspace)
    res = w.check_underlay(_ctx(ours), ws, module_file=str(foreign))
    assert res.status is Status.WARN and "pip uninstall" in res.fix
    installed = ws.python_dir / "__init__.py"
    assert w.check_underlay(_ctx(ours), ws, str(installed)).status is Status.PASS


def test_symlink_install_mixed_and_broken(workspace: Path) -> None:
    ws = w.find_workspace(_ctx(), workspace)
    installed = ws.python_dir / "doctor" / "checks.py"
    installed.unlink()
    installed.symlink_to(ws.source / "vla_ros" / "doctor" / "checks.py")
    mixed = w.check_symlink_install(_ctx(), ws)
    assert mixed.status is Status.WARN and "mixed" in mixed.message
    (ws.source / "vla_ros" / "doctor" / "checks.py").unlink()
    broken = w.check_symlink_install(_ctx(), ws)
    assert broken.status is Status.FAIL and "doctor/checks.py" in broken.message


def test_real_symlink_install_is_consistent(workspace: Path) -> None:
    _fresh_build(workspace, "-DAMENT_CMAKE_SYMLINK_INSTALL=1")
    ws = w.find_workspace(_ctx(), workspace)
    res = w.check_symlink_install(_ctx(), ws)
    assert res.status is Status.PASS and res.details["symlinks"] > 0, res
    # an edited source is live through the symlink: not stale
    f = ws.source / "vla_ros" / "doctor" / "checks.py"
    f.write_text("def f():\n    return 5\n")
    assert w.check_stale(_ctx(), ws).details["changed"] == []


def test_failed_colcon_build_is_reported(workspace: Path) -> None:
    shutil.rmtree(workspace / "build")
    cml = workspace / "src" / "vla_ros" / "CMakeLists.txt"
    cml.write_text(cml.read_text().replace("ament_package()", 'message(FATAL_ERROR "boom")'))
    proc = colcon_build(workspace)
    assert proc.returncode != 0
    res = w.check_colcon_log(_ctx(), w.find_workspace(_ctx(), workspace))
    assert res.status is Status.FAIL
    assert res.details["failed"] == {"vla_ros": "1"}
    assert "stdout_stderr.log" in res.fix
