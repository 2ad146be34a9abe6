"""launch/vla.launch.py, checked statically (``launch`` is not installable here).

The launch file is parsed with ``ast``: every Node's executable must exist in
``install/vla_ros/lib/vla_ros``, every parameter file it passes must exist (source and installed
copy), and every key in those files must be a parameter that the real node declares (the nodes
are constructed, with the YAML applied through ``--params-file`` as launch does). The
``robot:=NAME`` argument is evaluated for every NAME: it must pick config/robots/NAME.yaml for the
three nodes and remap the executor's output to a topic of the kind that file's output_type
publishes; ``card:=`` must reach policy_node and doctor_node (substitutions and conditions are
evaluated here as launch evaluates them).
"""

from __future__ import annotations

import ast
import math
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
SHARE = "@vla_ros_share"  # FindPackageShare("vla_ros") in evaluated text
# executor output_type -> (the executor's output topic, the suffix of a controller topic taking it)
OUTPUT_TOPICS = {
    "float64_multi_array": ("commands", "/commands"),
    "joint_trajectory": ("joint_trajectory", "/joint_trajectory"),
}


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
        for stmt in [*tree.body, *ast.walk(fn)]:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                target = stmt.targets[0]
                if isinstance(target, ast.Name):
                    self.assigned[target.id] = stmt.value
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call)]
        self.arguments: dict[str, ast.Call] = {}
        for c in calls:
            if _call_name(c) == "DeclareLaunchArgument" and isinstance(c.args[0], ast.Constant):
                self.arguments[self.const(c.args[0])] = c
        # the ARGUMENTS table, name -> (default, choices, description), declared in a loop
        table = self.assigned.get("ARGUMENTS")
        for key, entry in zip(table.keys, table.values) if table is not None else ():
            words = [
                ast.keyword(k, v) for k, v in zip(("default_value", "choices", "description"), entry.elts)
            ]
            self.arguments[self.const(key)] = ast.Call(ast.Name("DeclareLaunchArgument"), [key], words)
        self.nodes = [self._expanded(c) for c in calls if _call_name(c) == "Node"]

    def _expanded(self, call: ast.Call) -> ast.Call:
        """``call`` with its ``**shared`` keywords (a dict literal assigned to a name) written out."""
        words = []
        for k in call.keywords:
            if k.arg is None:
                shared = self.assigned[k.value.id]
                assert isinstance(shared, ast.Dict), ast.dump(shared)
                words += [ast.keyword(self.const(key), v) for key, v in zip(shared.keys, shared.values)]
            else:
                words.append(k)
        return ast.Call(call.func, call.args, words)

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
        if name == "PythonExpression":
            return _share_path(self.text(node, {}))
        raise AssertionError(f"cannot evaluate {ast.dump(node)} statically")

    def text(self, node: ast.AST, args: dict[str, str]) -> str:
        """What a substitution performs to with launch arguments ``args`` (others: defaults)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.text(self.assigned[node.id], args)
        if isinstance(node, ast.List | ast.Tuple):
            return "".join(self.text(e, args) for e in node.elts)
        name = _call_name(node)
        if name == "LaunchConfiguration":
            arg = self.const(node.args[0])
            return args[arg] if arg in args else self.text(_kw(self.arguments[arg], "default_value"), args)
        if name == "FindPackageShare":
            assert self.const(node.args[0]) == "vla_ros"
            return SHARE
        if name == "PathJoinSubstitution":
            return "/".join(self.text(p, args) for p in node.args[0].elts)
        if name == "PythonExpression":  # launch: str(eval(expression)), math names only
            return str(eval(self.text(node.args[0], args), {}, vars(math)))
        if name == "ParameterValue":
            return self.text(node.args[0], args)
        if name == "repr":
            return repr(ast.literal_eval(self.assigned[node.args[0].id]))
        raise AssertionError(f"cannot evaluate {ast.dump(node)} statically")

    def active_nodes(self, args: dict[str, str]) -> list[ast.Call]:
        """The Node actions whose condition holds with launch arguments ``args``."""
        active = []
        for node in self.nodes:
            cond = _kw(node, "condition")
            if cond is not None:
                value = self.text(cond.args[0], args).lower() in ("true", "1")
                if _call_name(cond) == "UnlessCondition":
                    value = not value
                else:
                    assert _call_name(cond) == "IfCondition", ast.dump(cond)
                if not value:
                    continue
            active.append(node)
        return active


def _share_path(text: str) -> tuple[str, str]:
    assert text.startswith(SHARE + "/"), f"{text!r} is not in the vla_ros share folder"
    return ("share", text[len(SHARE) + 1 :])


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
    from support.policy_card import make_card

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


def _evaluated(launch: LaunchModel, node: ast.Call, args: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """A Node's (parameter files as share-relative paths, inline parameters) under ``args``."""
    files, inline = [], {}
    for item in _kw(node, "parameters").elts:
        item = launch.assigned.get(item.id, item) if isinstance(item, ast.Name) else item
        if isinstance(item, ast.Dict):
            inline.update({launch.const(k): launch.text(v, args) for k, v in zip(item.keys, item.values)})
        else:
            files.append(_share_path(launch.text(item, args))[1])
    return files, inline


