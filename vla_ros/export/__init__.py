"""vla_ros.export: spine model -> policy card (ONNX, TensorRT), parity gates.

``export_policy(model_or_yaml, out_dir, backends=("onnx",), ...) -> PolicyCard`` writes a card
folder; :class:`PolicyCard` reads one.
"""

from __future__ import annotations

from typing import Any

from vla_ros.contract.card import Normalization, PolicyCard, Stats


def export_policy(*args: Any, **kwargs: Any) -> PolicyCard:
    """See :func:`vla_ros.export.api.export_policy` (imported lazily: it pulls in torch)."""
    from vla_ros.export.api import export_policy as _export

    return _export(*args, **kwargs)


__all__ = ["Normalization", "PolicyCard", "Stats", "export_policy"]
