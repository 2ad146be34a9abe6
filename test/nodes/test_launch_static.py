"""launch/vla.launch.py, checked statically (``launch`` is not installable here).

The launch file is parsed with ``ast``: every Node's executable must exist in
``install/vla_ros/lib/vla_ros``, every parameter file it passes must exist (source and installed
copy), and every key in those files must be a parameter that the real node declares (the nodes
are constructed, with the YAML applied through ``--params-file`` as launch does).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.ros

REQUIRED_ARGS = {"params_file", "namespace", "use_sim_time", "log_level"}
NODE_CLASSES = {
    "policy_node": ("vla_ros.nodes.policy_node", "PolicyNode"),
    "executor_node": ("vla_ros.nodes.executor_node", "ExecutorNode"),
    "doctor_node": ("vla_ros.nodes.doctor_node", "DoctorNode"),
    "sim_node": ("vla_ros.nodes.sim_node", "SimNode"),
}
# start-up work that is irrelevant to which parameters exist
FAST_OVERRIDES = {"doctor_node": {"gpu": False, "live_s": 0.0, "period_s": 0.0}}


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
    return None


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


class LaunchModel:
    """What the launch file declares, evaluated statically."""

    def __init__(self, path: Path) -> None:
        tree = ast.parse(path.read_text(), filename=str(path))
        fn = next(
            n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
        )
        self.assigned: dict[str, ast.AST] = {}
        for stmt in ast.walk(fn):
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target = stmt.targets[0]
                if isinstance(target, ast.Name):
                    self.assigned[target.id] = stmt.value
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call)]
        self.arguments: dict[str, ast.Call] = {}
        for c in calls:
            if _call_name(c) == "DeclareLaunchArgument":
                self.arguments[self.const(c.args[0])] = c
        self.nodes = [c for c in calls if _call_name(c) == "Node"]

    def const(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        raise AssertionError(f"expected a literal, got {ast.dump(node)}")

    def resolve(self, node: ast.AST) -> Any:
        """A literal, ('share', relpath) for package-share paths, or a dict of inline params."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.resolve(self.assigned[node.id])
        if isinstance(node, ast.Dict):
            return {self.const(k): None for k in node.keys}
        name = _call_name(node)
        if name == "LaunchConfiguration":
            arg = self.arguments[self.const(node.args[0])]
            default = _kw(arg, "default_value")
            assert default is not None, f"launch argument {self.const(arg.args[0])} has no default"
            return self.resolve(default)
        if name == "PathJoinSubstitution":
            parts = node.args[0].elts
            assert _call_name(parts[0]) == "FindPackageShare"
            assert self.const(parts[0].args[0]) == "vla_ros"
            return ("share", "/".join(self.const(p) for p in parts[1:]))
        raise AssertionError(f"cannot evaluate {ast.dump(node)} statically")


@pytest.fixture(scope="module")
def launch(repo_root: Path) -> LaunchModel:
    return LaunchModel(repo_root / "launch" / "vla.launch.py")


def test_arguments_have_descriptions(launch: LaunchModel) -> None:
    assert set(launch.arguments) >= REQUIRED_ARGS
    for name, call in launch.arguments.items():
        desc = _kw(call, "description")
        assert desc is not None and len(launch.const(desc)) > 10, f"argument {name}: description"
        assert _kw(call, "default_value") is not None, f"argument {name}: default"


def test_executables_are_installed(launch: LaunchModel, repo_root: Path) -> None:
    lib = repo_root / "install" / "vla_ros" / "lib" / "vla_ros"
    assert lib.is_dir(), f"{lib} missing: run `make setup` (colcon build)"
    names = []
    for node in launch.nodes:
        exe = launch.const(_kw(node, "executable"))
        assert launch.const(_kw(node, "package")) == "vla_ros"
        assert launch.const(_kw(node, "name")) == exe
        path = lib / exe
        assert path.is_file() and os.access(path, os.X_OK), f"{path} is not an installed program"
        names.append(exe)
    assert {"policy_node", "executor_node"} <= set(names)


def _node_params(launch: LaunchModel) -> dict[str, tuple[list[str], set[str]]]:
    """node name -> (parameter files as share-relative paths, inline parameter names)."""
    out = {}
    for node in launch.nodes:
        files, inline = [], set()
        for item in _kw(node, "parameters").elts:
            value = launch.resolve(item)
            if isinstance(value, dict):
                inline |= set(value)
            else:
                assert isinstance(value, tuple) and value[0] == "share", value
                files.append(value[1])
        out[launch.const(_kw(node, "name"))] = (files, inline)
    return out


def test_parameter_files_exist_and_are_installed(launch: LaunchModel, repo_root: Path) -> None:
    share = repo_root / "install" / "vla_ros" / "share" / "vla_ros"
    for node, (files, _inline) in _node_params(launch).items():
        assert files, f"{node} gets no parameter file"
        for rel in files:
            src = repo_root / rel
            assert src.is_file(), f"{node}: {src} does not exist"
            installed = share / rel
            assert installed.is_file(), f"{installed} missing: run `make setup` to install it"
            assert installed.read_text() == src.read_text(), (
                f"{installed} differs from {src}: run `make setup` to reinstall"
            )


def _flatten(d: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in d.items():
        name = f"{prefix}{k}"
        keys += _flatten(v, f"{name}.") if isinstance(v, dict) else [name]
    return keys


def _sections(path: Path) -> dict[str, list[str]]:
    data = yaml.safe_load(path.read_text())
    return {str(key).rsplit("/", 1)[-1]: _flatten(body["ros__parameters"]) for key, body in data.items()}


def test_every_yaml_key_is_a_declared_parameter(launch: LaunchModel, repo_root: Path, tmp_path: Path) -> None:
    import importlib

    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter
    from test_policy_support import make_card

    card = make_card(tmp_path / "card")
    checked = []
    for node_name, (files, inline) in _node_params(launch).items():
        module, cls = NODE_CLASSES[node_name]
        for rel in files:
            path = repo_root / rel
            sections = _sections(path)
            if node_name not in sections:
                continue
            context = Context()
            # the YAML is applied exactly as launch applies it: --params-file
            rclpy.init(context=context, args=["x", "--ros-args", "--params-file", str(path)])
            overrides = {**FAST_OVERRIDES.get(node_name, {})}
            if node_name == "policy_node":
                overrides.update(card=str(card), warmup=0)
            node = None
            try:
                node = getattr(importlib.import_module(module), cls)(
                    context=context,
                    parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
                )
                declared = set(node.list_parameters([], 0).names)
            finally:
                if node is not None:
                    node.destroy_node()
                rclpy.shutdown(context=context)
            unknown = sorted(set(sections[node_name]) - declared)
            assert not unknown, f"{path} [{node_name}] sets undeclared parameters {unknown}"
            assert inline <= declared, f"launch passes undeclared {inline - declared}"
            checked.append(node_name)
    assert {"policy_node", "executor_node"} <= set(checked), checked
