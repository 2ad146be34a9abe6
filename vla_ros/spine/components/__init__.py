"""Spine components, one module per kind; importing this package registers them all."""

from vla_ros.spine.components import (  # noqa: F401  (imported for registration)
    heads,
    llm,
    projectors,
    text,
    vision,
    vlm,
)
