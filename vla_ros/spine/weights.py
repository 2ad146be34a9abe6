"""Checkpoint loading with per-VLA name mapping and a strict report.

Sources: a ``.safetensors`` file, a torch file (``.pt``, ``.pth``, ``.bin``, ``.ckpt``; read with
``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary objects), or a
folder holding either (all ``*.safetensors`` shards are merged).

Name mapping (FluxVLA direction) maps a *model* prefix to a *checkpoint* prefix::

    name_mapping = {"vlm_backbone.llm": "language_model.model", "vision_backbone": ""}

For every model key the first entry (in order) whose model prefix matches at a ``.`` boundary
rewrites it; keys no entry matches keep their own names. An empty model prefix is rejected (it
would match everything); an empty checkpoint prefix means "the checkpoint is this module alone".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from vla_ros.contract.errors import VlaRosError

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
_WRAPPER_KEYS = ("state_dict", "model", "module", "model_state_dict")


class WeightLoadError(VlaRosError, RuntimeError):
    """Strict load failed; ``.report`` holds the full :class:`LoadReport`."""

    def __init__(self, message: str, report: LoadReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class LoadReport:
    """What a load did: keys loaded, missing, unexpected and shape-mismatched."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model keys with no checkpoint tensor
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys nothing used
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every model key loaded and every checkpoint key was used."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, examples: int = 5) -> str:
        """Counts with the first ``examples`` keys of each problem."""

        def ex(items: list) -> str:
            shown = ", ".join(str(i) for i in items[:examples])
            more = f", ... (+{len(items) - examples})" if len(items) > examples else ""
            return f"[{shown}{more}]"

        lines = [f"loaded {len(self.loaded)} tensors"]
        if self.missing:
            lines.append(f"missing {len(self.missing)} (in model, not in checkpoint): {ex(self.missing)}")
        if self.unexpected:
            lines.append(
                f"unexpected {len(self.unexpected)} (in checkpoint, not used): {ex(self.unexpected)}"
            )
        if self.mismatched:
            mm = [f"{k} model{m} vs checkpoint{c}" for k, m, c in self.mismatched]
            lines.append(f"shape-mismatched {len(self.mismatched)}: {ex(mm)}")
        return "; ".join(lines)


# ----------------------------------------------------------------------------- reading
def _torch_file(path: Path) -> dict[str, Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler refuses anything but tensors and containers
        raise ValueError(
            f"cannot read {path} as a weights-only torch file ({err}); re-save it as a plain "
            "state_dict of tensors or as safetensors"
        ) from err
    for _ in range(3):  # unwrap {"state_dict": {...}} style wrappers
        if isinstance(obj, Mapping) and not all(isinstance(v, Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state_dict")
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f"{path} has non-tensor entries {bad[:5]}; expected a flat state_dict of tensors")
    return dict(obj)


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """Read a flat ``{name: tensor}`` from a safetensors / torch file or a folder of them."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if path.is_dir():
        shards = sorted(path.glob("*.safetensors"))
        if shards:
            out: dict[str, Tensor] = {}
            for shard in shards:
                for k, v in load_file(str(shard)).items():
                    if k in out:
                        raise ValueError(f"key {k!r} appears in more than one shard in {path}")
                    out[k] = v
            return out
        files = sorted(p for p in path.iterdir() if p.suffix in TORCH_SUFFIXES)
        if len(files) == 1:
            return _torch_file(files[0])
        raise FileNotFoundError(
            f"folder {path} has no *.safetensors and {len(files)} torch files "
            f"({[f.name for f in files]}); pass the file itself"
        )
    if path.suffix == ".safetensors":
        return load_file(str(path))
    if path.suffix in TORCH_SUFFIXES:
        return _torch_file(path)
    raise ValueError(
        f"unknown checkpoint type {path.suffix!r} for {path}; use .safetensors or one of {TORCH_SUFFIXES}"
    )


def save_weights(
    weights: nn.Module | Mapping[str, Tensor],
    path: str | Path,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a module's state_dict (or a flat dict) as safetensors; shared tensors are copied."""
    sd = weights.state_dict() if isinstance(weights, nn.Module) else dict(weights)
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    save_file(flat, str(path), metadata=meta or None)
    return path


# ----------------------------------------------------------------------------- mapping
def _check_mapping(name_mapping: Mapping[str, str]) -> list[tuple[str, str]]:
    pairs = []
    for mp, cp in name_mapping.items():
        if not isinstance(mp, str) or not isinstance(cp, str):
            raise TypeError(f"name_mapping entries must be str -> str, got {mp!r}: {cp!r}")
        mp, cp = mp.strip("."), cp.strip(".")
        if not mp:
            raise ValueError(
                f"name_mapping has an empty model prefix (-> {cp!r}); it would match every key. "
                "Name the model prefix, e.g. 'vision_backbone'"
            )
        pairs.append((mp, cp))
    return pairs


def map_name(key: str, pairs: list[tuple[str, str]]) -> str:
    """Checkpoint name of model ``key`` under the (checked) mapping; first match wins."""
    for mp, cp in pairs:
        if key == mp or key.startswith(mp + "."):
            rest = key[len(mp) + 1 :]
            if not cp:
                return rest
            return f"{cp}.{rest}" if rest else cp
    return key


def load_weights(
    model: nn.Module,
    source: str | Path | Mapping[str, Tensor],
    name_mapping: Mapping[str, str] | None = None,
    strict: bool = True,
) -> LoadReport:
    """Load ``source`` into ``model`` through ``name_mapping``.

    ``strict=True`` (default) loads nothing unless every model key is found with the right shape
    and every checkpoint key is used, and raises :class:`WeightLoadError` with counts and examples
    otherwise. ``strict=False`` loads what matches and returns the report of the rest.
    """
    ckpt = dict(source) if isinstance(source, Mapping) else read_checkpoint(source)
    pairs = _check_mapping(name_mapping or {})
    target = model.state_dict()
    report = LoadReport()
    used: set[str] = set()
    to_load: dict[str, Tensor] = {}
    for key, tensor in target.items():
        ck = map_name(key, pairs)
        if ck not in ckpt:
            report.missing.append(key if ck == key else f"{key} (as {ck})")
            continue
        used.add(ck)
        src = ckpt[ck]
        if tuple(src.shape) != tuple(tensor.shape):
            report.mismatched.append((key, tuple(tensor.shape), tuple(src.shape)))
            continue
        to_load[key] = src
    report.unexpected = sorted(k for k in ckpt if k not in used)
    report.loaded = sorted(to_load)
    if strict and not report.ok:
        hint = (
            "check name_mapping (model prefix -> checkpoint prefix) or pass strict=False for a partial load"
        )
        raise WeightLoadError(f"strict weight load failed: {report.summary()}. {hint}", report)
    with torch.no_grad():
        for key, src in to_load.items():
            target[key].copy_(src.to(dtype=target[key].dtype))
    return report
