"""The policy card: one folder that says everything a runtime needs about an exported policy.

``card.yaml`` holds the family, the :class:`~vla_ros.contract.io_spec.IOSpec`, joint names, normalization
statistics, the files per backend with their SHA-256, export settings, provenance and parity
figures. Nodes and eval read the card; nothing is hard-coded per robot.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vla_ros.contract.errors import CardError, ModelFileError
from vla_ros.contract.io_spec import IOSpec

CARD_FILE = "card.yaml"
CARD_VERSION = 1
LAYOUTS = ("monolithic", "split", "dual")
PRECISIONS = ("fp32", "fp16", "bf16", "fp8", "int8")  # int8: ONNX graphs for CPUs
# file roles a card may name; values are paths relative to the card folder
FILE_ROLES = (
    "onnx",
    "onnx_prefix",
    "onnx_step",
    "onnx_slow",
    "onnx_fast",
    # inference-time real-time chunking: the guided Euler step (flow_matching rtc: {guidance})
    "onnx_step_rtc",
    # with export precision int8: the fp32 graphs the int8 ones were quantized from
    "onnx_fp32",
    "onnx_prefix_fp32",
    "onnx_step_fp32",
    "engine",
    "engine_prefix",
    "engine_step",
    "engine_step_rtc",
    "engine_slow",
    "engine_fast",
    "safetensors",
    "timing_cache",
    # a tokenizer file the card carries (LeRobot SmolVLA: the VLM's tokenizer.json and config)
    "tokenizer",
    "tokenizer_config",
)
# files that define the policy's numbers (engines are per-device builds of the ONNX and are
# left out of the policy id so that rebuilding an engine on another Jetson keeps the id)
_IDENTITY_ROLES = (
    *("onnx", "onnx_prefix", "onnx_step", "onnx_step_rtc", "onnx_slow", "onnx_fast", "safetensors"),
    *("tokenizer", "tokenizer_config"),
)
_REQUIRED_KEYS = ("name", "family", "io", "state_joints", "action_joints", "normalization", "files")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class Stats:
    """Per-dimension mean and standard deviation; ``x_norm = (x - mean) / std``."""

    mean: list[float]
    std: list[float]

    @classmethod
    def identity(cls, dim: int) -> Stats:
        """Statistics that leave values unchanged."""
        return cls(mean=[0.0] * dim, std=[1.0] * dim)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain-data form for YAML."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}


@dataclass
class Normalization:
    """State and action statistics used by pre- and post-processing."""

    state: Stats
    action: Stats

    @classmethod
    def identity(cls, state_dim: int, action_dim: int) -> Normalization:
        """No normalization: mean 0, std 1."""
        return cls(Stats.identity(state_dim), Stats.identity(action_dim))

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "normalization") -> Normalization:
        """Parse ``{state: {mean, std}, action: {mean, std}}``; raises :class:`CardError`."""
        if not isinstance(d, dict):
            raise CardError(f"{where} must be a mapping with 'state' and 'action', got {d!r}")
        out = {}
        for part in ("state", "action"):
            sub = d.get(part)
            if not isinstance(sub, dict) or "mean" not in sub or "std" not in sub:
                raise CardError(f"{where}.{part} must be a mapping with 'mean' and 'std' lists, got {sub!r}")
            try:
                mean = [float(v) for v in sub["mean"]]
                std = [float(v) for v in sub["std"]]
            except (TypeError, ValueError) as e:
                raise CardError(f"{where}.{part} mean/std must be lists of numbers: {e}") from e
            out[part] = Stats(mean=mean, std=std)
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for YAML."""
        return {"state": self.state.to_dict(), "action": self.action.to_dict()}


