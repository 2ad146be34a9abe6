"""Policy-card checks (check 7): the card loads (:meth:`PolicyCard.load`, its validation), its
files are present with the recorded SHA-256 (:meth:`PolicyCard.path`), chunk timing against the
measured inference latency, control rate against the policy's fps.

The card is loaded once per run (:func:`load_card`) with the export package's own loader, so the
doctor judges a card exactly as ``policy_node`` and ``load_runtime`` will.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vla_ros.doctor.registry import Verdict, check, verdict
from vla_ros.doctor.result import DoctorContext, Status

if TYPE_CHECKING:
    from vla_ros.contract.card import PolicyCard

NO_CARD = "no policy card given (--card DIR)"
NOT_LOADED = "the card did not load (see card.schema)"


@dataclass
class CardLoad:
    """A card folder and what :meth:`PolicyCard.load` made of it: the card, or why it failed."""

    card_dir: Path
    card: PolicyCard | None = None
    error: str | None = None


def load_card(card_dir: str | Path) -> CardLoad:
    """Load ``card_dir`` with :meth:`vla_ros.contract.card.PolicyCard.load` (parse + validation).

    Never raises: a card that does not load comes back with ``error`` set to the loader's message
    (which names the file, the problem and the fix).
    """
    card_dir = Path(card_dir)
    try:
        from vla_ros.contract.card import PolicyCard
        from vla_ros.contract.errors import VlaRosError
    except Exception as exc:  # a broken torch/numpy install must not take the doctor down
        return CardLoad(
            card_dir, error=f"vla_ros.contract.card does not import here ({type(exc).__name__}: {exc})"
        )
    try:
        return CardLoad(card_dir, card=PolicyCard.load(card_dir))
    except VlaRosError as exc:
        return CardLoad(card_dir, error=str(exc))
    except Exception as exc:  # malformed values the loader does not anticipate
        return CardLoad(card_dir, error=f"{card_dir / 'card.yaml'} is malformed: {type(exc).__name__}: {exc}")


def reexport_fix(card_dir: Path) -> str:
    """What to do about a card that does not load."""
    return (
        f"re-export the policy into it: vla-ros export MODEL.yaml --out {card_dir} "
        "(do not edit card.yaml by hand)"
    )


def loaded_card(loaded: CardLoad | None) -> PolicyCard | Verdict:
    """The card a card check judges, or its SKIP verdict: no card given, or it did not load
    (``card.schema`` reports why)."""
    if loaded is None:
        return verdict(Status.SKIP, NO_CARD)
    if loaded.card is None:
        return verdict(Status.SKIP, NOT_LOADED)
    return loaded.card


@check("card.schema", "card loads", args=lambda f: (f.ctx, f.card_load))
def check_card_schema(ctx: DoctorContext, loaded: CardLoad | None) -> Verdict:
    """The card loads and validates (:meth:`PolicyCard.load`: keys, IOSpec, joint counts,
    normalization, precision, policy id)."""
    if loaded is None:
        return verdict(Status.SKIP, NO_CARD)
    if loaded.card is None:
        return verdict(
            Status.FAIL,
            loaded.error or "the card did not load",
            reexport_fix(loaded.card_dir),
            card=str(loaded.card_dir),
        )
    card = loaded.card
    return verdict(
        Status.PASS,
        f"{card.policy_id} ({card.family}, {card.layout}): {card.io.state_dim} state, "
        f"{card.io.action_dim} action dims, horizon {card.io.horizon}, dt {card.io.dt:g} s",
        card=str(loaded.card_dir),
        policy_id=card.policy_id,
        family=card.family,
        layout=card.layout,
    )


@check("card.files", "card files", args=lambda f: (f.ctx, f.card_load))
def check_card_files(ctx: DoctorContext, loaded: CardLoad | None) -> Verdict:
    """Every file the card names is present and matches its SHA-256 (:meth:`PolicyCard.path`)."""
    from vla_ros.contract.errors import VlaRosError

    card = loaded_card(loaded)
    if isinstance(card, Verdict):
        return card
    root = loaded.card_dir
    files = dict(card.files)
    missing, bad, unhashed = [], [], []  # roles
    errors: dict[str, str] = {}
    for role, rel in files.items():
        if not (root / rel).is_file():
            missing.append(role)
        elif not card.hashes.get(rel):
            unhashed.append(role)
        else:
            try:
                card.path(role, verify=True)
            except VlaRosError as exc:
                bad.append(role)
                errors[rel] = str(exc)
    details = {
        "card": str(root),
        "files": files,
        "missing": [files[r] for r in missing],
        "hash_mismatch": [files[r] for r in bad],
        "unhashed": [files[r] for r in unhashed],
        "errors": errors,
    }
    fix = f"copy the whole card folder again, or re-export: {card.export_command()}"
    if (missing or bad) and all(r.startswith("engine") for r in missing + bad):
        from vla_ros.runtime.trt_backend import rebuild_command

        fix = f"rebuild the engine(s) on this machine: {rebuild_command(card)}"
    if not files:
        return verdict(Status.FAIL, "the card names no model files", fix, **details)
    if missing:
        return verdict(
            Status.FAIL,
            "missing file(s): " + ", ".join(f"{r}: {files[r]}" for r in missing),
            fix,
            **details,
        )
    if bad:
        return verdict(
            Status.FAIL,
            "SHA-256 mismatch (corrupt or replaced): " + ", ".join(files[r] for r in bad),
            fix,
            **details,
        )
    if unhashed:
        return verdict(
            Status.WARN,
            "no recorded SHA-256 for "
            + ", ".join(files[r] for r in unhashed)
            + ": corruption would go unnoticed",
            f"re-export: {card.export_command()}",
            **details,
        )
    return verdict(Status.PASS, f"{len(files)} file(s) present, hashes match ({', '.join(files)})", **details)


def card_latency_s(card: PolicyCard) -> tuple[float, str] | None:
    """A measured inference latency recorded in the card (``latency_ms`` anywhere under
    ``provenance`` or ``parity``; a mapping takes its p99, p90, max, p50 or mean), as
    ``(seconds, where)``."""
    for section in ("provenance", "parity"):
        stack: list[tuple[str, Any]] = [(section, getattr(card, section))]
        while stack:
            where, node = stack.pop(0)
            if not isinstance(node, dict):
                continue
            for k, v in node.items():
                if k in ("latency_ms", "inference_latency_ms"):
                    if isinstance(v, int | float):
                        return float(v) / 1e3, f"{where}.{k}"
                    if isinstance(v, dict):
                        for q in ("p99", "p90", "max", "p50", "mean"):
                            if isinstance(v.get(q), int | float):
                                return float(v[q]) / 1e3, f"{where}.{k}.{q}"
                elif isinstance(v, dict):
                    stack.append((f"{where}.{k}", v))
    return None


@check("card.timing", "chunk vs latency", args=lambda f: (f.ctx, f.card_load, f.latency_s, f.latency_source))
def check_card_timing(
    ctx: DoctorContext,
    loaded: CardLoad | None,
    latency_s: float | None = None,
    latency_source: str = "",
) -> Verdict:
    """The chunk (horizon x dt) must outlast the measured inference latency, with margin."""
    card = loaded_card(loaded)
    if isinstance(card, Verdict):
        return card
    horizon, dt = card.io.chunk_shape[0], card.io.dt  # the published chunk (action_window)
    if latency_s is None:
        found = card_latency_s(card)
        if found:
            latency_s, latency_source = found
    chunk_s = horizon * dt
    details = {
        "horizon": horizon,
        "dt_s": dt,
        "chunk_s": chunk_s,
        "latency_s": latency_s,
        "latency_source": latency_source or None,
    }
    if latency_s is None:
        return verdict(
            Status.SKIP,
            f"chunk covers {chunk_s * 1e3:.0f} ms; no measured latency (use --live with "
            "a running policy_node, or --latency-ms)",
            **details,
        )
    ms = latency_s * 1e3
    if latency_s >= chunk_s:
        return verdict(
            Status.FAIL,
            f"inference takes {ms:.0f} ms but a chunk covers only {chunk_s * 1e3:.0f} ms "
            f"({horizon} x {dt * 1e3:g} ms): the robot runs out of actions",
            "use a faster backend (tensorrt, fp16), a smaller model, or export with a longer horizon",
            **details,
        )
    if latency_s > 0.5 * chunk_s:
        return verdict(
            Status.WARN,
            f"inference {ms:.0f} ms uses {latency_s / chunk_s:.0%} of the {chunk_s * 1e3:.0f} ms "
            "chunk: little overlap left for temporal ensembling",
            "aim for latency under half the chunk: faster backend or longer horizon",
            **details,
        )
    return verdict(
        Status.PASS,
        f"inference {ms:.0f} ms within the {chunk_s * 1e3:.0f} ms chunk ({latency_s / chunk_s:.0%})",
        **details,
    )


@check(
    "card.control_rate",
    "control rate vs policy fps",
    args=lambda f: (f.ctx, f.card_load, f.opts.control_rate_hz),
)
def check_control_rate(
    ctx: DoctorContext, loaded: CardLoad | None, control_rate_hz: float | None = None
) -> Verdict:
    """The executor's control rate against the policy's fps (``1 / dt``)."""
    card = loaded_card(loaded)
    if isinstance(card, Verdict):
        return card
    fps = 1.0 / card.io.dt
    details = {"policy_fps": fps, "control_rate_hz": control_rate_hz}
    if control_rate_hz is None:
        return verdict(
            Status.SKIP,
            f"policy runs at {fps:g} fps; control rate unknown (--control-rate HZ)",
            **details,
        )
    if control_rate_hz <= 0:
        return verdict(
            Status.FAIL,
            f"control rate {control_rate_hz:g} Hz",
            "set the executor's control rate to a positive value",
            **details,
        )
    if control_rate_hz < fps * 0.999:
        return verdict(
            Status.WARN,
            f"control rate {control_rate_hz:g} Hz is below the policy's {fps:g} fps: actions are skipped",
            f"run the executor at >= {fps:g} Hz (it interpolates between actions)",
            **details,
        )
    return verdict(
        Status.PASS,
        f"control {control_rate_hz:g} Hz >= policy {fps:g} fps (x{control_rate_hz / fps:.3g})",
        **details,
    )
