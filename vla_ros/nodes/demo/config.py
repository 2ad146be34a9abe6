"""The demo's settings: its parameter YAML, the task and its card, the executor's chunk mode.

``config/demo.yaml`` (the source tree's, else the installed share folder's) is read as rcl reads
it, the policy card resolved to an absolute path (:func:`vla_ros.sim.cards.resolve_card`) and the
command line's choices written in (``--mode`` -> ``executor_node.mode``); the result goes to a
private file handed to rcl as ``--params-file``, exactly as ``vla-ros bringup`` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vla_ros.sim.cards import BUNDLED_CARD, PACKAGE_ROOT, resolve_card
from vla_ros.sim.task import TASKS, ReachTask, make_task
from vla_ros.util.param_files import ParamsFileError, read_params

__all__ = [
    "BUNDLED_CARD",
    "DemoError",
    "DemoTask",
    "available_tasks",
    "chunk_modes",
    "default_card",
    "default_params_file",
    "node_section",
    "prepare_params",
    "resolve_card",
    "resolve_task",
]


class DemoError(RuntimeError):
    """The demo could not start or run; the message says how to fix it."""


@dataclass(frozen=True)
class DemoTask:
    """A task the demo runs: its name, the task object and the policy card it runs by default."""

    name: str
    model: ReachTask  # or a subclass (vla_ros.sim.task.TASKS)
    card: str  # a bundled card name (a folder of vla_ros/sim/bundled) or a card path


def _task_names() -> list[str]:
    return sorted(TASKS)


def default_card(task: str) -> str:
    """The bundled card for ``task``: the first bundled folder named ``sim_<task>...``, else the
    reach task's ACT card (every sim task is reaching for targets shown in the cameras)."""
    names = sorted(d.name for d in BUNDLED_CARD.parent.iterdir() if (d / "card.yaml").is_file())
    return next((n for n in names if n.startswith(f"sim_{task}")), BUNDLED_CARD.name)


def resolve_task(name: str) -> DemoTask:
    """The sim task called ``name`` (:data:`vla_ros.sim.task.TASKS`) and its default card.

    Raises :class:`DemoError` naming the known tasks for an unknown name.
    """
    if name not in TASKS:
        raise DemoError(f"no sim task {name!r}; choose one of {', '.join(_task_names())}")
    return DemoTask(name, make_task(name), default_card(name))


def available_tasks() -> list[str]:
    """The sim tasks' names."""
    return _task_names()


def chunk_modes() -> tuple[str, ...]:
    """The executor's chunk modes (its ``mode`` parameter's choices)."""
    from vla_ros.executor.params import SPECS

    return tuple(next(s for s in SPECS if s.name == "mode").choices)


def default_params_file() -> Path:
    """``config/demo.yaml`` from the source tree, else from the installed package's share folder."""
    candidates = [PACKAGE_ROOT.parent / "config" / "demo.yaml"]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("vla_ros")) / "config" / "demo.yaml")
    except Exception:  # ament_index missing or the package not installed: source tree only
        pass
    for path in candidates:
        if path.is_file():
            return path
    raise DemoError(
        f"no demo parameter file found (looked at {[str(c) for c in candidates]}); "
        "pass one with --params (see config/demo.yaml in the repository)"
    )


def node_section(data: dict[str, Any], node: str) -> dict[str, Any]:
    """The ``ros__parameters`` of ``node`` in a parameter YAML (created, keyed ``/**/<node>``)."""
    key = next((k for k in data if str(k).rstrip("/").rsplit("/", 1)[-1] == node), None)
    if key is None:
        key = f"/**/{node}"
        data[key] = {"ros__parameters": {}}
    if not isinstance(data[key], dict):
        raise DemoError(f"parameter file section {key!r} must be a mapping with ros__parameters")
    section = data[key].setdefault("ros__parameters", {})
    if not isinstance(section, dict):
        raise DemoError(f"{key}.ros__parameters must be a mapping of parameter names to values")
    return section


def prepare_params(
    params_file: Path,
    card: str | None,
    out_dir: Path,
    *,
    mode: str | None = None,
    modes: Sequence[str] = (),
) -> tuple[Path, dict[str, Any]]:
    """The demo YAML with the card resolved to an absolute path and ``mode`` written in.

    ``card`` None keeps the YAML's card. Returns (the written ``out_dir/demo_params.yaml``, the
    parsed data). Raises :class:`DemoError` naming the problem: a missing or invalid YAML, a card
    folder without ``card.yaml``, a ``mode`` not in ``modes`` (when given).
    """
    if not params_file.is_file():
        raise DemoError(f"parameter file {str(params_file)!r} does not exist; pass --params config/demo.yaml")
    try:
        read_params(params_file)  # checked as rcl reads it: size first, UTF-8, aliases, depth
        data = yaml.safe_load(params_file.read_text())
    except ParamsFileError as exc:
        raise DemoError(str(exc)) from None
    except yaml.YAMLError as exc:
        raise DemoError(f"parameter file {str(params_file)!r} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise DemoError(f"parameter file {str(params_file)!r} must map node names to ros__parameters")
    policy = node_section(data, "policy_node")
    path = resolve_card(card if card is not None else str(policy.get("card", "")))
    if not (path / "card.yaml").is_file():
        raise DemoError(
            f"policy card {str(path)!r} not found (no card.yaml there); the bundled card lives in "
            f"{BUNDLED_CARD} (rebuild it with: python -m vla_ros.sim.train_bundled)"
        )
    policy["card"] = str(path)
    if mode is not None:
        if modes and mode not in modes:
            raise DemoError(f"--mode {mode!r} is not an executor chunk mode; use one of {', '.join(modes)}")
        node_section(data, "executor_node")["mode"] = mode
    out = out_dir / "demo_params.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out, data
