"""The one list of doctor checks: each judgement registers its id and title once, here.

A judgement is a function decorated with :func:`check`::

    @check("workspace.symlink", "symlink install", args=lambda f: (f.ctx, f.workspace))
    def check_symlink_install(ctx: DoctorContext, ws: Workspace | None) -> Verdict: ...

Its body returns a :class:`Verdict` (status, message, fix, details) made with :func:`verdict`;
the decorator turns it into a :class:`~vla_ros.doctor.result.CheckResult` carrying the registered
id and title, so a judgement called directly (as the tests do) returns the same result the report
shows. ``args`` says which :class:`~vla_ros.doctor.facts.Facts` the judgement reads; the CLI report
and ``doctor_node`` both run :func:`run_registered`, which iterates :data:`REGISTRY` in report
order (groups in :data:`GROUP_TITLES` order, then registration order).
"""

from __future__ import annotations

import functools
import re
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vla_ros.doctor.result import CheckResult, Status

if TYPE_CHECKING:
    from vla_ros.doctor.facts import Facts

#: group -> heading in the readable report, in report order
GROUP_TITLES = {
    "ros": "ROS distro",
    "python": "Python",
    "workspace": "Workspace",
    "middleware": "Middleware",
    "gpu": "GPU and Jetson",
    "inference": "Inference stack",
    "card": "Policy card",
    "live": "Live graph",
}

#: a check id: ``group.name``, lower case (the JSON report's schema pattern)
ID_PATTERN = r"^[a-z]+\.[a-z0-9_]+$"

#: the modules whose judgements make up the report (imported by :func:`checks`)
CHECK_MODULES = (
    "vla_ros.doctor.ros_env",
    "vla_ros.doctor.workspace",
    "vla_ros.doctor.middleware",
    "vla_ros.doctor.gpu",
    "vla_ros.doctor.inference",
    "vla_ros.doctor.card_checks",
    "vla_ros.doctor.schedule",
    "vla_ros.doctor.live",
)


class RegistryError(ValueError):
    """A check registered with an id that is malformed, in an unknown group, or taken."""


@dataclass
class Verdict:
    """What a judgement concluded: ``fix`` is what to do about a WARN/FAIL (dropped for PASS
    and SKIP), ``details`` JSON-serializable data."""

    status: Status
    message: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_result(self, id_: str, title: str) -> CheckResult:
        """This verdict as the report line of check ``id_``."""
        fix = None if self.status in (Status.PASS, Status.SKIP) else self.fix
        return CheckResult(id_, title, self.status, self.message, fix, dict(self.details))


def verdict(status: Status, message: str, fix: str | None = None, **details: Any) -> Verdict:
    """Shorthand constructor of a :class:`Verdict`."""
    return Verdict(status, message, fix, dict(details))


@dataclass(frozen=True)
class CheckSpec:
    """One registered check: ``fn`` returns its :class:`CheckResult` from the arguments
    ``args(facts)`` gives; ``needs_live`` checks run only when the graph was sampled."""

    id: str
    title: str
    fn: Callable[..., CheckResult]
    args: Callable[[Facts], tuple[Any, ...]]
    needs_live: bool = False

    @property
    def group(self) -> str:
        """The part of ``id`` before the dot."""
        return self.id.split(".", 1)[0]

    def run(self, facts: Facts) -> CheckResult:
        """The check on ``facts``, timed; a crash (in gathering its facts or in the judgement)
        becomes a FAIL naming it, never an exception."""
        t0 = time.perf_counter()
        try:
            res = self.fn(*self.args(facts))
        except Exception as exc:  # a check must never take the doctor down
            res = CheckResult(
                self.id,
                self.title,
                Status.FAIL,
                f"the check itself crashed: {exc!r}",
                "please report this with the traceback in details",
                {"traceback": traceback.format_exc()[-2000:]},
            )
        res.duration_s = time.perf_counter() - t0
        return res


#: id -> spec, in registration order (see :func:`checks` for report order)
REGISTRY: dict[str, CheckSpec] = {}


def check(
    id_: str,
    title: str,
    *,
    args: Callable[[Facts], tuple[Any, ...]] | None = None,
    needs_live: bool = False,
) -> Callable[[Callable[..., Verdict]], Callable[..., CheckResult]]:
    """Register the decorated judgement as check ``id_`` (``group.name``) titled ``title``.

    ``args`` maps the run's facts to the judgement's positional arguments (default: just the
    context). Raises :class:`RegistryError` for a malformed id, an unknown group or an id that is
    already registered.
    """
    if not re.fullmatch(ID_PATTERN, id_) or id_.split(".")[0] not in GROUP_TITLES:
        raise RegistryError(
            f"check id {id_!r} must be 'group.name' with a group of {list(GROUP_TITLES)} and a "
            "lower-case name of letters, digits and '_'"
        )
    if id_ in REGISTRY:
        raise RegistryError(f"check id {id_!r} is registered twice ({REGISTRY[id_].fn.__qualname__})")

    def decorate(fn: Callable[..., Verdict]) -> Callable[..., CheckResult]:
        @functools.wraps(fn)
        def judged(*a: Any, **kw: Any) -> CheckResult:
            return fn(*a, **kw).as_result(id_, title)

        REGISTRY[id_] = CheckSpec(id_, title, judged, args or (lambda f: (f.ctx,)), needs_live)
        return judged

    return decorate


def checks(groups: Iterable[str] | None = None) -> list[CheckSpec]:
    """Every registered check (of ``groups``, default all) in report order."""
    import importlib

    for module in CHECK_MODULES:
        importlib.import_module(module)
    order = {g: i for i, g in enumerate(GROUP_TITLES)}
    want = set(GROUP_TITLES if groups is None else groups)
    specs = [s for s in REGISTRY.values() if s.group in want]
    return sorted(specs, key=lambda s: order[s.group])  # stable: registration order within a group


def run_registered(facts: Facts, groups: Iterable[str]) -> Iterator[CheckResult]:
    """Run the registered checks of ``groups`` on ``facts`` in report order (live checks only
    when ``facts.observation`` is there)."""
    for spec in checks(groups):
        if spec.needs_live and facts.observation is None:
            continue
        yield spec.run(facts)
