"""Policy-card checks (check 7): files and hashes, schema, chunk timing against the measured
inference latency, control rate against the policy's fps."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from vla_ros.doctor.result import CheckResult, DoctorContext, Status, result

CARD_FILE = "card.yaml"


def load_card(card_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(data, None)`` from ``card_dir/card.yaml``, or ``(None, why it failed)``."""
    path = Path(card_dir)
    if path.is_file():
        path = path.parent
    f = path / CARD_FILE
    if not f.is_file():
        return None, f"no {CARD_FILE} in {path}"
    try:
        data = yaml.safe_load(f.read_text())
    except yaml.YAMLError as exc:
        return None, f"{f} is not valid YAML: {str(exc).splitlines()[0]}"
    if not isinstance(data, dict):
        return None, f"{f} does not hold a mapping"
    return data, None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def check_card_files(ctx: DoctorContext, card_dir: Path | None) -> CheckResult:
    """``card.yaml`` present and readable; every named file present; SHA-256 hashes match."""
    cid, title = "card.files", "card files"
    if card_dir is None:
        return result(cid, title, Status.SKIP, "no policy card given (--card DIR)")
    card_dir = Path(card_dir)
    data, err = load_card(card_dir)
    if data is None:
        return result(
            cid,
            title,
            Status.FAIL,
            err or "unreadable card",
            f"export a policy into it: vla-ros export MODEL.yaml --out {card_dir}",
            card=str(card_dir),
        )
    files = {str(k): str(v) for k, v in (data.get("files") or {}).items()}
    hashes = {str(k): str(v) for k, v in (data.get("hashes") or {}).items()}
    missing = [f"{role}: {rel}" for role, rel in files.items() if not (card_dir / rel).is_file()]
    bad, unhashed = [], []
    for _role, rel in files.items():
        p = card_dir / rel
        if not p.is_file():
            continue
        want = hashes.get(rel)
        if not want:
            unhashed.append(rel)
        elif _sha256(p) != want.lower():
            bad.append(rel)
    details = {
        "card": str(card_dir),
        "files": files,
        "missing": missing,
        "hash_mismatch": bad,
        "unhashed": unhashed,
    }
    reexport = "re-export the policy (vla-ros export ... --out " + str(card_dir) + ")"
    if not files:
        return result(cid, title, Status.FAIL, "the card names no model files", reexport, **details)
    if missing:
        return result(
            cid,
            title,
            Status.FAIL,
            f"missing file(s): {', '.join(missing)}",
            f"copy the whole card folder, or {reexport}",
            **details,
        )
    if bad:
        return result(
            cid,
            title,
            Status.FAIL,
            f"SHA-256 mismatch (corrupt or replaced): {', '.join(bad)}",
            f"copy the card folder again, or {reexport}",
            **details,
        )
    if unhashed:
        return result(
            cid, title, Status.WARN, f"no recorded hash for {', '.join(unhashed)}", reexport, **details
        )
    return result(
        cid, title, Status.PASS, f"{len(files)} file(s) present, hashes match ({', '.join(files)})", **details
    )


def check_card_schema(ctx: DoctorContext, card_dir: Path | None) -> CheckResult:
    """The card validates (:class:`vla_ros.export.card.PolicyCard` rules, or the contract keys)."""
    cid, title = "card.schema", "card schema"
    if card_dir is None:
        return result(cid, title, Status.SKIP, "no policy card given (--card DIR)")
    data, err = load_card(Path(card_dir))
    if data is None:
        return result(cid, title, Status.SKIP, f"card not readable ({err})")
    try:
        from vla_ros.export.card import PolicyCard
    except Exception:  # the export package is optional for the doctor
        PolicyCard = None
    if PolicyCard is not None:
        try:
            card = PolicyCard.from_dict(data, root=Path(card_dir))
        except Exception as exc:
            return result(
                cid,
                title,
                Status.FAIL,
                f"invalid card: {exc}",
                "re-export the policy with vla-ros export (do not edit card.yaml by hand)",
                card=str(card_dir),
            )
        return result(
            cid,
            title,
            Status.PASS,
            f"{card.policy_id} ({card.family}): {card.io.state_dim} state, "
            f"{card.io.action_dim} action dims, horizon {card.io.horizon}, dt "
            f"{card.io.dt:g} s",
            policy_id=card.policy_id,
            family=card.family,
        )
    problems = _contract_problems(data)
    if problems:
        return result(
            cid,
            title,
            Status.FAIL,
            "invalid card: " + "; ".join(problems),
            "re-export the policy with vla-ros export",
            problems=problems,
        )
    return result(cid, title, Status.PASS, f"{data['name']} ({data['family']})", family=data["family"])


