"""Declare node parameters once, with a ``ParameterDescriptor`` (description, range, read-only).

A node lists its parameters as :class:`ParamSpec` values and calls :func:`declare_parameters`,
which declares them all, checks ``choices`` and ``range``, and returns ``{name: value}``. Values come from the
YAML in ``config/`` (``--params-file``), launch overrides or ``parameter_overrides``.

Before declaring, :func:`declare_parameters` calls :func:`warn_params_files`: a parameter file
given to the node whose sections do not reach it (keyed ``executor_node:`` while the node runs
as ``/arm/executor_node``), or a section naming the node with keys it does not declare
(``blend_coef``), is one WARN line each at start-up instead of silently kept defaults.

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

import ctypes
import sys
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

from vla_ros.util.param_files import (
    RCLPY_PARAMS,
    ParamsFile,
    ParamsFileError,
    applicable,
    mismatch_warning,
    params_file_args,
    read_params,
    suggest,
    unknown_key_warnings,
)
from vla_ros.util.params import ParamSpec, SpecIndex, check_forms, deprecation_warning
from vla_ros.util.params_docs import markdown_table

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

__all__ = [
    "ParamSpec",
    "declare_parameters",
    "declared_names",
    "describe",
    "descriptor",
    "params_files",
    "rclpy_type",
    "warn_params_files",
]


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
        description=spec.help,
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
    """Declare every spec on ``node``; returns ``{name: value}`` (empty arrays as ``[]``, unset
    parameters as ``None``).

    A map parameter (``limits.<joint>.lower``) is declared once per key: the keys its
    ``map_keys`` parameter lists (declared before it) and those the node's overrides (parameter
    files, ``-p``, ``parameter_overrides``) name; its unset instances are ``None``.

    Raises ``ValueError`` for a value outside ``choices`` or ``range``, and for a deprecated
    parameter set together with the map replacing it (rclpy itself rejects wrong types and
    out-of-range values, naming the parameter). A deprecated parameter set alone is one WARN
    line naming the replacement. Later runtime changes (``ros2 param set``) are checked the same
    way. Parameter files that do not reach the node, and unknown keys in its sections, are
    warned about first (:func:`warn_params_files`).
    """
    warn_params_files(node, specs)
    values: dict[str, Any] = {}
    for spec in specs:
        for concrete in _instances(node, spec, values) if spec.is_map else [spec]:
            values[concrete.name] = _declare(node, concrete)
    check_forms(specs, values)
    warning = deprecation_warning(specs, values)
    if warning is not None:
        node.get_logger().warning(warning)
    by_name = SpecIndex(specs)

    def _on_set(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = by_name.find(p.name)
            if spec is None:
                continue
            try:
                spec.check(p.value)
            except ValueError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(_on_set)
    return values


def _declare(node: Node, spec: ParamSpec) -> Any:
    """Declare one concrete spec; its value (``[]`` for an empty array)."""
    default = spec.default
    if default is None or (isinstance(default, (list, tuple)) and not default):
        default = rclpy_type(spec)  # typed, without a value
    elif isinstance(default, (list, tuple)):
        default = list(default)
    value = node.declare_parameter(spec.name, default, descriptor(spec)).value
    if value is None and spec.is_array:
        value = []
    if isinstance(value, tuple):
        value = list(value)
    spec.check(value)
    return value


def _instances(node: Node, spec: ParamSpec, values: dict[str, Any]) -> list[ParamSpec]:
    """The concrete specs of map parameter ``spec``: its keys from ``values[spec.map_keys]``, then
    the keys the node's overrides name, in that order."""
    keys = [str(k) for k in values.get(spec.map_keys) or ()] if spec.map_keys else []
    # rclpy keeps the overrides (files, -p, parameter_overrides) in Node._parameter_overrides
    for name in getattr(node, "_parameter_overrides", {}):
        key = spec.key_of(name)
        if key is not None and key not in keys:
            keys.append(key)
    return [spec.instance(k) for k in keys]


def declared_names(node: Node) -> list[str]:
    """Every parameter the node has declared (including ``use_sim_time``), sorted."""
    return sorted(node.list_parameters([], 0).names)


def describe(specs: Iterable[ParamSpec]) -> str:
    """A Markdown table of parameters, in the one style of ``docs/parameters.md``."""
    return markdown_table(specs)


# --- which parameter files rcl gives a node, and what they say about it ----------------------


class _Allocator(ctypes.Structure):
    """``rcutils_allocator_t``."""

    _fields_ = (
        ("allocate", ctypes.c_void_p),
        ("deallocate", ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)),
        ("reallocate", ctypes.c_void_p),
        ("zero_allocate", ctypes.c_void_p),
        ("state", ctypes.c_void_p),
    )


class _NodeOptions(ctypes.Structure):
    """The head of ``rcl_node_options_t`` (rcl, Humble and later): allocator, use_global_arguments,
    arguments (an ``rcl_arguments_t``: one pointer)."""

    _fields_ = (
        ("allocator", _Allocator),
        ("use_global_arguments", ctypes.c_bool),
        ("arguments", ctypes.c_void_p),
    )


