"""Render the simulated arm as camera images (RGB uint8), deterministic and fast.

The arm is drawn as a planar chain seen from the side: joint ``k`` adds its angle to the chain's
heading, links shorten along the chain. A ``wrist`` camera looks at the end of the chain from
closer up. A coloured target marker gives a policy something to look at.
"""

from __future__ import annotations

import cv2
import numpy as np

BACKGROUND = (40, 44, 52)
#: where the target marker is drawn unless a caller says otherwise (the sim node's target)
DEFAULT_TARGET = (0.45, 0.55)
LINK_COLOURS = ((230, 126, 34), (52, 152, 219), (46, 204, 113), (155, 89, 182), (241, 196, 15), (231, 76, 60))


def chain_points(positions: np.ndarray, link_lengths: np.ndarray) -> np.ndarray:
    """Planar forward kinematics: ``[n+1, 2]`` points from the base, unit-free."""
    heading = np.pi / 2 + np.cumsum(positions)  # joint 0 at zero points straight up
    steps = np.stack([np.cos(heading), np.sin(heading)], axis=1) * link_lengths[:, None]
    return np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])


def default_link_lengths(n: int) -> np.ndarray:
    """Links shortening along the chain, total length 1."""
    raw = np.linspace(1.0, 0.4, n)
    return raw / raw.sum()


def camera_view(
    positions: np.ndarray, height: int, width: int, camera: str = "front"
) -> tuple[np.ndarray, float]:
    """``(centre [2], scale px per unit)`` of ``camera``'s view of the arm at ``positions``.

    ``front`` is fixed (centred on ``(0, 0.5)``, the arm's 1.0 length = 0.8 of the smaller image
    side); ``wrist`` follows the fingertip, 2.5 times closer.
    """
    if camera == "wrist":
        pts = chain_points(np.asarray(positions, dtype=np.float64), default_link_lengths(len(positions)))
        return pts[-1], 2.5 * min(height, width)
    return np.array([0.0, 0.5]), 0.8 * min(height, width)


def to_pixels(
    points: np.ndarray, positions: np.ndarray, height: int, width: int, camera: str = "front"
) -> np.ndarray:
    """Plane points ``[k, 2]`` (the arm's unit-free plane) -> pixel ``[k, 2]`` (x right, y down)."""
    centre, scale = camera_view(positions, height, width, camera)
    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    pix = np.empty_like(pts)
    pix[:, 0] = width / 2 + (pts[:, 0] - centre[0]) * scale
    pix[:, 1] = height / 2 - (pts[:, 1] - centre[1]) * scale
    return pix


def render(
    positions: np.ndarray,
    height: int,
    width: int,
    camera: str = "front",
    target: tuple[float, float] | None = DEFAULT_TARGET,
) -> np.ndarray:
    """One ``[height, width, 3]`` uint8 RGB frame of the arm at ``positions`` from ``camera``."""
    positions = np.asarray(positions, dtype=np.float64)
    pts = chain_points(positions, default_link_lengths(len(positions)))
    pix = to_pixels(pts, positions, height, width, camera)
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    thickness = max(1, min(height, width) // 40)
    if target is not None:
        tx, ty = (int(v) for v in to_pixels(np.asarray([target]), positions, height, width, camera)[0])
        cv2.circle(img, (tx, ty), max(2, thickness * 2), (255, 255, 255), -1)
    ipix = np.round(pix).astype(np.int32)
    for k in range(len(positions)):
        a, b = tuple(int(v) for v in ipix[k]), tuple(int(v) for v in ipix[k + 1])
        cv2.line(img, a, b, LINK_COLOURS[k % len(LINK_COLOURS)], thickness, cv2.LINE_AA)
        cv2.circle(img, a, thickness, (220, 220, 220), -1)
    return img