def _launched(launch: LaunchModel, args: dict[str, str]) -> dict[str, ast.Call]:
    active = launch.active_nodes(args)
    names = [launch.const(_kw(n, "name")) for n in active]
    assert len(names) == len(set(names)), f"{args}: a node is launched twice: {names}"
    return dict(zip(names, active))


def _remaps(launch: LaunchModel, node: ast.Call, args: dict[str, str]) -> dict[str, str]:
    rules = _kw(node, "remappings")
    return (
        {}
        if rules is None
        else {launch.text(a, args): launch.text(b, args) for a, b in (r.elts for r in rules.elts)}
    )


def test_robot_argument_picks_the_robot_file_and_its_controller_topic(
    launch: LaunchModel, repo_root: Path
) -> None:
    robots = ast.literal_eval(launch.assigned["ROBOT_COMMAND_TOPICS"])
    files = {p.stem for p in (repo_root / "config" / "robots").glob("*.yaml")}
    assert set(robots) == files == {"so101", "aloha", "fr3", "ur5e"}
    choices = _kw(launch.arguments["robot"], "choices").elts
    assert launch.const(choices[0]) == "" and isinstance(choices[1], ast.Starred)
    assert launch.text(_kw(launch.arguments["robot"], "default_value"), {}) == ""
    # config/ is installed recursively, so config/robots/ reaches the share folder with `make setup`
    cmake = (repo_root / "CMakeLists.txt").read_text()
    assert "foreach(dir launch config)" in cmake and "install(DIRECTORY ${dir} DESTINATION share" in cmake

    for robot, topic in robots.items():
        rel = f"config/robots/{robot}.yaml"
        executor = yaml.safe_load((repo_root / rel).read_text())["/**/executor_node"]["ros__parameters"]
        output, suffix = OUTPUT_TOPICS[executor["output_type"]]
        assert topic.endswith(suffix), f"{robot}: {topic} does not take {executor['output_type']}"
        for card in ("", "/cards/act_so101"):
            args = {"robot": robot, "card": card}
            nodes = _launched(launch, args)
            assert set(nodes) == {"policy_node", "executor_node", "doctor_node"}, (args, set(nodes))
            for name, node in nodes.items():
                files, inline = _evaluated(launch, node, args)
                assert files == [rel], (args, name, files)
                want = {"card": card} if card and name != "executor_node" else {}
                assert {k: v for k, v in inline.items() if k != "use_sim_time"} == want, (args, name)
            assert _remaps(launch, nodes["executor_node"], args)[output] == topic
        # command_topic:= overrides the robot's controller topic
        args = {"robot": robot, "command_topic": "/arm/commands"}
        assert _remaps(launch, _launched(launch, args)["executor_node"], args)[output] == "/arm/commands"


def test_without_robot_the_params_file_applies_unremapped(launch: LaunchModel) -> None:
    for args in ({}, {"params_file": "@vla_ros_share/config/demo.yaml", "card": "/c"}):
        nodes = _launched(launch, args)
        assert set(nodes) == {"policy_node", "executor_node", "doctor_node"}
        expected = "config/demo.yaml" if args else "config/vla.yaml"
        for name, node in nodes.items():
            files, inline = _evaluated(launch, node, args)
            assert files == [expected], (name, files)
            card = None if name == "executor_node" else args.get("card")
            assert inline.get("card") == card, (name, inline)
        remaps = _remaps(launch, nodes["executor_node"], args)
        assert remaps == {"commands": "commands", "joint_trajectory": "joint_trajectory"}
    assert "doctor_node" not in _launched(launch, {"doctor": "false", "card": "/c"})
