"""Parameter specs and ROS 2 parameter YAML files, without ROS.

:class:`ParamSpec` is one parameter (name, type, default, description, unit, range or choices,
read-only or dynamic). Every node lists its parameters once as a tuple of specs
(:mod:`vla_ros.policy.params`, :mod:`vla_ros.executor.params`, :mod:`vla_ros.sim.params`,
:mod:`vla_ros.doctor.params`); from that tuple come the rclpy declarations
(:func:`vla_ros.nodes.params.declare_parameters`), ``docs/parameters.md`` and the comment headers
of ``config/*.yaml`` (``scripts/gen_params_docs.py``), and the offline validation of ``vla-ros
eval`` / ``vla-ros tune``, which read the very same YAML with :func:`node_section` and check it
with :func:`resolve`, so a key that the robot would reject is rejected offline too, with the
same message.

A *map* parameter is a spec whose name holds a ``<key>`` placeholder, such as
``limits.<joint>.lower``: one parameter per key (``limits.shoulder_pan.lower``), as
ros2_controllers' ``joint_limits`` and generate_parameter_library's ``__map_<key>`` do. A spec
``deprecated`` in favour of a map is still accepted, and a file setting both forms is refused
(:func:`check_forms`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
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
    "SpecIndex",
    "check_forms",
    "deprecation_warning",
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


_PLACEHOLDER = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: name, default, description and constraints.

    ``type`` is needed only when the default does not show it (an empty list, or ``None`` for a
    parameter that is unset by default): one of :data:`TYPES`. ``unit`` is the physical unit
    (``"s"``, ``"Hz"``, ``"rad or m"``; empty: none). ``range`` is an inclusive ``(min, max)``
    for int/double parameters (``step`` 0 = any value). ``choices`` restricts a string parameter.
    ``read_only`` parameters can be set only at start-up; the others are *dynamic* (``ros2 param
    set`` while running). ``constraints`` is extra text for ``ros2 param describe``.

    A name with a ``<key>`` placeholder (``limits.<joint>.lower``) is a map parameter: one
    parameter per key; ``map_keys`` names the parameter listing the keys known at start-up
    (``joint_names``). ``deprecated`` names the parameter that replaces this one (it is still
    accepted, with one warning).
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
    unit: str = ""
    deprecated: str = ""
    map_keys: str = ""

    def __post_init__(self) -> None:
        if self.type is not None and self.type not in TYPES:
            raise ValueError(f"ParamSpec {self.name!r}: type {self.type!r} is not one of {list(TYPES)}")
        if isinstance(self.default, (list, tuple)) and not self.default and self.type is None:
            raise ValueError(
                f"ParamSpec {self.name!r}: an empty-list default needs type= (e.g. 'string_array')"
            )
        if self.default is None and self.type is None:
            raise ValueError(f"ParamSpec {self.name!r}: a None (unset) default needs type= (e.g. 'double')")
        if self.range is not None and self.type_name not in ("int", "double"):
            raise ValueError(f"ParamSpec {self.name!r}: range needs an int or double parameter")
        if len(_PLACEHOLDER.findall(self.name)) > 1:
            raise ValueError(f"ParamSpec {self.name!r}: a map parameter has one <key> placeholder")

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

    @property
    def dynamic(self) -> bool:
        """Whether the parameter may change while the node runs (not ``read_only``)."""
        return not self.read_only

    @property
    def is_map(self) -> bool:
        """Whether the name holds a ``<key>`` placeholder (one parameter per key)."""
        return _PLACEHOLDER.search(self.name) is not None

    @property
    def help(self) -> str:
        """The description as ``ros2 param describe`` shows it: with the unit, deprecation and
        whether it may change while running."""
        text = self.description.rstrip()
        if text and text[-1] not in ".!?":
            text += "."
        if self.unit:
            text += f" Unit: {self.unit}."
        if self.deprecated:
            text += f" DEPRECATED: use {self.deprecated}."
        if self.read_only:
            text += " Read-only: set at start (YAML or launch), restart to change."
        return text

    def key_of(self, name: str) -> str | None:
        """The key ``name`` gives this map parameter (``'a'`` for ``limits.a.lower``), or None."""
        if not self.is_map:
            return None
        head, _, tail = _PLACEHOLDER.split(self.name, maxsplit=1)
        m = re.fullmatch(re.escape(head) + r"([^.]+)" + re.escape(tail), name)
        return m.group(1) if m else None

    def instance(self, key: str) -> ParamSpec:
        """The concrete spec of this map parameter for ``key`` (its name filled in)."""
        if not self.is_map:
            raise ValueError(f"ParamSpec {self.name!r} is not a map parameter")
        if not key or "." in key:
            raise ValueError(f"map key {key!r} of {self.name!r} must be non-empty and hold no '.'")
        name = _PLACEHOLDER.sub(key, self.name)
        return dataclasses.replace(self, name=name, map_keys="")

    def is_set(self, value: Any) -> bool:
        """Whether ``value`` is set (not None, not an empty list)."""
        return value is not None and not (isinstance(value, (list, tuple)) and len(value) == 0)

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
        if value is None and self.default is None:
            return None
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


class SpecIndex(Mapping[str, ParamSpec]):
    """A node's specs by name; a map parameter's concrete names (``limits.a.lower``) resolve to
    its :meth:`ParamSpec.instance`. Iterates over the declared names (map names with their
    placeholder)."""

    def __init__(self, specs: Sequence[ParamSpec]) -> None:
        self.specs = tuple(specs)
        self._exact = {s.name: s for s in self.specs}
        self._maps = tuple(s for s in self.specs if s.is_map)

    def __getitem__(self, name: str) -> ParamSpec:
        spec = self.find(name)
        if spec is None:
            raise KeyError(name)
        return spec

    def find(self, name: str) -> ParamSpec | None:
        """The spec of ``name`` (a map parameter's instance for a concrete map name), or None."""
        spec = self._exact.get(name)
        if spec is not None:
            return spec
        for m in self._maps:
            key = m.key_of(name)
            if key is not None:
                return m.instance(key)
        return None

    def declared(self, name: str) -> ParamSpec | None:
        """The spec as declared for ``name``: the map spec itself for a concrete map name."""
        spec = self._exact.get(name)
        if spec is not None:
            return spec
        return next((m for m in self._maps if m.key_of(name) is not None), None)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._exact)

    def __len__(self) -> int:
        return len(self._exact)


