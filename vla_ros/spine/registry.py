"""Registries: name -> class tables, filled by decorators, built from type-tagged config dicts.

A registry maps a name to a class::

    @VISION_BACKBONES.register()            # registered as "ViT" (the class name)
    class ViT(nn.Module): ...

    @VLAS.register(name="act")              # registered as "act"
    class ACT(BaseVLA): ...

    VISION_BACKBONES.build({"type": "ViT", "dim": 64})   # -> ViT(dim=64)

Nested type-tagged dicts are built recursively: a value under a key listed in ``children`` is built
with that child registry, any other nested ``{"type": ...}`` dict with the same registry. VLAs are
the exception (``recursive=False``): a VLA builds its own slots, because it fills in the
dimensions a slot needs from its IO spec and from the slots built before it.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any


def _where(obj: Any) -> str:
    """``module.Qualname (file:line)`` for error messages."""
    mod = getattr(obj, "__module__", "?")
    qual = getattr(obj, "__qualname__", repr(obj))
    try:
        file = inspect.getsourcefile(obj) or "?"
        line = inspect.getsourcelines(obj)[1]
        return f"{mod}.{qual} ({file}:{line})"
    except (OSError, TypeError):
        return f"{mod}.{qual}"


class Registry:
    """A named table of classes (or factories) of one component kind.

    Args:
        kind: what the registry holds, used in messages ("vision_backbone", "vla", ...).
        recursive: build nested type-tagged dicts before calling the constructor.
        children: keyword -> registry used to build the nested dict found under that keyword.
    """

    def __init__(
        self,
        kind: str,
        *,
        recursive: bool = True,
        children: Mapping[str, Registry] | None = None,
    ) -> None:
        self.kind = kind
        self.recursive = recursive
        self.children: dict[str, Registry] = dict(children or {})
        self._table: dict[str, Any] = {}

    # ----------------------------------------------------------------------------- registration
    def register(self, obj: Any = None, *, name: str | None = None) -> Any:
        """Register ``obj`` under ``name`` (default: its ``__name__``); usable as a decorator.

        ``@R.register``, ``@R.register()`` and ``@R.register(name="x")`` all work. Registering a
        second, different definition under a taken name raises ``ValueError`` naming both.
        """

        def _add(target: Any) -> Any:
            key = name if name is not None else getattr(target, "__name__", None)
            if not isinstance(key, str) or not key:
                raise ValueError(
                    f"{self.kind} registry: cannot register {target!r} without a name; pass name='...'"
                )
            old = self._table.get(key)
            if old is not None and old is not target and not _same_definition(old, target):
                raise ValueError(
                    f"{self.kind} registry: name {key!r} is already registered by {_where(old)}; "
                    f"the second definition is {_where(target)}. Give one of them another "
                    f"name with @register(name=...)"
                )
            self._table[key] = target
            return target

        if obj is None:
            return _add
        if isinstance(obj, str):  # @R.register("name")
            name = obj
            return _add
        return _add(obj)

    # ----------------------------------------------------------------------------- lookup
    def get(self, name: str) -> Any:
        """The entry registered as ``name``; ``KeyError`` lists what exists, with a did-you-mean."""
        try:
            return self._table[name]
        except KeyError:
            pass
        names = sorted(self._table)
        close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)
        close += [n for n in names if n.lower() == str(name).lower() and n not in close]
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise KeyError(f"{self.kind} registry has no entry {name!r}.{hint} Registered: {names}") from None

    def list(self, pattern: str | None = None) -> list[str]:
        """Sorted registered names, optionally filtered by a glob ``pattern`` (``"*ViT*"``)."""
        names = sorted(self._table)
        if pattern is None:
            return names
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.list()})"

    # ----------------------------------------------------------------------------- building
    def build(self, cfg: Mapping[str, Any] | Any, **defaults: Any) -> Any:
        """Build an instance from ``{"type": NAME, **kwargs}``.

        ``defaults`` fill keyword arguments the config does not set (the config wins). An
        already-built object (not a mapping) is returned unchanged. Keyword arguments the
        constructor does not accept raise ``TypeError`` listing the accepted ones.
        """
        if not isinstance(cfg, Mapping):
            if cfg is None:
                raise TypeError(f"{self.kind} config is None; expected a dict with a 'type' key")
            return cfg
        if "type" not in cfg:
            raise TypeError(f"{self.kind} config {dict(cfg)!r} has no 'type' key; add one of {self.list()}")
        kind = cfg["type"]
        factory = kind if callable(kind) and not isinstance(kind, str) else self.get(kind)
        kwargs: dict[str, Any] = {k: v for k, v in cfg.items() if k != "type"}
        if self.recursive:
            kwargs = {k: self._build_nested(k, v) for k, v in kwargs.items()}
        for k, v in defaults.items():
            kwargs.setdefault(k, v)
        _check_signature(self.kind, kind, factory, kwargs)
        return factory(**kwargs)

    def _build_nested(self, key: str, value: Any) -> Any:
        reg = self.children.get(key, self)
        if isinstance(value, Mapping) and "type" in value:
            return reg.build(value)
        if isinstance(value, list | tuple) and any(isinstance(v, Mapping) and "type" in v for v in value):
            return type(value)(reg.build(v) if isinstance(v, Mapping) else v for v in value)
        return value


def _same_definition(a: Any, b: Any) -> bool:
    """True for a re-import of the same class (same module and qualified name)."""
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None),
        getattr(b, "__qualname__", None),
    )


def _check_signature(kind: str, name: Any, factory: Callable[..., Any], kwargs: dict) -> None:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(**kwargs)
    except TypeError as err:
        accepted = [
            p.name for p in sig.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        raise TypeError(
            f"cannot build {kind} {name!r} from config keys {sorted(kwargs)}: {err}. "
            f"Accepted keys: {accepted}"
        ) from None


# One registry per component kind. VLAs build their own slots (see BaseVLA.build_slots).
VISION_BACKBONES = Registry("vision_backbone")
LLM_BACKBONES = Registry("llm_backbone")
PROJECTORS = Registry("projector")
TEXT_ENCODERS = Registry("text_encoder")
HEADS = Registry("vla_head")
VLM_BACKBONES = Registry(
    "vlm_backbone",
    children={"vision": VISION_BACKBONES, "llm": LLM_BACKBONES, "projector": PROJECTORS},
)
VLAS = Registry("vla", recursive=False)

SLOT_REGISTRIES: dict[str, Registry] = {
    "vision_backbone": VISION_BACKBONES,
    "llm_backbone": LLM_BACKBONES,
    "vlm_backbone": VLM_BACKBONES,
    "projector": PROJECTORS,
    "vla_head": HEADS,
    "text_encoder": TEXT_ENCODERS,
}
