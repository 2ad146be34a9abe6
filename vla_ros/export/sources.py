"""What the user handed over -> a model: foreign checkpoint folders for ``vla-ros export``.

A LeRobot ``pretrained_model`` folder (``config.json`` + ``model.safetensors`` + processor files,
or the pre-0.4 layout) is read by :mod:`vla_ros.spine.checkpoints` (no LeRobot import), built as
the spine model of its family with the weights loaded strictly, and exported like any spine
model. The card gets:

- cameras: ``observation.images.<cam>`` -> camera ``<cam>`` at the feature's ``H x W``;
- joints: ``observation.state`` / ``action`` -> ``state_joints`` / ``action_joints``, named from
  the feature's ``names`` in config.json when present, else ``joint_0..``;
- normalization: state and action as the card's ``(mean, std)`` pair reproducing LeRobot's mode
  (:func:`~vla_ros.spine.checkpoints.normalize.card_affine`); images are normalized inside the
  model graph with their ``[3, 1, 1]`` statistics;
- ``io.horizon`` = ``chunk_size``, ``io.dt`` = 1 / ``fps`` (LeRobot configs do not record the
  dataset's rate: pass ``--fps``, default 30), ``io.extra.lerobot`` = ``n_action_steps``,
  ``temporal_ensemble_coeff``, the modes per feature and the source folder.

Bad input (not a LeRobot folder, unsupported type, config/weights mismatch, a feature the card
cannot map) raises :class:`SourceError` before anything is written; the CLI exits 2 on it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from vla_ros.export.card import Normalization, PolicyCard, Stats
from vla_ros.runtime.errors import ExportError

DEFAULT_FPS = 30.0


class SourceError(ExportError):
    """The model source the user handed over cannot become a policy (bad input; CLI exit 2)."""


def is_foreign_folder(path: str | Path) -> bool:
    """True for a folder ``vla-ros export`` reads as a LeRobot checkpoint: it (or its
    ``pretrained_model`` child) holds a ``config.json`` and no ``card.yaml``."""
    p = Path(path)
    if not p.is_dir() or (p / "card.yaml").is_file():
        return False
    return (p / "config.json").is_file() or (p / "pretrained_model" / "config.json").is_file()


def _names(cfg: dict[str, Any], feature: str, dim: int) -> list[str] | None:
    spec = {**(cfg.get("input_features") or {}), **(cfg.get("output_features") or {})}.get(feature) or {}
    names = spec.get("names")
    if isinstance(names, dict):  # LeRobot dataset style {"motors": [...]}
        names = next(iter(names.values()), None)
    if isinstance(names, list) and len(names) == dim and all(isinstance(n, str) for n in names):
        return list(names)
    return None


def _stats(ckpt: Any, feature: str, dim: int, inverse: bool) -> Stats:
    from vla_ros.spine.checkpoints import card_affine

    mode = ckpt.mode_of(feature)
    if mode == "IDENTITY":
        return Stats.identity(dim)
    mean, std = card_affine(mode, ckpt.stats[feature], ckpt.eps, inverse=inverse)
    return Stats(mean=mean, std=std)


@dataclasses.dataclass
class LeRobotSource:
    """A LeRobot folder turned into a spine model plus what its card needs."""

    model: Any
    model_config: dict[str, Any]
    name: str
    state_joints: list[str]
    action_joints: list[str]
    normalization: Normalization
    provenance: dict[str, Any]


def load_lerobot_source(path: str | Path, fps: float | None = None, name: str | None = None) -> LeRobotSource:
    """Read and build a LeRobot checkpoint folder; :class:`SourceError` on any bad input."""
    from vla_ros.spine.checkpoints import LeRobotCheckpointError, read_lerobot_folder
    from vla_ros.spine.checkpoints.lerobot import LEROBOT_BUILDERS

    if fps is not None and not fps > 0:
        raise SourceError(f"--fps {fps} must be > 0 (the rate the policy's dataset was recorded at)")
    try:
        ckpt = read_lerobot_folder(path)
        model = LEROBOT_BUILDERS[ckpt.policy_type](ckpt)
    except LeRobotCheckpointError as e:
        raise SourceError(str(e)) from e
    # LeRobot configs do not record the dataset's rate; the card's dt comes from --fps
    dt = 1.0 / float(fps or ckpt.config.get("fps") or DEFAULT_FPS)
    model.io = dataclasses.replace(model.io, dt=dt)
    cfg = dict(model.config)
    cfg["io"] = {**cfg["io"], "dt": dt}
    cfg.pop("name", None)
    io = model.io
    state_names = _names(ckpt.config, "observation.state", io.state_dim)
    state_joints = state_names or [f"joint_{i}" for i in range(io.state_dim)]
    action_joints = _names(ckpt.config, "action", io.action_dim) or (
        state_joints if io.action_dim == io.state_dim else [f"joint_{i}" for i in range(io.action_dim)]
    )
    norm = Normalization(
        state=_stats(ckpt, "observation.state", io.state_dim, inverse=False),
        action=_stats(ckpt, "action", io.action_dim, inverse=True),
    )
    folder = ckpt.path
    default_name = folder.parent.name if folder.name == "pretrained_model" else folder.name
    prov = {
        "source": f"LeRobot {ckpt.policy_type} checkpoint ({ckpt.layout} layout)",
        "checkpoint": str(folder),
        "lerobot_config": {k: ckpt.config.get(k) for k in ("type", "chunk_size", "n_action_steps")},
        "warnings": list(ckpt.warnings),
    }
    return LeRobotSource(
        model, cfg, name or default_name or ckpt.policy_type, state_joints, action_joints, norm, prov
    )


def export_lerobot(
    path: str | Path, out_dir: str | Path, fps: float | None = None, name: str | None = None, **kwargs: Any
) -> PolicyCard:
    """``vla-ros export PATH`` for a LeRobot folder: build, export (parity-gated), write the card.

    ``kwargs`` go to :func:`vla_ros.export.api.export_policy` (backends, precision, opset, ...).
    Raises :class:`SourceError` before writing anything when the folder is bad input.
    """
    from vla_ros.export.api import export_policy

    src = load_lerobot_source(path, fps=fps, name=name)
    card = export_policy(
        src.model,
        out_dir,
        name=src.name,
        state_joints=src.state_joints,
        action_joints=src.action_joints,
        normalization=src.normalization,
        delta_to_absolute=False,
        model_config=src.model_config,
        **kwargs,
    )
    card.provenance.update(src.provenance)
    card.save()
    return card


__all__ = ["SourceError", "export_lerobot", "is_foreign_folder", "load_lerobot_source"]
