"""Checkpoint loading for export and the torch runtime, with vla_ros error types.

Reading and name mapping are the spine's (:mod:`vla_ros.spine.weights`: safetensors, or
``torch.load(weights_only=True)``, never arbitrary unpickling); this module turns its failures
into :class:`UnsafeCheckpointError` / :class:`ModelFileError` that say what to do.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vla_ros.contract.errors import ModelFileError, UnsafeCheckpointError

CONVERT_RECIPE = (
    'Convert it once, on a machine you trust, to safetensors: python -c "import torch; '
    "from safetensors.torch import save_file; sd = torch.load('IN.pt', weights_only=False); "
    "sd = sd.get('state_dict', sd); save_file({k: v.contiguous() for k, v in sd.items()}, "
    "'OUT.safetensors')\" and pass OUT.safetensors"
)


def _needs_unpickling(err: BaseException) -> bool:
    seen = 0
    e: BaseException | None = err
    while e is not None and seen < 5:
        if isinstance(e, pickle.UnpicklingError) or "weights_only" in str(e):
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def load_state_dict(path: str | Path) -> dict[str, Any]:
    """Tensors of a checkpoint (file or folder), loaded without executing pickled code."""
    from safetensors import SafetensorError

    from vla_ros.spine.weights import read_checkpoint

    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"checkpoint {str(p)!r} does not exist; pass an existing file")
    try:
        return dict(read_checkpoint(p))
    except (ValueError, OSError, EOFError, RuntimeError, SafetensorError) as e:
        if _needs_unpickling(e):
            raise UnsafeCheckpointError(
                f"checkpoint {str(p)!r} can only be loaded by unpickling arbitrary Python "
                f"objects, which could run code. {CONVERT_RECIPE}"
            ) from e
        raise ModelFileError(
            f"checkpoint {str(p)!r} cannot be read: {str(e)[:300]}; it is corrupt, truncated or "
            "of an unknown kind; copy it again or save a plain state_dict as .safetensors"
        ) from e


def apply_state_dict(
    model: Any,
    state: Mapping[str, Any],
    source: str,
    name_mapping: Mapping[str, str] | None = None,
    strict: bool = True,
) -> None:
    """Load ``state`` into ``model`` (strict by default); a mismatch raises :class:`ModelFileError`."""
    from vla_ros.spine.weights import WeightLoadError, load_weights

    try:
        load_weights(model, state, name_mapping=name_mapping, strict=strict)
    except WeightLoadError as e:
        raise ModelFileError(
            f"weights {source!r} do not fit the model: {e.report.summary()}; the checkpoint "
            "belongs to another config: pass the YAML it was trained with (or a name_mapping)"
        ) from e
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"weights {source!r} cannot be applied: {e}") from e