def _contract_problems(data: dict[str, Any]) -> list[str]:
    out = [
        f"missing key {k!r}"
        for k in ("name", "family", "io", "state_joints", "action_joints", "normalization", "files")
        if k not in data
    ]
    if out:
        return out
    io = data["io"] or {}
    for key, dim in (("state_joints", "state_dim"), ("action_joints", "action_dim")):
        if len(data[key] or []) != io.get(dim):
            out.append(f"{key} has {len(data[key] or [])} names but io.{dim} is {io.get(dim)}")
    return out


def card_timing(data: dict[str, Any]) -> tuple[int, float] | None:
    """``(horizon, dt)`` from the card's io block, or ``None``."""
    io = data.get("io") or {}
    try:
        return int(io["horizon"]), float(io["dt"])
    except (KeyError, TypeError, ValueError):
        return None


def card_latency_s(data: dict[str, Any]) -> tuple[float, str] | None:
    """A measured inference latency recorded in the card (``latency_ms`` under provenance or
    parity; a mapping takes its p99, p90, max or mean), as ``(seconds, where)``."""
    for section in ("provenance", "parity", "bench"):
        stack = [(section, data.get(section))]
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


def check_card_timing(
    ctx: DoctorContext, card_dir: Path | None, latency_s: float | None = None, latency_source: str = ""
) -> CheckResult:
    """The chunk (horizon x dt) must outlast the measured inference latency, with margin."""
    cid, title = "card.timing", "chunk vs latency"
    if card_dir is None:
        return result(cid, title, Status.SKIP, "no policy card given (--card DIR)")
    data, err = load_card(Path(card_dir))
    hd = card_timing(data) if data else None
    if hd is None:
        return result(cid, title, Status.SKIP, f"card has no io.horizon/io.dt ({err or 'io'})")
    horizon, dt = hd
    if latency_s is None:
        found = card_latency_s(data or {})
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
        return result(
            cid,
            title,
            Status.SKIP,
            f"chunk covers {chunk_s * 1e3:.0f} ms; no measured latency (use --live with "
            "a running policy_node, or --latency-ms)",
            **details,
        )
    ms = latency_s * 1e3
    if latency_s >= chunk_s:
        return result(
            cid,
            title,
            Status.FAIL,
            f"inference takes {ms:.0f} ms but a chunk covers only {chunk_s * 1e3:.0f} ms "
            f"({horizon} x {dt * 1e3:g} ms): the robot runs out of actions",
            "use a faster backend (tensorrt, fp16), a smaller model, or export with a longer horizon",
            **details,
        )
    if latency_s > 0.5 * chunk_s:
        return result(
            cid,
            title,
            Status.WARN,
            f"inference {ms:.0f} ms uses {latency_s / chunk_s:.0%} of the {chunk_s * 1e3:.0f} ms "
            "chunk: little overlap left for temporal ensembling",
            "aim for latency under half the chunk: faster backend or longer horizon",
            **details,
        )
    return result(
        cid,
        title,
        Status.PASS,
        f"inference {ms:.0f} ms within the {chunk_s * 1e3:.0f} ms chunk ({latency_s / chunk_s:.0%})",
        **details,
    )


def check_control_rate(
    ctx: DoctorContext, card_dir: Path | None, control_rate_hz: float | None = None
) -> CheckResult:
    """The executor's control rate against the policy's fps (``1 / dt``)."""
    cid, title = "card.control_rate", "control rate vs policy fps"
    if card_dir is None:
        return result(cid, title, Status.SKIP, "no policy card given (--card DIR)")
    data, _ = load_card(Path(card_dir))
    hd = card_timing(data) if data else None
    if hd is None:
        return result(cid, title, Status.SKIP, "card has no io.dt")
    fps = 1.0 / hd[1]
    details = {"policy_fps": fps, "control_rate_hz": control_rate_hz}
    if control_rate_hz is None:
        return result(
            cid,
            title,
            Status.SKIP,
            f"policy runs at {fps:g} fps; control rate unknown (--control-rate HZ)",
            **details,
        )
    if control_rate_hz <= 0:
        return result(
            cid,
            title,
            Status.FAIL,
            f"control rate {control_rate_hz:g} Hz",
            "set the executor's control rate to a positive value",
            **details,
        )
    if control_rate_hz < fps * 0.999:
        return result(
            cid,
            title,
            Status.WARN,
            f"control rate {control_rate_hz:g} Hz is below the policy's {fps:g} fps: actions are skipped",
            f"run the executor at >= {fps:g} Hz (it interpolates between actions)",
            **details,
        )
    return result(
        cid,
        title,
        Status.PASS,
        f"control {control_rate_hz:g} Hz >= policy {fps:g} fps (x{control_rate_hz / fps:.3g})",
        **details,
    )