@dataclass
class PolicyCard:
    """An exported policy: settings plus the files per backend, rooted at :attr:`root`."""

    name: str
    family: str
    io: IOSpec
    state_joints: list[str]
    action_joints: list[str]
    normalization: Normalization
    files: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    postprocess: dict[str, Any] = field(default_factory=lambda: {"delta_to_absolute": False})
    model_config: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    card_version: int = CARD_VERSION
    root: Path | None = None

    # ------------------------------------------------------------------ identity
    @property
    def layout(self) -> str:
        """``monolithic``, ``split`` or ``dual``."""
        return str(self.export.get("layout", "monolithic"))

    @property
    def output_action_mode(self) -> str:
        """The action mode of the chunks the runtime returns: ``absolute`` or ``delta``.

        A ``delta`` policy whose card sets ``postprocess.delta_to_absolute`` has its actions made
        absolute by the runtime (added to the state at the observation stamp), so its chunks are
        ``absolute``; this is the one place that rule is written.
        """
        if self.io.action_mode == "delta" and bool(self.postprocess.get("delta_to_absolute")):
            return "absolute"
        return self.io.action_mode

    @property
    def precision(self) -> str:
        """The card's precision: its TensorRT engine's (fp16, bf16, ...), ``int8`` for int8 ONNX
        graphs (CPU), ``fp32`` when only fp32 ONNX was exported."""
        return str(self.export.get("precision", "fp32"))

    @property
    def content_hash(self) -> str:
        """SHA-256 over what defines the policy's outputs: settings, stats and model files."""
        ident = {
            "family": self.family,
            "io": self.io.to_dict(),
            "state_joints": self.state_joints,
            "action_joints": self.action_joints,
            "normalization": self.normalization.to_dict(),
            "postprocess": self.postprocess,
            "layout": self.layout,
            "files": {
                role: self.hashes.get(self.files[role], "") for role in _IDENTITY_ROLES if role in self.files
            },
        }
        if self.layout == "dual":  # the slow graph's rate changes the actions a dual card produces
            ident["slow_hz"] = (self.export.get("dual") or {}).get("slow_hz")
        blob = json.dumps(ident, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def policy_id(self) -> str:
        """``name@shorthash``: changes whenever weights, settings or statistics change."""
        return f"{self.name}@{self.content_hash[:10]}"

    # ------------------------------------------------------------------ files
    def has(self, role: str) -> bool:
        """Whether the card names a file for ``role`` (e.g. ``onnx``, ``engine_step``)."""
        return role in self.files

    def path(self, role: str, verify: bool = True) -> Path:
        """Absolute path of the file for ``role``; checks it exists and matches its hash.

        Raises :class:`CardError` when the card names no such file and :class:`ModelFileError`
        when the file is missing or its SHA-256 differs from the card's (corrupt or replaced).
        """
        if role not in self.files:
            raise CardError(
                f"card {self.name!r} has no {role!r} file (it has {sorted(self.files)}); "
                f"re-export with the backend that makes it: {self.export_command()}"
            )
        if self.root is None:
            raise CardError(f"card {self.name!r} has no folder; save() or load() it first")
        p = self.root / self.files[role]
        if not p.is_file():
            raise ModelFileError(
                f"{role} file {str(p)!r} named by {self.root / CARD_FILE} is missing; "
                f"re-export: {self.export_command()}"
            )
        if verify:
            want = self.hashes.get(self.files[role])
            if want:
                got = sha256_file(p)
                if got != want:
                    raise ModelFileError(
                        f"{role} file {str(p)!r} is corrupt or was replaced: sha256 {got[:16]}... "
                        f"but the card records {want[:16]}...; re-export: {self.export_command()}"
                    )
        return p

    def add_file(self, role: str, relpath: str) -> None:
        """Record a file written into the card folder and its SHA-256."""
        if role not in FILE_ROLES:
            raise CardError(f"unknown file role {role!r}; known roles are {FILE_ROLES}")
        if self.root is None:
            raise CardError("set card.root before adding files")
        self.files[role] = relpath
        self.hashes[relpath] = sha256_file(self.root / relpath)

    def export_command(self) -> str:
        """The ``vla-ros export`` command that rebuilds this card (from its provenance)."""
        cmd = self.provenance.get("export_command")
        if cmd:
            return str(cmd)
        out = str(self.root) if self.root else "CARD_DIR"
        return f"vla-ros export <model.yaml> --out {out} --precision {self.precision}"

    # ------------------------------------------------------------------ (de)serialization
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as written to ``card.yaml``."""
        return {
            "card_version": self.card_version,
            "name": self.name,
            "family": self.family,
            "policy_id": self.policy_id,
            "io": self.io.to_dict(),
            "state_joints": list(self.state_joints),
            "action_joints": list(self.action_joints),
            "normalization": self.normalization.to_dict(),
            "postprocess": dict(self.postprocess),
            "files": dict(self.files),
            "hashes": dict(self.hashes),
            "export": dict(self.export),
            "model_config": self.model_config,
            "provenance": dict(self.provenance),
            "parity": dict(self.parity),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], root: Path | None = None) -> PolicyCard:
        """Build and validate a card from plain data; raises :class:`CardError`."""
        where = str(root / CARD_FILE) if root else "card"
        if not isinstance(d, dict):
            raise CardError(f"{where} must hold a YAML mapping, got {type(d).__name__}")
        missing = [k for k in _REQUIRED_KEYS if k not in d]
        if missing:
            raise CardError(
                f"{where} lacks required keys {missing}; re-export the policy with vla-ros export"
            )
        version = int(d.get("card_version", CARD_VERSION))
        if version > CARD_VERSION:
            raise CardError(
                f"{where} has card_version {version}, newer than this vla_ros reads "
                f"({CARD_VERSION}); upgrade vla_ros or re-export with this version"
            )
        try:
            io = IOSpec.from_dict(d["io"])
        except (TypeError, ValueError, KeyError) as e:
            raise CardError(f"{where}: 'io' is not a valid IOSpec: {e}") from e
        card = cls(
            name=str(d["name"]),
            family=str(d["family"]),
            io=io,
            state_joints=[str(j) for j in d["state_joints"]],
            action_joints=[str(j) for j in d["action_joints"]],
            normalization=Normalization.from_dict(d["normalization"], f"{where}: normalization"),
            files={str(k): str(v) for k, v in (d.get("files") or {}).items()},
            hashes={str(k): str(v) for k, v in (d.get("hashes") or {}).items()},
            export=dict(d.get("export") or {}),
            postprocess=dict(d.get("postprocess") or {"delta_to_absolute": False}),
            model_config=d.get("model_config"),
            provenance=dict(d.get("provenance") or {}),
            parity=dict(d.get("parity") or {}),
            card_version=version,
            root=root,
        )
        card.validate()
        recorded = d.get("policy_id")
        if recorded and recorded != card.policy_id:
            raise CardError(
                f"{where} says policy_id {recorded!r} but its contents give {card.policy_id!r}: "
                "card.yaml was edited by hand; re-export, or delete the policy_id line to accept the edit"
            )
        return card

    def validate(self) -> None:
        """Check internal consistency; raises :class:`CardError` naming the first problem."""
        io = self.io
        where = str(self.root / CARD_FILE) if self.root else f"card {self.name!r}"
        if not self.name:
            raise CardError(f"{where}: 'name' is empty; give the policy a name")
        for key, joints, dim in (
            ("state_joints", self.state_joints, io.state_dim),
            ("action_joints", self.action_joints, io.action_dim),
        ):
            if len(joints) != dim:
                raise CardError(
                    f"{where}: {key} has {len(joints)} names but io says {dim}; "
                    f"list exactly {dim} joint names"
                )
            if len(set(joints)) != len(joints):
                raise CardError(f"{where}: {key} has duplicate names {joints}")
        for part, dim in (("state", io.state_dim), ("action", io.action_dim)):
            st: Stats = getattr(self.normalization, part)
            for k in ("mean", "std"):
                vals = getattr(st, k)
                if len(vals) != dim:
                    raise CardError(
                        f"{where}: normalization.{part}.{k} has {len(vals)} values, "
                        f"expected {dim} ({part}_dim)"
                    )
                if not all(math.isfinite(v) for v in vals):
                    raise CardError(f"{where}: normalization.{part}.{k} has non-finite {vals}")
            if any(v <= 0 for v in st.std):
                raise CardError(
                    f"{where}: normalization.{part}.std must be > 0, got {st.std}; "
                    "clamp tiny std values (e.g. to 1e-6) when computing dataset statistics"
                )
        if self.layout not in LAYOUTS:
            raise CardError(f"{where}: export.layout {self.layout!r} is not one of {LAYOUTS}")
        if self.precision not in PRECISIONS:
            raise CardError(f"{where}: export.precision {self.precision!r} is not one of {PRECISIONS}")
        unknown = sorted(set(self.files) - set(FILE_ROLES))
        if unknown:
            raise CardError(f"{where}: files has unknown roles {unknown}; known: {FILE_ROLES}")
        if self.output_action_mode != io.action_mode:
            absent = [j for j in self.action_joints if j not in self.state_joints]
            if absent:
                raise CardError(
                    f"{where}: postprocess.delta_to_absolute needs every action joint in "
                    f"state_joints, but {absent} are not; add them or set it to false"
                )

    def save(self, root: str | Path | None = None) -> Path:
        """Write ``card.yaml`` into ``root`` (default :attr:`root`); returns its path."""
        if root is not None:
            self.root = Path(root)
        if self.root is None:
            raise CardError("PolicyCard.save needs a folder")
        self.validate()
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / CARD_FILE
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, root: str | Path) -> PolicyCard:
        """Read and validate ``root/card.yaml`` (``root`` may also be the yaml file itself)."""
        root = Path(root)
        if root.is_file() and root.name == CARD_FILE:
            root = root.parent
        path = root / CARD_FILE
        if not path.is_file():
            hint = "it is not a folder" if not root.is_dir() else f"{CARD_FILE} is absent"
            raise CardError(
                f"no policy card at {str(root)!r} ({hint}); make one with "
                f"`vla-ros export MODEL.yaml --out {root}`"
            )
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            raise CardError(f"{path} is not valid YAML ({e}); re-export the policy") from e
        return cls.from_dict(data, root=root)


def locate(ref: str | Path) -> Path:
    """The folder of the policy card ``ref`` names: a folder, a ``card.yaml`` file, or the name of a
    card bundled with vla_ros (``sim_reach_act``), looked up in the package data.

    Raises :class:`CardError` naming every place looked in when nothing holds a ``card.yaml``.
    """
    path = Path(ref).expanduser()
    if path.is_file() and path.name == CARD_FILE:
        return path.parent
    if (path / CARD_FILE).is_file():
        return path
    looked = [str(path)]
    if path.name == str(ref) and "/" not in str(ref):
        for base in _bundled_roots():
            cand = base / str(ref)
            looked.append(str(cand))
            if (cand / CARD_FILE).is_file():
                return cand
    raise CardError(
        f"no policy card {str(ref)!r}: no {CARD_FILE} in {looked}; give a card folder made by "
        f"`vla-ros export`, or a bundled card name ({', '.join(bundled_card_names()) or 'none installed'})"
    )


def _bundled_roots() -> list[Path]:
    """Folders holding the cards bundled with vla_ros (the source tree, and the installed share)."""
    roots = [Path(__file__).resolve().parent.parent / "sim" / "bundled"]
    try:
        from ament_index_python.packages import get_package_share_directory

        roots.append(Path(get_package_share_directory("vla_ros")) / "bundled")
    except Exception:  # no ament index (pip install, tests without ROS): the source tree only
        pass
    return [r for r in roots if r.is_dir()]


def bundled_card_names() -> list[str]:
    """Names of the cards bundled with vla_ros (folders with a ``card.yaml``)."""
    names = {d.name for r in _bundled_roots() for d in r.iterdir() if (d / CARD_FILE).is_file()}
    return sorted(names)
