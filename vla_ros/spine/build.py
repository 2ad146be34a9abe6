"""build_vla: a VLA from a type-tagged config dict, a YAML path or a bare model name.

Importing this module registers every component and family; :func:`build_vla` itself lives in
:mod:`vla_ros.spine.compose`.
"""

from __future__ import annotations

from vla_ros.spine import components, families  # noqa: F401  (registers everything)
from vla_ros.spine.compose import build_vla

__all__ = ["build_vla"]
