"""Who may import whom, read from the code's own imports (every ``import`` that can run, lazy ones
included; ``if TYPE_CHECKING:`` ones, for annotations only, are not).

The rules are docs/architecture.md's: imports run downward only; the runtime the robot runs
never imports the export tool; no two modules import each other (directly or in a ring); the
vocabulary (``vla_ros.contract``) imports nothing above it; only the nodes (and the doctor's ROS
probes) import rclpy at module level.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "vla_ros"

#: package -> the vla_ros packages it may import (its layer and below); docs/architecture.md
ALLOWED: dict[str, set[str]] = {
    "contract": set(),
    "util": {"contract"},
    "control": {"contract", "util"},
    "perception": {"contract", "util"},
    "spine": {"contract", "util", "control"},
    "runtime": {"contract", "util", "spine"},
    "export": {"contract", "util", "control", "spine", "runtime"},
    "policy": {"contract", "util", "control", "perception", "runtime"},
    "executor": {"contract", "util", "control"},
    "sim": {"contract", "util", "control", "spine", "runtime", "export", "perception", "policy", "executor"},
    "eval": {"contract", "util", "control", "perception", "runtime", "policy", "executor", "sim"},
    "dataset": {"contract", "util", "perception", "policy", "eval", "sim"},
    "doctor": {"contract", "util", "control", "runtime", "policy", "executor", "vla_ros"},
    "nodes": {
        *("contract", "util", "control", "perception", "runtime", "policy", "executor"),
        *("doctor", "sim", "eval", "vla_ros"),
    },
    "cli": {"vla_ros"},
}
#: modules that may import rclpy at module level (everything else imports without ROS)
ROS_MODULES = ("vla_ros.nodes.", "vla_ros.doctor.live_ros")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(target: str) -> str | None:
    """The vla_ros module an import names (``vla_ros.x.y.Name`` -> ``vla_ros.x.y``)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def imports_of(name: str) -> Iterator[tuple[str, int, bool]]:
    """``(imported vla_ros module, line, at module level)`` for every import in module ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = {id(n) for n in tree.body}
    # ``if TYPE_CHECKING:`` imports are for annotations only: they never run
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] or [base]
        for t in targets:
            if t.split(".")[0] == "rclpy":
                yield "rclpy", node.lineno, id(node) in top
            elif t.startswith("vla_ros"):
                mod = _resolve(t)
                if mod is not None and mod != name:
                    yield mod, node.lineno, id(node) in top


GRAPH: dict[str, set[str]] = {m: {t for t, _, _ in imports_of(m) if t != "rclpy"} for m in MODULES}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "vla_ros"


def rings(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_rules_see_every_package() -> None:
    packages = {package_of(m) for m in MODULES} - {"vla_ros"}
    assert packages <= set(ALLOWED), f"packages without a layer in ALLOWED: {packages - set(ALLOWED)}"
    assert len(MODULES) > 100 and sum(len(v) for v in GRAPH.values()) > 300  # the reader reads


def test_runtime_imports_nothing_from_export() -> None:
    bad = [
        f"{m}:{line} imports {t}"
        for m in MODULES
        if m.startswith("vla_ros.runtime")
        for t, line, _ in imports_of(m)
        if t.startswith("vla_ros.export")
    ]
    assert not bad, "the runtime the robot runs must not import the export tool:\n" + "\n".join(bad)


def test_no_two_modules_import_each_other() -> None:
    found = rings(GRAPH)
    assert not found, "modules that import each other (directly or in a ring):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_imports_run_downward() -> None:
    bad = []
    for m in MODULES:
        src = package_of(m)
        if src == "vla_ros":
            continue
        for t, line, _ in imports_of(m):
            if t == "rclpy":
                continue
            dst = package_of(t)
            if dst != src and dst not in ALLOWED[src]:
                bad.append(f"{m}:{line} imports {t} ({src} may import {sorted(ALLOWED[src])})")
    assert not bad, "imports that run upward:\n" + "\n".join(bad)


def test_only_nodes_import_rclpy_at_module_level() -> None:
    bad = [
        f"{m}:{line}"
        for m in MODULES
        if not m.startswith(ROS_MODULES)
        for t, line, top in imports_of(m)
        if t == "rclpy" and top
    ]
    assert not bad, "ROS-free modules importing rclpy at module level:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_the_ring_finder_finds_rings(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert rings(graph) == expected
