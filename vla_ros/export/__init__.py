"""vla_ros.export: spine model -> policy card (ONNX, TensorRT), parity gates.

``export_policy(model_or_yaml, out_dir, ExportOptions(...)) -> PolicyCard`` writes a card
folder; :class:`PolicyCard` reads one. The stages: :mod:`~vla_ros.export.sources` (what the user
handed over -> a model), :mod:`~vla_ros.export.api` (orchestration), :mod:`~vla_ros.export.onnx_export`
(graphs), :mod:`~vla_ros.export.parity` (every gate), :mod:`~vla_ros.export.quantize`,
:mod:`~vla_ros.export.tensorrt` (engine builds).
"""

from __future__ import annotations

from typing import Any

from vla_ros.contract.card import Normalization, PolicyCard, Stats


def export_policy(*args: Any, **kwargs: Any) -> PolicyCard:
    """See :func:`vla_ros.export.api.export_policy` (imported lazily: it pulls in torch)."""
    from vla_ros.export.api import export_policy as _export

    return _export(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "ExportOptions":  # lazily, like export_policy
        from vla_ros.export.api import ExportOptions

        return ExportOptions
    raise AttributeError(f"module 'vla_ros.export' has no attribute {name!r}")


__all__ = ["ExportOptions", "Normalization", "PolicyCard", "Stats", "export_policy"]
