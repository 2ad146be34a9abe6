"""ROS 2 parameter YAML files, read and matched to nodes exactly as rcl and rclpy do, without ROS.

Reading (:func:`read_params`) is checked before anything is parsed: the file's size against
:func:`max_file_bytes` (1 MiB unless ``VLA_ROS_PARAMS_MAX_BYTES`` says otherwise), then UTF-8,
then the YAML event stream (no aliases: rcl rejects them and they are the "billion laughs"
expansion; at most :data:`MAX_DEPTH` nested collections). Values are typed as rcl's
``rcl_yaml_param_parser`` types them (``1e3`` is a double, ``y`` is true, quoted text is a string),
nested parameter maps become dotted names (``a: {b: 1}`` -> ``a.b``), lists must hold one type,
sections nested by namespace (``arm: {executor_node: {ros__parameters: ...}}``) are joined with
``/``, and a section key that appears twice (or in two documents) is merged, as rcl merges it.
Every problem raises :class:`ParamsFileError` naming the file, the line and the fix.

Matching (:func:`key_matches`) is rclpy's (``rclpy/src/rclpy/node.cpp``,
``_populate_node_parameters_from_rcl_params``): a key gets a leading ``/``, each ``/*`` becomes
one name token and ``/**`` any number of tokens, and the whole fully qualified node name must
match. Every matching section applies, in the order rcl stored them (first appearance across the
files), later ones overriding earlier ones (:func:`merged_params`).
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vla_ros.contract.errors import VlaRosError

#: default size limit of a parameter file, bytes (checked before reading)
DEFAULT_MAX_BYTES = 1 << 20
#: environment variable that raises (or lowers) the size limit, in bytes
MAX_BYTES_ENV = "VLA_ROS_PARAMS_MAX_BYTES"
#: deepest nesting of YAML collections accepted (a parameter file needs about 6)
MAX_DEPTH = 32
PARAMS_KEY = "ros__parameters"

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)\Z", re.I)
_HEXFLOAT = re.compile(r"[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?\Z")
_TRUE = {"Y", "y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}
_FALSE = {"N", "n", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}
_YAML_INF_NAN = {f"{s}.{w}" for s in ("", "+", "-") for w in ("inf", "Inf", "INF")} | {".nan", ".NaN", ".NAN"}
#: parameters rclpy declares on every node itself
RCLPY_PARAMS = frozenset({"use_sim_time", "start_type_description_service"})


class ParamsFileError(VlaRosError, ValueError):
    """A parameter YAML is missing, too large, unreadable or not a ROS 2 parameter file; the
    message names the file, the problem and the fix."""


@dataclass(frozen=True)
class Section:
    """One ``<node key>: {ros__parameters: ...}`` section.

    ``key`` is as written (namespace levels joined with ``/``); ``params`` maps (dotted)
    parameter names to values typed as rcl types them; ``line`` is the key's 1-based line.
    """

    key: str
    params: dict[str, Any]
    line: int = 0

    @property
    def name(self) -> str:
        """The key with the leading ``/`` rclpy adds: ``executor_node`` -> ``/executor_node``."""
        return self.key if self.key.startswith("/") else "/" + self.key

    @property
    def node(self) -> str:
        """The node-name token: ``/**/executor_node`` -> ``executor_node``, ``/**`` -> ``**``."""
        return section_node(self.key)

    def matches(self, fqn: str) -> bool:
        """Whether rclpy applies this section to the node ``fqn`` (see :func:`key_matches`)."""
        return key_matches(self.key, fqn)


@dataclass(frozen=True)
class ParamsFile:
    """A read parameter file: its path and its sections in rcl's order (duplicates merged)."""

    path: str
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def keys(self) -> list[str]:
        """The section keys, in order."""
        return [s.key for s in self.sections]


def max_file_bytes() -> int:
    """The size limit in bytes: ``$VLA_ROS_PARAMS_MAX_BYTES`` when set to a positive integer,
    else :data:`DEFAULT_MAX_BYTES` (1 MiB)."""
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return DEFAULT_MAX_BYTES


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= 1 << 20 else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} B"


def read_text(path: str | Path, *, max_bytes: int | None = None) -> str:
    """The text of parameter file ``path``: a regular file of at most ``max_bytes`` (default
    :func:`max_file_bytes`) bytes of UTF-8, size checked before reading. Raises
    :class:`ParamsFileError`."""
    path = Path(path)
    limit = max_bytes or max_file_bytes()
    where = f"parameter file {str(path)!r}"
    if not path.exists():
        raise ParamsFileError(f"{where} does not exist; pass a YAML such as config/vla.yaml")
    if not path.is_file():
        raise ParamsFileError(f"{where} is not a regular file; pass a YAML such as config/vla.yaml")
    too_big = (
        f"{where} is larger than the {_size(limit)} limit for parameter files; "
        f"keep large data (URDFs, tables) in their own files or topics, or set {MAX_BYTES_ENV}"
    )
    try:
        if path.stat().st_size > limit:
            raise ParamsFileError(f"{too_big} (it has {_size(path.stat().st_size)})")
        with path.open("rb") as f:
            data = f.read(limit + 1)  # a file growing (or lying about its size) stops here
    except OSError as exc:
        raise ParamsFileError(f"{where} cannot be read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise ParamsFileError(too_big)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ParamsFileError(
            f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}); save it as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


# --- the YAML event stream as a small tree (iterative: no recursion on deep input) -------------


@dataclass
class _Node:
    kind: str  # "scalar" | "seq" | "map"
    line: int
    value: str = ""
    style: str | None = None
    tag: str | None = None
    items: list[Any] = field(default_factory=list)  # seq: [_Node]; map: [(_Node, _Node)]


def _documents(text: str, where: str) -> list[_Node]:
    """The documents of ``text`` as trees; aliases and nesting past :data:`MAX_DEPTH` refused."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs: list[_Node] = []
    stack: list[_Node] = []
    pending_key: list[Any] = []  # per open map: the key waiting for its value (or None)

    def add(node: _Node) -> None:
        if not stack:
            docs.append(node)
            return
        top = stack[-1]
        if top.kind == "seq":
            top.items.append(node)
        elif pending_key[-1] is None:
            pending_key[-1] = node
        else:
            top.items.append((pending_key[-1], node))
            pending_key[-1] = None

    try:
        for ev in yaml.parse(text, Loader=loader):
            line = (ev.start_mark.line + 1) if ev.start_mark else 0
            if isinstance(ev, yaml.AliasEvent):
                raise ParamsFileError(
                    f"{where} line {line}: YAML alias '*{ev.anchor}' is not allowed in a parameter file "
                    "(rcl rejects aliases, and alias chains expand without bound); write the values out"
                )
            if isinstance(ev, yaml.ScalarEvent):
                add(_Node("scalar", line, ev.value, ev.style, ev.tag))
            elif isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                if len(stack) >= MAX_DEPTH:
                    raise ParamsFileError(
                        f"{where} line {line}: collections nested deeper than {MAX_DEPTH} levels; "
                        "a parameter file needs a handful (node, ros__parameters, names)"
                    )
                node = _Node("seq" if isinstance(ev, yaml.SequenceStartEvent) else "map", line)
                add(node)
                stack.append(node)
                pending_key.append(None)
            elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                stack.pop()
                pending_key.pop()
    except yaml.YAMLError as exc:
        raise ParamsFileError(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from None
    return docs


# --- values as rcl types them ---------------------------------------------------------------


def rcl_scalar(value: str, *, quoted: bool = False, str_tag: bool = False) -> bool | int | float | str:
    """A YAML scalar as ``rcl_yaml_param_parser`` types it (``parse.c`` ``get_value``).

    Quoted or ``!!str`` -> str; else the bool words (``y``/``yes``/``true``/``on``, ``n``/
    ``no``/``false``/``off`` in three cases), an integer as C ``strtoll(s, 0)`` reads one
    (``0x10`` = 16, ``010`` = 8), a double as ``strtod`` reads one (``1e3``, ``.inf``, ``nan``; an
    out-of-range one stays a string), else the text.
    """
    if quoted or str_tag:
        return value
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if _INT.match(value):
        n = int(value, 0) if not re.match(r"[+-]?0[0-7]+\Z", value) else int(value, 8)
        if -(1 << 63) <= n < 1 << 63:
            return n
    if value in _YAML_INF_NAN:
        return math.nan if "nan" in value.lower() else -math.inf if value.startswith("-") else math.inf
    if _FLOAT.match(value) or _HEXFLOAT.match(value):
        x = float.fromhex(value) if _HEXFLOAT.match(value) else float(value)
        literal_inf = "inf" in value.lower()
        tiny = x != 0 and abs(x) < 2.2250738585072014e-308
        zero_from_digits = x == 0 and re.search(r"[1-9]", value.split("e")[0].split("E")[0])
        if (math.isinf(x) and not literal_inf) or tiny or zero_from_digits:
            return value  # strtod sets ERANGE: rcl keeps the text
        return x
    return value


def _type_name(v: Any) -> str:
    return {bool: "bool", int: "integer", float: "double", str: "string"}[type(v)]


def _value(node: _Node, name: str, where: str) -> Any:
    if node.kind == "scalar":
        if node.value == "" and not node.style and node.tag is None:
            raise ParamsFileError(
                f"{where} line {node.line}: parameter {name!r} has no value (rcl rejects it); "
                "write a value, or '' for an empty string"
            )
        return rcl_scalar(
            node.value, quoted=node.style in ("'", '"'), str_tag=node.tag == "tag:yaml.org,2002:str"
        )
    if node.kind == "map":
        raise AssertionError("maps are flattened by the caller")
    out = []
    for item in node.items:
        if item.kind != "scalar":
            raise ParamsFileError(
                f"{where} line {item.line}: parameter {name!r} is a list holding a nested "
                f"{'list' if item.kind == 'seq' else 'mapping'}; ROS 2 parameters are scalars or flat lists"
            )
        out.append(_value(item, name, where))
    kinds = sorted({_type_name(v) for v in out})
    if len(kinds) > 1:
        raise ParamsFileError(
            f"{where} line {node.line}: parameter {name!r} is a list mixing {' and '.join(kinds)} "
            "values; a ROS 2 list holds one type (write 1.0 rather than 1 in a list of doubles, "
            "quote numbers in a list of strings)"
        )
    return out


def _flatten(node: _Node, prefix: str, out: dict[str, Any], where: str) -> None:
    stack = [(node, prefix)]
    while stack:
        current, pre = stack.pop()
        for key, value in current.items:
            if key.kind != "scalar":
                raise ParamsFileError(
                    f"{where} line {key.line}: a parameter name must be text, not a {key.kind}"
                )
            name = f"{pre}.{key.value}" if pre else key.value
            if value.kind == "map":
                stack.append((value, name))
            else:
                out[name] = _value(value, name, where)


def key_problem(key: str) -> str | None:
    """Why rcl refuses ``key`` as a section (node) key, or None when it accepts it.

    Tokens between ``/`` are names (letters, digits, ``_``; not starting with a digit), ``*``
    (one token) or ``**`` (any number); no empty token (``//``, a trailing ``/``).
    """
    tokens = (key[1:] if key.startswith("/") else key).split("/")
    for tok in tokens:
        if tok in ("*", "**"):
            continue
        if not tok:
            return "has an empty name between slashes (or a trailing slash)"
        if not _TOKEN.match(tok):
            return (
                f"has the token {tok!r}; names hold letters, digits and '_' (not first a digit), "
                "and wildcards are whole tokens: '*' (one level) or '**' (any levels)"
            )
    return None


def read_params(path: str | Path, *, max_bytes: int | None = None) -> ParamsFile:
    """Parameter file ``path``, checked (:func:`read_text`) and read as rcl reads it.

    Raises :class:`ParamsFileError` for: too large, not UTF-8, not YAML, aliases, too deep,
    not a mapping of node keys, a value before ``ros__parameters``, a key rcl refuses, an empty
    value, a nested or mixed-type list.
    """
    text = read_text(path, max_bytes=max_bytes)
    return ParamsFile(str(path), parse_sections(text, f"parameter file {str(path)!r}"))


def parse_sections(text: str, where: str) -> tuple[Section, ...]:
    """The sections of parameter-YAML ``text`` (``where`` names it in errors); see :func:`read_params`.

    The size is not checked here: read files with :func:`read_params`.
    """
    sections: dict[str, Section] = {}
    for doc in _documents(text, where):
        if doc.kind == "scalar" and doc.value == "" and not doc.style:
            continue  # an empty document
        if doc.kind != "map":
            raise ParamsFileError(
                f"{where} must map node names to 'ros__parameters' sections, as in "
                "'executor_node: {ros__parameters: {...}}'"
            )
        stack: list[tuple[_Node, list[str]]] = [(doc, [])]
        found: list[tuple[str, _Node, int]] = []
        while stack:
            node, path_tokens = stack.pop(0)
            for key, value in node.items:
                if key.kind != "scalar":
                    raise ParamsFileError(f"{where} line {key.line}: a node name must be text")
                if key.value.startswith(PARAMS_KEY) and path_tokens:
                    found.append(("/".join(path_tokens), value, key.line))
                elif key.value.startswith(PARAMS_KEY):
                    raise ParamsFileError(
                        f"{where} line {key.line}: 'ros__parameters' needs a node name above it, as in "
                        "'executor_node: {ros__parameters: {...}}'"
                    )
                elif value.kind == "map":
                    stack.append((value, [*path_tokens, key.value]))
                else:
                    section = "/".join(path_tokens) or key.value
                    held = f"{key.value!r} holds a value" if path_tokens else "it holds a value directly"
                    raise ParamsFileError(
                        f"{where} line {key.line}: section {section!r} has no 'ros__parameters' ({held}); "
                        "use the standard layout  node_name: {ros__parameters: {...}}"
                    )
        for key, body, line in sorted(found, key=lambda f: f[2]):
            problem = key_problem(key)
            if problem:
                raise ParamsFileError(f"{where} line {line}: section key {key!r} {problem} (rcl refuses it)")
            if body.kind != "map":
                raise ParamsFileError(
                    f"{where} line {line}: section {key!r} has 'ros__parameters' that is not a mapping; "
                    "it must map parameter names to values ({} for none)"
                )
            params: dict[str, Any] = {}
            _flatten(body, "", params, f"{where} [{key}]")
            if key in sections:  # rcl merges a repeated key into its first place
                sections[key].params.update(params)
            else:
                sections[key] = Section(key, params, line)
    return tuple(sections.values())


# --- matching --------------------------------------------------------------------------------


def fully_qualified_name(node: str, namespace: str = "/") -> str:
    """``('executor_node', 'arm')`` -> ``/arm/executor_node`` (a relative namespace is made
    absolute, as ``-r __ns:=`` and launch do)."""
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{node}"


def key_matches(key: str, fqn: str) -> bool:
    """Whether rclpy applies the section ``key`` to the node ``fqn`` (``/arm/executor_node``).

    ``key`` gets a leading ``/``; ``/*`` then matches one name token and ``/**`` zero or more;
    the rest must equal ``fqn`` exactly (case matters). So ``executor_node`` applies only in
    the root namespace, ``/**/executor_node`` in every namespace, ``/**`` to every node. A key
    rcl refuses (:func:`key_problem`) matches nothing.
    """
    if key_problem(key):
        return False  # rcl refuses the whole file
    name = key if key.startswith("/") else "/" + key
    # rclpy: find_and_replace(name, "/*", "(/\\w+)"), so "/**" becomes "(/\\w+)*"; a valid key
    # has no other regex metacharacter
    return re.fullmatch(name.replace("/*", r"(/\w+)"), fqn, re.ASCII) is not None


def applicable(files: Iterable[ParamsFile], fqn: str) -> list[tuple[ParamsFile, Section]]:
    """The sections that apply to ``fqn``, in the order rcl applies them.

    rcl keeps one entry per key string across all files (in first-appearance order; a later
    file's values for the same key update that entry), and rclpy applies every matching entry
    in that order.
    """
    order: dict[str, int] = {}
    hits: list[tuple[int, int, ParamsFile, Section]] = []
    for n, pf in enumerate(files):
        for section in pf.sections:
            order.setdefault(section.key, len(order))
            if section.matches(fqn):
                hits.append((order[section.key], n, pf, section))
    return [(pf, s) for _, _, pf, s in sorted(hits, key=lambda h: (h[0], h[1]))]


def merged_params(files: Iterable[ParamsFile], fqn: str) -> dict[str, Any]:
    """The parameter values the node ``fqn`` gets from ``files`` (see :func:`applicable`)."""
    merged: dict[str, Any] = {}
    for _, section in applicable(files, fqn):
        merged.update(section.params)
    return merged


def section_node(key: str) -> str:
    """The node-name token of a section key: ``/**/policy_node``, ``/ns/policy_node`` -> ``policy_node``."""
    return key.rstrip("/").rsplit("/", 1)[-1]


def names_node(section: Section, fqn: str) -> bool:
    """Whether ``section`` applies to ``fqn`` and names that node (not a ``*``/``**`` catch-all)."""
    return section.node == fqn.rsplit("/", 1)[-1] and section.matches(fqn)


def params_file_args(argv: Sequence[str]) -> list[str]:
    """The ``--params-file PATH`` values inside ``--ros-args ... [--]`` blocks of ``argv``."""
    files: list[str] = []
    in_ros = False
    it = iter(argv)
    for arg in it:
        if arg == "--ros-args":
            in_ros = True
        elif arg == "--" and in_ros:
            in_ros = False
        elif in_ros and arg == "--params-file":
            value = next(it, None)
            if value is not None:
                files.append(value)
    return files


def params_files_problem(argv: Sequence[str]) -> str | None:
    """The first problem of the ``--params-file`` files in ``argv`` (:func:`read_params`), or None.

    Node executables call this before ``rclpy.init``, so a file too large or one rcl would
    refuse ends the process with one line instead of a stall or a traceback.
    """
    for path in params_file_args(argv):
        try:
            read_params(path)
        except ParamsFileError as exc:
            return str(exc)
    return None


# --- warnings ---------------------------------------------------------------------------------


#: ``_``-separated words many names share (units, the ``_node`` of node names): a match that
#: rests only on one of them is no suggestion (``policy_node`` is not ``executor_node``)
GENERIC_WORDS = frozenset({"node", "s", "ms", "us", "ns", "hz", "m", "rad", "deg", "n", "id"})


def _stems(a: str, b: str) -> tuple[str, str]:
    """``a`` and ``b`` without the generic words (:data:`GENERIC_WORDS`) they both start or end
    with: ``policy_node``, ``executor_node`` -> ``policy``, ``executor``."""
    wa, wb = a.split("_"), b.split("_")
    while len(wa) > 1 and len(wb) > 1 and wa[-1] == wb[-1] and wa[-1] in GENERIC_WORDS:
        wa, wb = wa[:-1], wb[:-1]
    while len(wa) > 1 and len(wb) > 1 and wa[0] == wb[0] and wa[0] in GENERIC_WORDS:
        wa, wb = wa[1:], wb[1:]
    return "_".join(wa), "_".join(wb)


def suggest(name: str, known: Iterable[str]) -> list[str]:
    """Up to three known names close to ``name``: first those it extends or shortens by whole
    ``_``-separated words (``chunk_mode`` -> ``mode``), then those ``difflib`` finds similar
    (ratio >= 0.5). Neither counts a shared generic word (:data:`GENERIC_WORDS`): ``timeout_s``
    does not suggest ``s``, and ``policy_node`` is compared with ``executor_node`` as ``policy``
    with ``executor`` (no suggestion)."""
    names = sorted(set(known) - {name})

    def extends(longer: str, shorter: str) -> bool:
        return shorter not in GENERIC_WORDS and (
            longer.endswith("_" + shorter) or longer.startswith(shorter + "_")
        )

    words = [k for k in names if extends(name, k) or extends(k, name)]
    scored = []
    for k in names:
        a, b = _stems(name, k)
        ratio = difflib.SequenceMatcher(None, a, b).ratio()
        if ratio >= 0.5:
            scored.append((-ratio, k))
    close = [k for _, k in sorted(scored)]
    return (words + [c for c in close if c not in words])[:3]


def _did_you_mean(close: Sequence[str]) -> str:
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _shown(section: Section) -> str:
    exact = "*" not in section.key and section.key != section.name
    return f"{section.key!r} (= {section.name})" if exact else repr(section.key)


def mismatch_warning(files: Sequence[ParamsFile], fqn: str) -> str | None:
    """One line when ``files`` were given and none of their sections applies to ``fqn``.

    It lists each file's keys with the name rclpy reads them as, and gives the key to use.
    """
    if not files or applicable(files, fqn):
        return None
    node = fqn.rsplit("/", 1)[-1]
    parts = []
    for pf in files:
        keys = ", ".join(_shown(s) for s in pf.sections) or "no sections"
        parts.append(f"{pf.path} has {keys}")
    close = suggest(node, {s.node for pf in files for s in pf.sections} - {"*", "**"})
    close = [c for c in close if c != node]
    return (
        f"no section of the parameter file(s) applies to this node {fqn}: {'; '.join(parts)}"
        f"{_did_you_mean(close)}; every parameter keeps its default. A key applies only to the node "
        f"it names in its namespace: key the section '{fqn}:' or '/**/{node}:' (any namespace)"
    )


def unknown_key_warnings(files: Sequence[ParamsFile], fqn: str, known: Iterable[str]) -> list[str]:
    """One line per section that names ``fqn`` and holds keys the node does not declare.

    Catch-all sections (``/**``, ``/arm/*``) are shared by every node and are not checked;
    ``qos_overrides.*`` and rclpy's own parameters are always known.
    """
    known = set(known) | RCLPY_PARAMS
    out = []
    for pf, section in applicable(files, fqn):
        if not names_node(section, fqn):
            continue
        unknown = [k for k in section.params if k not in known and not k.startswith("qos_overrides.")]
        if unknown:
            what = ", ".join(f"{k!r}{_did_you_mean(suggest(k, known))}" for k in unknown)
            out.append(
                f"parameter file {pf.path} section {section.key!r}: {fqn} has no parameter {what}; "
                f"it is ignored (see `ros2 param list {fqn}`)"
            )
    return out