def check_forms(specs: Sequence[ParamSpec], values: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` when ``values`` set a deprecated parameter and the map replacing it.

    Strict: any deprecated parameter set (a non-empty value) together with any instance of a
    map named by some ``deprecated`` is refused, naming both, since mixing the two forms leaves
    the reader to guess which one wins.
    """
    old, new = _forms(specs, values)
    if old and new:
        raise ValueError(
            f"parameters {old} (deprecated) and {new} give the same settings in two forms; keep only "
            f"the {' / '.join(sorted({s.deprecated for s in specs if s.name in old}))} form; {_FIX}"
        )


def deprecation_warning(specs: Sequence[ParamSpec], values: Mapping[str, Any]) -> str | None:
    """One line naming every deprecated parameter set in ``values`` and its replacement, or None."""
    old, _ = _forms(specs, values)
    if not old:
        return None
    by_name = {s.name: s for s in specs}
    parts = ", ".join(f"{n} -> {by_name[n].deprecated}" for n in old)
    return f"deprecated parameters (still applied; they will be removed): {parts}; see docs/parameters.md"


def _forms(specs: Sequence[ParamSpec], values: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(deprecated parameters set, instances of their replacement maps set)`` in ``values``."""
    old = [s.name for s in specs if s.deprecated and s.is_set(values.get(s.name))]
    maps = [s for s in specs if s.is_map and any(d.deprecated == s.name for d in specs)]
    new = sorted(k for k, v in values.items() if v is not None and any(m.key_of(k) is not None for m in maps))
    return old, new


def resolve(specs: Sequence[ParamSpec], given: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """Every spec's value: ``given`` (checked and coerced) over the defaults.

    A map parameter has no default: its concrete names in ``given`` (``limits.a.lower``) are
    checked and returned. ``source`` names where ``given`` came from, for errors. A key no spec
    declares raises ``ValueError`` with the closest declared names; so does a value of the wrong
    type or range, and a deprecated parameter set together with its replacement map
    (:func:`check_forms`).
    """
    index = SpecIndex(specs)
    unknown = [k for k in given if k not in index and k != "use_sim_time"]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, list(index), n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(
            f"{source}: unknown parameter(s) {', '.join(hints)}; the declared ones are {sorted(index)}"
        )
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.is_map:
            continue
        if spec.name in given:
            values[spec.name] = _coerce(spec, given[spec.name], source)
        else:
            values[spec.name] = (
                list(spec.default) if isinstance(spec.default, (list, tuple)) else spec.default
            )
    for name, value in given.items():
        spec = index.find(name)
        if spec is not None and name not in values:
            values[name] = _coerce(spec, value, source)
    try:
        check_forms(specs, values)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return values


def _coerce(spec: ParamSpec, value: Any, source: str) -> Any:
    try:
        return spec.coerce(value)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
