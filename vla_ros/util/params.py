"""Parameter specs and ROS 2 parameter YAML files, without ROS.

:class:`ParamSpec` is one parameter (name, default, description, range, choices, read-only). The
nodes declare their specs through :func:`vla_ros.nodes.params.declare_parameters`; offline tools
(``vla-ros eval``, ``vla-ros tune``) read the very same YAML with :func:`node_section` and
validate it against the very same specs with :func:`resolve`, so a key that the robot would
reject is rejected offline too, with the same message.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vla_ros.util.param_files import (
    ParamsFileError,
    fully_qualified_name,
    merged_params,
    read_params,
    section_node,
)

__all__ = [
    "TYPES",
    "ParamSpec",
    "ParamsFileError",
    "node_section",
    "read_params_file",
    "resolve",
    "section_node",
]

#: parameter type names, as ``rclpy.Parameter.Type`` names them (lower case)
TYPES = (
    "bool",
    "int",
    "double",
    "string",
    "bool_array",
    "int_array",
    "double_array",
    "string_array",
)

_FIX = "fix it in the parameter YAML, the launch arguments or `ros2 param set`"


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default, description and constraints.

    ``type`` is needed only when the default does not show it (an empty list): one of
    :data:`TYPES`. ``range`` is an inclusive ``(min, max)`` for int/double parameters (``step``
    0 = any value). ``choices`` restricts a string parameter. ``read_only`` parameters can be set
    only at start-up.
    """

    name: str
    default: Any
    description: str
    type: str | None = None
    read_only: bool = False
    range: tuple[float, float] | None = None
    step: float = 0
    choices: tuple[str, ...] = ()
    constraints: str = ""

    def __post_init__(self) -> None:
        if self.type is not None and self.type not in TYPES:
            raise ValueError(f"ParamSpec {self.name!r}: type {self.type!r} is not one of {list(TYPES)}")
        if isinstance(self.default, (list, tuple)) and not self.default and self.type is None:
            raise ValueError(
                f"ParamSpec {self.name!r}: an empty-list default needs type= (e.g. 'string_array')"
            )
        if self.range is not None and self.type_name not in ("int", "double"):
            raise ValueError(f"ParamSpec {self.name!r}: range needs an int or double parameter")

    @property
    def type_name(self) -> str:
        """One of :data:`TYPES`: ``type`` when given, else the default's type."""
        if self.type is not None:
            return self.type
        return _type_of(self.default, self.name)

    @property
    def is_array(self) -> bool:
        """Whether the parameter holds a list."""
        return self.type_name.endswith("_array")

    def check(self, value: Any) -> None:
        """Raise ``ValueError`` naming the parameter when ``value`` is not an allowed choice or
        is outside ``range`` (rclpy checks ranges too, but not inside our own callbacks)."""
        if self.choices and value not in self.choices:
            raise ValueError(f"parameter {self.name}={value!r} is not one of {list(self.choices)}; {_FIX}")
        if self.range is not None and value is not None and not self.is_array:
            lo, hi = self.range
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ValueError(f"parameter {self.name}={value!r} must be in [{lo:g}, {hi:g}]; {_FIX}")

    def coerce(self, value: Any) -> Any:
        """``value`` (from YAML or a command line) as this parameter's type, then :meth:`check`.

        An int is accepted for a double (YAML ``1`` for ``1.0``); anything else of the wrong
        type raises ``ValueError`` naming the parameter, the value and the expected type.
        """
        kind = self.type_name
        if kind.endswith("_array"):
            if value is None:
                value = []
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"parameter {self.name}={value!r} must be a list ({kind}); {_FIX}")
            value = [_scalar(self.name, kind[: -len("_array")], v) for v in value]
        else:
            value = _scalar(self.name, kind, value)
        self.check(value)
        return value


def _type_of(value: Any, name: str) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)) and value:
        return _type_of(value[0], name) + "_array"
    raise ValueError(f"ParamSpec {name!r}: cannot tell the type of default {value!r}; give type=")


def _scalar(name: str, kind: str, value: Any) -> Any:
    ok = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "double": isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": isinstance(value, str),
    }[kind]
    if not ok:
        raise ValueError(
            f"parameter {name}={value!r} is a {type(value).__name__}; it must be a {kind}; {_FIX}"
        )
    return float(value) if kind == "double" else value


def read_params_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """A ROS 2 parameter YAML as ``{section key: parameters}``, read as rcl reads it.

    Checked before parsing (size, UTF-8, aliases, depth; see
    :func:`vla_ros.util.param_files.read_params`). Raises :class:`ParamsFileError` when the file
    is missing, too large, not YAML or not a parameter file.
    """
    return {s.key: dict(s.params) for s in read_params(path).sections}


def node_section(path: str | Path, node: str, namespace: str = "/") -> dict[str, Any]:
    """The parameters a parameter YAML gives node ``node`` running in ``namespace``.

    Exactly the sections rclpy applies to the node's fully qualified name, merged in rcl's
    order (:func:`vla_ros.util.param_files.merged_params`); ``{}`` when none applies. Raises
    :class:`ParamsFileError` as :func:`read_params_file`.
    """
    return merged_params([read_params(path)], fully_qualified_name(node, namespace))


def resolve(specs: Sequence[ParamSpec], given: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """Every spec's value: ``given`` (checked and coerced) over the defaults.

    ``source`` names where ``given`` came from, for errors. A key no spec declares raises
    ``ValueError`` with the closest declared names; so does a value of the wrong type or range.
    """
    by_name = {s.name: s for s in specs}
    unknown = [k for k in given if k not in by_name and k != "use_sim_time"]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, by_name, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"{source}: unknown parameter(s) {', '.join(hints)}; the declared ones are {sorted(by_name)}"
        )
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name in given:
            try:
                values[spec.name] = spec.coerce(given[spec.name])
            except ValueError as exc:
                raise ValueError(f"{source}: {exc}") from None
        else:
            values[spec.name] = (
                list(spec.default) if isinstance(spec.default, (list, tuple)) else spec.default
            )
    return values
