"""Declare node parameters once, with a ``ParameterDescriptor`` (description, range, read-only).

A node lists its parameters as :class:`ParamSpec` values and calls :func:`declare_parameters`,
which declares them all, checks ``choices`` and ``range``, and returns ``{name: value}``. Values come from the
YAML in ``config/`` (``--params-file``), launch overrides or ``parameter_overrides``.

>>> SPECS = (
...     ParamSpec("rate_hz", 0.0, "Inference rate in Hz; 0 = as fast as possible",
...               range=(0.0, 1000.0)),
...     ParamSpec("backend", "onnxruntime", "Runtime backend", read_only=True,
...               choices=("onnxruntime", "torch", "tensorrt")),
...     ParamSpec("cameras", [], "name=topic entries", type="string_array", read_only=True),
... )
>>> values = declare_parameters(node, SPECS)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

_TYPES: dict[str, Parameter.Type] = {
    "bool": Parameter.Type.BOOL,
    "int": Parameter.Type.INTEGER,
    "double": Parameter.Type.DOUBLE,
    "string": Parameter.Type.STRING,
    "bool_array": Parameter.Type.BOOL_ARRAY,
    "int_array": Parameter.Type.INTEGER_ARRAY,
    "double_array": Parameter.Type.DOUBLE_ARRAY,
    "string_array": Parameter.Type.STRING_ARRAY,
}


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default, description and constraints.

    ``type`` is needed only when the default does not show it (an empty list): one of
    ``bool int double string bool_array int_array double_array string_array``. ``range`` is an
    inclusive ``(min, max)`` for int/double parameters (``step`` 0 = any value). ``choices``
    restricts a string parameter. ``read_only`` parameters can be set only at start-up.
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
        if self.type is not None and self.type not in _TYPES:
            raise ValueError(f"ParamSpec {self.name!r}: type {self.type!r} is not one of {sorted(_TYPES)}")
        if isinstance(self.default, (list, tuple)) and not self.default and self.type is None:
            raise ValueError(
                f"ParamSpec {self.name!r}: an empty-list default needs type= (e.g. 'string_array')"
            )

    @property
    def param_type(self) -> Parameter.Type:
        """The rclpy parameter type."""
        if self.type is not None:
            return _TYPES[self.type]
        return Parameter.Type.from_parameter_value(self.default)

    def descriptor(self) -> ParameterDescriptor:
        """The ``ParameterDescriptor`` that documents this parameter in ``ros2 param describe``."""
        constraints = self.constraints
        if self.choices:
            text = "one of: " + ", ".join(self.choices)
            constraints = f"{constraints}; {text}" if constraints else text
        d = ParameterDescriptor(
            name=self.name,
            type=self.param_type.value,
            description=self.description,
            additional_constraints=constraints,
            read_only=self.read_only,
        )
        if self.range is not None:
            lo, hi = self.range
            if self.param_type == Parameter.Type.INTEGER:
                d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=int(self.step))]
            elif self.param_type == Parameter.Type.DOUBLE:
                d.floating_point_range = [
                    FloatingPointRange(from_value=float(lo), to_value=float(hi), step=float(self.step))
                ]
            else:
                raise ValueError(f"ParamSpec {self.name!r}: range needs an int or double parameter")
        return d

    @property
    def is_array(self) -> bool:
        """Whether the parameter holds a list."""
        return self.param_type.name.endswith("_ARRAY")

    def check(self, value: Any) -> None:
        """Raise ``ValueError`` naming the parameter when ``value`` is not an allowed choice or
        is outside ``range`` (rclpy checks ranges too, but not inside our own callbacks)."""
        if self.choices and value not in self.choices:
            raise ValueError(
                f"parameter {self.name}={value!r} is not one of {list(self.choices)}; "
                "fix it in the parameter YAML, the launch arguments or `ros2 param set`"
            )
        if self.range is not None and value is not None and not self.is_array:
            lo, hi = self.range
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ValueError(
                    f"parameter {self.name}={value!r} must be in [{lo:g}, {hi:g}]; "
                    "fix it in the parameter YAML, the launch arguments or `ros2 param set`"
                )


def declare_parameters(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Declare every spec on ``node``; returns ``{name: value}`` (empty arrays as ``[]``).

    Raises ``ValueError`` for a value outside ``choices`` or ``range`` (rclpy itself rejects
    wrong types and out-of-range values, naming the parameter). Later runtime changes
    (``ros2 param set``) are checked the same way.
    """
    values: dict[str, Any] = {}
    for spec in specs:
        default = spec.default
        if isinstance(default, (list, tuple)):
            default = list(default) if default else spec.param_type
        param = node.declare_parameter(spec.name, default, spec.descriptor())
        value = param.value
        if value is None and spec.is_array:
            value = []
        if isinstance(value, tuple):
            value = list(value)
        spec.check(value)
        values[spec.name] = value
    by_name = {s.name: s for s in specs}

    def _on_set(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                continue
            try:
                spec.check(p.value)
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(_on_set)
    return values


def declared_names(node: Node) -> list[str]:
    """Every parameter the node has declared (including ``use_sim_time``), sorted."""
    return sorted(node.list_parameters([], 0).names)


def describe(specs: Iterable[ParamSpec]) -> str:
    """A Markdown table of parameters (for docs and ``--help`` texts)."""
    rows = ["| name | default | description |", "|---|---|---|"]
    for s in specs:
        extra = " (read-only)" if s.read_only else ""
        if s.range is not None:
            extra += f" range [{s.range[0]}, {s.range[1]}]"
        if s.choices:
            extra += f" one of {', '.join(s.choices)}"
        rows.append(f"| `{s.name}` | `{s.default!r}` | {s.description}{extra} |")
    return "\n".join(rows)
