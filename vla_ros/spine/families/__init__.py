"""VLA families: one module per family; importing this package registers them all."""

from vla_ros.spine.families import (  # noqa: F401  (imported for registration)
    act,
    diffusion,
    flow_matching,
    hierarchical,
    lerobot_act,
    lerobot_diffusion,
    lerobot_pi0_checkpoint,
    lerobot_smolvla_checkpoint,
    regression,
    tokens,
)
