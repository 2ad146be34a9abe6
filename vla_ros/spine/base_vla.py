"""BaseVLA: the one shape every policy family takes.

A VLA has six component slots, each built from a type-tagged config by its registry::

    vision_backbone  VISION_BACKBONES    images -> tokens
    llm_backbone     LLM_BACKBONES       embeddings -> hidden states (+ KV cache)
    vlm_backbone     VLM_BACKBONES       images + text -> hidden states
    projector        PROJECTORS          width -> width
    vla_head         HEADS               features -> actions
    text_encoder     TEXT_ENCODERS       tokens -> features

A family (a subclass registered in ``VLAS``) declares which slots it needs (``REQUIRED_SLOTS``)
and which it can use (``OPTIONAL_SLOTS``); anything else is an error at construction. The family
implements ``forward(batch) -> {"loss": ...}`` for training and ``predict_action(obs, noise)`` for
inference; both take the input dict described by :class:`vla_ros.contract.io_spec.IOSpec`.

Export layouts (read by the exporter):

- ``EXPORT_LAYOUT = "monolithic"``: export ``predict_action`` as one graph.
- ``EXPORT_LAYOUT = "split"``: ``export_prefix(obs) -> dict[str, Tensor]`` runs once, then
  ``x = export_step(prefix, x, i)`` for ``i in range(num_export_steps)``, starting from
  ``x = noise`` when ``io_spec().needs_noise`` else zeros ``[B, horizon, action_dim]``; the final
  ``x`` equals ``predict_action(obs, noise)`` exactly (see :meth:`BaseVLA.run_split`).
- ``EXPORT_LAYOUT = "dual"`` (dual-rate families): ``export_slow(obs) -> {"latent": ...}`` and
  ``export_fast({"latent": ...}, obs)``, two graphs the runtime runs at two rates
  (``io_spec().extra["graphs"]``).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from vla_ros.contract import io_spec
from vla_ros.contract.io_spec import IOSpec
from vla_ros.spine.components.text import get_tokenizer
from vla_ros.spine.registry import SLOT_REGISTRIES

SLOT_NAMES: tuple[str, ...] = (
    "vision_backbone",
    "llm_backbone",
    "vlm_backbone",
    "projector",
    "vla_head",
    "text_encoder",
)
# Order in which slots are built, so a slot's defaults can depend on the ones before it.
BUILD_ORDER: tuple[str, ...] = (
    "text_encoder",
    "vision_backbone",
    "vlm_backbone",
    "llm_backbone",
    "projector",
    "vla_head",
)
EXPORT_LAYOUTS = ("monolithic", "split", "dual")


def merge_prefixed(
    parts: Mapping[str, Mapping[str, Tensor]], base: Mapping[str, Tensor] | None = None
) -> dict[str, Tensor]:
    """Flatten ``{prefix: {name: tensor}}`` into ``{"prefix.name": tensor}`` (plus ``base``).

    A key produced twice raises ``ValueError`` naming it; weights never silently overwrite.
    """
    out: dict[str, Tensor] = dict(base or {})
    for prefix, sd in parts.items():
        for name, t in sd.items():
            key = f"{prefix}.{name}" if prefix else name
            if key in out:
                raise ValueError(
                    f"duplicate weight key {key!r} (from slot {prefix!r}); two modules write the "
                    "same name - rename one of them"
                )
            out[key] = t
    return out


def _accepted(factory: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keep only the keyword arguments ``factory`` accepts."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


class BaseVLA(nn.Module):
    """Base class of every VLA family; see the module docstring."""

    FAMILY: ClassVar[str] = ""
    REQUIRED_SLOTS: ClassVar[tuple[str, ...]] = ()
    OPTIONAL_SLOTS: ClassVar[tuple[str, ...]] = ()
    NEEDS_NOISE: ClassVar[bool] = False
    USES_TEXT: ClassVar[bool | None] = None  # True: needs tokens; False: never; None: optional
    EXPORT_LAYOUT: ClassVar[str] = "monolithic"

    vision_backbone: nn.Module | None
    llm_backbone: nn.Module | None
    vlm_backbone: nn.Module | None
    projector: nn.Module | None
    vla_head: nn.Module | None
    text_encoder: nn.Module | None

    def __init__(
        self,
        io: Mapping[str, Any] | IOSpec,
        *,
        freeze: Mapping[str, bool] | Iterable[str] | None = None,
        export_layout: str | None = None,
        **slots: Any,
    ) -> None:
        super().__init__()
        cls = type(self)
        cls.check_slot_declaration()
        self._check_given_slots(slots)
        self._slot_cfgs = {k: v for k, v in slots.items() if v is not None}
        self.io = self._make_io(io)
        self.frozen_slots: set[str] = set()
        self._freeze_request = self._parse_freeze(freeze)
        layout = export_layout or cls.EXPORT_LAYOUT
        if layout not in EXPORT_LAYOUTS:
            raise ValueError(f"export_layout={layout!r} is not one of {EXPORT_LAYOUTS}")
        self.export_layout = layout
        self._slots_built = False

    # ------------------------------------------------------------------ slot validation
    @classmethod
    def check_slot_declaration(cls) -> None:
        """The family's REQUIRED/OPTIONAL declaration names real slots, each at most once."""
        req, opt = set(cls.REQUIRED_SLOTS), set(cls.OPTIONAL_SLOTS)
        unknown = sorted((req | opt) - set(SLOT_NAMES))
        if unknown:
            raise TypeError(
                f"{cls.__name__} declares unknown slots {unknown}; the slots are {list(SLOT_NAMES)}"
            )
        overlap = sorted(req & opt)
        if overlap:
            raise TypeError(f"{cls.__name__} declares slots {overlap} both REQUIRED and OPTIONAL; pick one")

    def _check_given_slots(self, slots: Mapping[str, Any]) -> None:
        cls = type(self)
        problems = []
        unknown = sorted(k for k in slots if k not in SLOT_NAMES)
        for k in unknown:
            close = difflib.get_close_matches(k, SLOT_NAMES, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown slot or parameter {k!r}{hint}")
        given = {k for k, v in slots.items() if v is not None and k in SLOT_NAMES}
        missing = [s for s in cls.REQUIRED_SLOTS if s not in given]
        if missing:
            problems.append(f"missing required slots {missing}")
        declared = set(cls.REQUIRED_SLOTS) | set(cls.OPTIONAL_SLOTS)
        undeclared = sorted(given - declared)
        if undeclared:
            problems.append(f"slots {undeclared} are not used by this family")
        if problems:
            params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "slots")]
            raise TypeError(
                f"{cls.__name__} ({cls.FAMILY or 'vla'}): "
                + "; ".join(problems)
                + f". Required slots: {list(cls.REQUIRED_SLOTS)}, optional slots: "
                f"{list(cls.OPTIONAL_SLOTS)}, family parameters: {params}"
            )

    def _parse_freeze(self, freeze: Mapping[str, bool] | Iterable[str] | None) -> set[str]:
        if freeze is None:
            return set()
        if isinstance(freeze, str):
            freeze = [freeze]
        names = {k for k, v in freeze.items() if v} if isinstance(freeze, Mapping) else set(freeze)
        keys = set(freeze.keys()) if isinstance(freeze, Mapping) else names
        unknown = sorted(k for k in keys if k not in SLOT_NAMES)
        if unknown:
            raise TypeError(f"freeze names unknown slots {unknown}; the slots are {list(SLOT_NAMES)}")
        absent = sorted(k for k in names if k not in self._slot_cfgs)
        if absent:
            raise TypeError(
                f"freeze names slots {absent} that this {type(self).__name__} model does not have; "
                f"present slots: {sorted(self._slot_cfgs)}"
            )
        return names

    def _make_io(self, io: Mapping[str, Any] | IOSpec) -> IOSpec:
        spec = io if isinstance(io, IOSpec) else IOSpec.from_dict(dict(io))
        cls = type(self)
        if spec.needs_noise != cls.NEEDS_NOISE:
            spec = dataclasses.replace(spec, needs_noise=cls.NEEDS_NOISE)
        if cls.USES_TEXT is True and spec.text_max_len <= 0:
            raise ValueError(f"{cls.__name__} needs instructions: set io.text_max_len > 0")
        if cls.USES_TEXT is False and spec.text_max_len > 0:
            raise ValueError(
                f"{cls.__name__} takes no instruction; set io.text_max_len: 0 (got {spec.text_max_len})"
            )
        return spec

    # ------------------------------------------------------------------ slot building
    def slot_defaults(self, slot: str) -> dict[str, Any]:
        """Keyword arguments a family fills in for a slot (the config wins); override per family."""
        return {}

    def build_slots(self) -> None:
        """Build every configured slot (in :data:`BUILD_ORDER`), then apply the freeze flags."""
        for slot in BUILD_ORDER:
            cfg = self._slot_cfgs.get(slot)
            if cfg is None:
                setattr(self, slot, None)
                continue
            registry = SLOT_REGISTRIES[slot]
            if isinstance(cfg, nn.Module):
                module = cfg
            elif isinstance(cfg, Mapping):
                factory = cfg.get("type")
                factory = registry.get(factory) if isinstance(factory, str) else factory
                module = registry.build(cfg, **_accepted(factory, self.slot_defaults(slot)))
            else:
                raise TypeError(
                    f"slot {slot!r} must be a config dict with 'type' or an nn.Module, "
                    f"got {type(cfg).__name__}"
                )
            setattr(self, slot, module)
        self._slots_built = True
        for slot in self._freeze_request:
            self.set_frozen(slot, True)

    def present_slots(self) -> list[str]:
        """Names of the slots this model has, in :data:`SLOT_NAMES` order."""
        return [s for s in SLOT_NAMES if getattr(self, s, None) is not None]

    # ------------------------------------------------------------------ freezing
    def set_frozen(self, slot: str, frozen: bool = True) -> None:
        """Freeze (no gradients, eval mode during training) or unfreeze one slot."""
        module = getattr(self, slot, None) if slot in SLOT_NAMES else None
        if module is None:
            raise TypeError(
                f"cannot freeze {slot!r}: not a slot of this model; present slots: {self.present_slots()}"
            )
        for p in module.parameters():
            p.requires_grad_(not frozen)
        if frozen:
            self.frozen_slots.add(slot)
            module.eval()
        else:
            self.frozen_slots.discard(slot)
            module.train(self.training)

    def train(self, mode: bool = True) -> BaseVLA:
        """Like ``nn.Module.train``, but frozen slots stay in eval mode."""
        super().train(mode)
        for slot in getattr(self, "frozen_slots", ()):
            getattr(self, slot).eval()
        return self

    # ------------------------------------------------------------------ IO
    def io_extra(self) -> dict[str, Any]:
        """Family-specific entries for ``IOSpec.extra``; override per family."""
        return {}

    def io_spec(self) -> IOSpec:
        """What the policy card needs: cameras, sizes, dims, horizon, dt, inputs, export layout."""
        extra = {
            **self.io.extra,
            "family": type(self).FAMILY,
            "export_layout": self.export_layout,
            "num_export_steps": int(self.num_export_steps),
            **self.io_extra(),
        }
        return dataclasses.replace(self.io, extra=extra)

    @property
    def num_export_steps(self) -> int:
        """Number of ``export_step`` calls in the split layout (0 when there is no step loop)."""
        return 0

    def check_obs(self, obs: Mapping[str, Tensor], need_noise: bool = False) -> None:
        """Raise ``KeyError``/``ValueError`` naming any missing or mis-shaped input."""
        if not isinstance(obs, Mapping):
            raise TypeError(f"obs must be a dict of tensors, got {type(obs).__name__}")
        shapes = self.io.input_shapes(1)
        for name, shape in shapes.items():
            if name == "noise" and not need_noise:
                continue
            if name not in obs:
                raise KeyError(
                    f"{type(self).__name__} input {name!r} is missing; expected keys "
                    f"{self.io.input_names} with per-sample shapes "
                    f"{ {k: v[1:] for k, v in shapes.items()} }"
                )
            got = tuple(obs[name].shape)
            if got[1:] != shape[1:] or len(got) != len(shape):
                raise ValueError(
                    f"{type(self).__name__} input {name!r} has shape {got}; expected "
                    f"[B, {', '.join(str(s) for s in shape[1:])}] (see io_spec())"
                )

    def get_noise(self, obs: Mapping[str, Tensor], noise: Tensor | None) -> Tensor:
        """The sampler's initial noise: ``noise``, else ``obs["noise"]``, else fresh Gaussian."""
        if noise is None:
            noise = obs.get("noise") if isinstance(obs, Mapping) else None
        state = obs["state"]
        shape = (state.shape[0], self.io.horizon, self.io.action_dim)
        if noise is None:
            return torch.randn(shape, dtype=state.dtype, device=state.device)
        if tuple(noise.shape) != shape:
            raise ValueError(f"noise has shape {tuple(noise.shape)}; expected {shape}")
        return noise

    def tokenize(self, instructions: str | list[str]) -> Tensor:
        """Instructions -> ``int64 [B, text_max_len]`` with the tokenizer named in the IO spec."""
        if self.io.text_max_len <= 0:
            raise ValueError(f"{type(self).__name__} takes no instruction (text_max_len=0)")
        return get_tokenizer(self.io.tokenizer)(instructions, self.io.text_max_len)

    def example_inputs(self, batch_size: int = 1, seed: int = 0) -> dict[str, Tensor]:
        """A valid, deterministic input dict for ``predict_action``/export, in input order:
        :func:`vla_ros.contract.io_spec.example_inputs` (seeded; its sample instructions
        through :meth:`tokenize`) as CPU tensors."""

        def tokenize(texts: list[str], state: Any) -> Any:
            return self.tokenize(texts).numpy()

        arrays = io_spec.example_inputs(self.io, seed=seed, batch_size=batch_size, tokenize=tokenize)
        return {name: torch.from_numpy(a) for name, a in arrays.items()}

    def example_batch(self, batch_size: int = 2, seed: int = 0) -> dict[str, Tensor]:
        """``example_inputs`` without noise, plus random normalized ``actions`` (for training)."""
        batch = self.example_inputs(batch_size, seed)
        batch.pop("noise", None)
        g = torch.Generator().manual_seed(seed + 1)
        batch["actions"] = torch.randn(batch_size, self.io.horizon, self.io.action_dim, generator=g).clamp(
            -2.5, 2.5
        )
        return batch

    def training_noise(self, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
        """Extra batch entries that make ``forward`` deterministic (fixed noise / timesteps).

        Families whose loss samples noise accept these keys in ``forward``'s batch; without
        them they sample fresh values each call.
        """
        return {}

    # ------------------------------------------------------------------ the contract
    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Training step: ``batch`` = inputs + ``actions [B, H, D]`` -> ``{"loss": scalar, ...}``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def predict_action(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """Normalized actions ``[B, horizon, action_dim]``; deterministic given ``noise``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement predict_action")

    def export_prefix(self, obs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Split layout: everything computed once per observation (encoder, KV cache)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no split layout (EXPORT_LAYOUT={self.export_layout!r}); "
            "export predict_action as one graph"
        )

    def export_step(self, prefix: Mapping[str, Tensor], x: Tensor, step_index: int | Tensor) -> Tensor:
        """Split layout: one denoise / decode step ``x -> x'`` ``[B, horizon, action_dim]``."""
        raise NotImplementedError(
            f"{type(self).__name__} has no split layout (EXPORT_LAYOUT={self.export_layout!r})"
        )

    def run_split(self, obs: Mapping[str, Tensor], noise: Tensor | None = None) -> Tensor:
        """Reference driver of the split layout (what an exporter's runtime loop does)."""
        prefix = self.export_prefix(obs)
        if self.io.needs_noise:
            x = self.get_noise(obs, noise)
        else:
            s = obs["state"]
            x = s.new_zeros(s.shape[0], self.io.horizon, self.io.action_dim)
        for i in range(self.num_export_steps):
            x = self.export_step(prefix, x, i)
        return x

    # ------------------------------------------------------------------ weights
    @torch.no_grad()
    def prepare_inference_weights(self) -> dict[str, Tensor]:
        """Switch to eval, apply exact inference folds, return the flat weights by slot prefix.

        Folds (each exact up to float rounding): BatchNorm into the preceding conv, pixel
        normalization into a ViT patch embedding. Components opt in with ``fold_for_inference()``.
        The folds rewrite the modules in place (one way): save training checkpoints before
        calling this; the folded weights load only into a model folded the same way.
        """
        self.eval()
        for m in self.modules():
            if m is not self and hasattr(m, "fold_for_inference"):
                m.fold_for_inference()
        slots = self.present_slots()
        parts = {s: getattr(self, s).state_dict() for s in slots}
        own = {k: v for k, v in self.state_dict().items() if not any(k.startswith(s + ".") for s in slots)}
        return merge_prefixed(parts, own)

    def parameter_counts(self) -> dict[str, int]:
        """Parameter count per slot, ``"family"`` for the family's own, and ``"total"``."""
        counts = {s: sum(p.numel() for p in getattr(self, s).parameters()) for s in self.present_slots()}
        total = sum(p.numel() for p in self.parameters())
        counts["family"] = total - sum(counts.values())
        counts["total"] = total
        return counts


def step_tensor(step_index: int | Tensor, like: Tensor) -> Tensor:
    """``step_index`` (int or 0-d/1-element tensor) as an int64 0-d tensor on ``like``'s device."""
    if isinstance(step_index, Tensor):
        return step_index.reshape(()).to(device=like.device, dtype=torch.long)
    return torch.tensor(int(step_index), dtype=torch.long, device=like.device)
