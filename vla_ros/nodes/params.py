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
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from vla_ros.util.params import ParamSpec

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

__all__ = ["ParamSpec", "declare_parameters", "declared_names", "describe", "descriptor", "rclpy_type"]


def rclpy_type(spec: ParamSpec) -> Parameter.Type:
    """The rclpy parameter type of ``spec``."""
    return _TYPES[spec.type_name]


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ``ParameterDescriptor`` that documents ``spec`` in ``ros2 param describe``."""
    constraints = spec.constraints
    if spec.choices:
        text = "one of: " + ", ".join(spec.choices)
        constraints = f"{constraints}; {text}" if constraints else text
    d = ParameterDescriptor(
        name=spec.name,
        type=rclpy_type(spec).value,
        description=spec.description,
        additional_constraints=constraints,
        read_only=spec.read_only,
    )
    if spec.range is not None:
        lo, hi = spec.range
        if spec.type_name == "int":
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=int(spec.step))]
        else:
            d.floating_point_range = [
                FloatingPointRange(from_value=float(lo), to_value=float(hi), step=float(spec.step))
            ]
    return d


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
            default = list(default) if default else rclpy_type(spec)
        param = node.declare_parameter(spec.name, default, descriptor(spec))
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
