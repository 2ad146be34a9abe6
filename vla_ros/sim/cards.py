"""The policy cards bundled with the simulated robot, and finding a card path the demo YAML names.

``BUNDLED_CARD`` is the reach task's ACT card (``vla_ros/sim/bundled/sim_reach_act``, package
data). :func:`resolve_card` turns a card path from a YAML or a command line into a folder: an
absolute path, a path from the current directory, or a ``vla_ros/...`` path inside the installed
package (so ``config/demo.yaml``'s relative card path works from any directory).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the vla_ros package folder
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
BUNDLED_CARD = BUNDLED_DIR / "sim_reach_act"


def resolve_card(card: str) -> Path:
    """A card folder from ``card``: empty = :data:`BUNDLED_CARD`; absolute, from the current
    directory, a ``vla_ros/...`` path inside the package, or a bundled card's name.

    Returns the path even when it holds no card (the caller says what is missing).
    """
    if not card:
        return BUNDLED_CARD
    path = Path(card).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve()
    parts = path.parts
    inside = PACKAGE_ROOT.joinpath(*parts[1:]) if parts and parts[0] == "vla_ros" else PACKAGE_ROOT / path
    if inside.exists():
        return inside
    if len(parts) == 1 and (BUNDLED_DIR / card).is_dir():
        return BUNDLED_DIR / card
    return path.resolve()