def _rcl_param_files(arguments: int) -> list[str]:
    """``rcl_arguments_get_param_files`` of the ``rcl_arguments_t`` at address ``arguments``."""
    rcl = ctypes.CDLL("librcl.so")
    rcutils = ctypes.CDLL("librcutils.so")
    count_fn = rcl.rcl_arguments_get_param_files_count
    count_fn.argtypes, count_fn.restype = [ctypes.c_void_p], ctypes.c_int
    count = count_fn(arguments)
    if count <= 0:
        return []
    get_alloc = rcutils.rcutils_get_default_allocator
    get_alloc.argtypes, get_alloc.restype = [], _Allocator
    alloc = get_alloc()
    out = ctypes.POINTER(ctypes.c_char_p)()
    get = rcl.rcl_arguments_get_param_files
    get.argtypes = [ctypes.c_void_p, _Allocator, ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p))]
    get.restype = ctypes.c_int
    if get(arguments, alloc, ctypes.byref(out)) != 0:
        raise OSError("rcl_arguments_get_param_files failed")
    raw = ctypes.cast(out, ctypes.POINTER(ctypes.c_void_p))
    files = []
    for i in range(count):
        files.append(ctypes.string_at(raw[i]).decode("utf-8", "replace"))
        alloc.deallocate(raw[i], alloc.state)
    alloc.deallocate(ctypes.cast(out, ctypes.c_void_p), alloc.state)
    return files


def params_files(node: Node) -> list[str]:
    """The ``--params-file`` paths rcl applies to ``node``, in rcl's order.

    Read from rcl itself: the context's global arguments (``rclpy.init(args=...)``, the process
    command line under ``ros2 run``/launch) when the node uses them, then the node's own
    ``cli_args``. Where rcl cannot be asked (no ``librcl.so`` on the library path), the
    ``--ros-args`` of ``sys.argv`` are read instead.
    """
    try:
        files: list[str] = []
        opts_addr = _rcl_node_options(node)
        opts = _NodeOptions.from_address(opts_addr)
        if opts.use_global_arguments:
            files += _rcl_param_files(node.context.handle.pointer)  # rcl_context_t starts with it
        files += _rcl_param_files(opts_addr + _NodeOptions.arguments.offset)
        return files
    except (OSError, AttributeError):
        return params_file_args(sys.argv)


def _rcl_node_options(node: Node) -> int:
    rcl = ctypes.CDLL("librcl.so")
    fn = rcl.rcl_node_get_options
    fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_void_p
    addr = fn(node.handle.pointer)
    if not addr:
        raise OSError("rcl_node_get_options returned NULL")
    return int(addr)


def unknown_override_warning(
    node: Node, specs: Sequence[ParamSpec], files: Sequence[ParamsFile]
) -> str | None:
    """One line naming the parameters set on the command line (``-p``), in a launch file or as
    constructor overrides that the node does not declare (with ``difflib`` suggestions): rclpy
    ignores them silently, so ``-p chunk_mode:=rtc`` would leave ``mode`` at its default.

    Keys that come from a parameter file are left to :func:`unknown_key_warnings` (one line per
    cause), catch-all sections included.
    """
    fqn = node.get_fully_qualified_name()
    from_files = {k for _, section in applicable(files, fqn) for k in section.params}
    known = {s.name for s in specs} | set(declared_names(node)) | RCLPY_PARAMS
    maps = [s for s in specs if s.is_map]
    unknown = [
        name
        for name in getattr(node, "_parameter_overrides", {})  # rclpy: files, -p and overrides
        if name not in known
        and name not in from_files
        and not name.startswith("qos_overrides.")
        and not any(m.key_of(name) for m in maps)  # limits.<joint>.lower: declared per joint
    ]
    if not unknown:
        return None
    what = ", ".join(
        f"{k!r}"
        + (f" (did you mean {' or '.join(repr(c) for c in suggest(k, known))}?)" if suggest(k, known) else "")
        for k in unknown
    )
    return (
        f"{fqn} has no parameter {what}: set on the command line, in a launch file or as an "
        f"override, it is ignored (see `ros2 param list {fqn}`)"
    )


def warn_params_files(node: Node, specs: Sequence[ParamSpec] = ()) -> list[str]:
    """Log (WARN, one line per cause) what the node's parameter files fail to tell it; returns the lines.

    * files were given and no section applies to the node's fully qualified name (with each
      file's keys and the key to use);
    * a section naming the node holds keys that are neither in ``specs`` nor declared on the
      node (with ``difflib`` suggestions);
    * a file that cannot be read here (too large, not UTF-8, ...): its problem.

    Never raises: rcl has already accepted the files, and a warning must not stop a node.
    """
    files: list[ParamsFile] = []
    lines: list[str] = []
    for path in params_files(node):
        try:
            files.append(read_params(path))
        except ParamsFileError as exc:
            lines.append(f"cannot check parameter file {path}: {exc}")
    fqn = node.get_fully_qualified_name()
    if files:
        mismatch = mismatch_warning(files, fqn)
        if mismatch:
            lines.append(mismatch)
        known = {s.name for s in specs} | set(declared_names(node))
        maps = [s for s in specs if s.is_map]  # limits.<joint>.lower: every joint's name is known
        known |= {
            k for f in files for sec in f.sections for k in sec.params if any(m.key_of(k) for m in maps)
        }
        lines += unknown_key_warnings(files, fqn, known)
    line = unknown_override_warning(node, specs, files)
    if line:
        lines.append(line)
    for line in lines:
        node.get_logger().warning(line)
    return lines
