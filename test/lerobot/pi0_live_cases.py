"""The pi0 / pi0.5 checkpoints the live lane builds with LeRobot itself (``pi0_live_lane.py``),
shared by that script (LeRobot's venv) and ``test_pi0_live.py`` (vla_ros's). Plain data only.

Every case moves config values off LeRobot's defaults, as an independent check would: 1 and 3
cameras, camera sizes below / above / at the model resolution and of other aspect ratios, empty
camera slots, other state / action / padded dims, chunk sizes, ``n_action_steps``, denoising
steps, token limits (over-long tasks cut), image resolutions, time-embedding periods,
normalization modes (images normalized by the preprocessor: VISUAL MEAN_STD, MIN_MAX and
QUANTILES, at and off the model size), grouped-query attention, expert head counts different
from the VLM's and a checkpoint saved in bfloat16.
The variants name LeRobot's ``GemmaConfig`` fields (width, depth, mlp_dim, num_heads,
num_kv_heads, head_dim); the VLM and its expert share depth, kv heads and head size (one KV
cache). ``vision`` is the reduced SigLIP (transformers ``SiglipVisionConfig`` fields).
"""

from __future__ import annotations

from typing import Any

#: samples per case (each its own LeRobot call, batch 1)
N_SAMPLES = 2
#: the lane's extra Gemma variants (added to LeRobot's table at run time, see pi0_live_lane.py)
VARIANTS: dict[str, dict[str, int]] = {
    "live_vlm_gqa": {
        "width": 48,
        "depth": 2,
        "mlp_dim": 80,
        "num_heads": 6,
        "num_kv_heads": 2,
        "head_dim": 8,
    },
    "live_expert_gqa": {
        "width": 40,
        "depth": 2,
        "mlp_dim": 72,
        "num_heads": 4,
        "num_kv_heads": 2,
        "head_dim": 8,
    },
    "live_vlm_mqa": {
        "width": 64,
        "depth": 3,
        "mlp_dim": 96,
        "num_heads": 4,
        "num_kv_heads": 1,
        "head_dim": 16,
    },
    "live_expert_mqa": {
        "width": 32,
        "depth": 3,
        "mlp_dim": 56,
        "num_heads": 2,
        "num_kv_heads": 1,
        "head_dim": 16,
    },
}
VISION: dict[str, dict[str, int]] = {
    "a": {"hidden_size": 24, "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 3},
    "b": {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 1, "num_attention_heads": 2},
}

CASES: dict[str, dict[str, Any]] = {
    # 3 cameras larger than the model's 112 px (downscaled, 4:3), GQA, MIN_MAX state / QUANTILE10
    # action, narrower padded dims, other time-embedding periods, 1 of 3 actions executed
    "live_pi0_3cam": {
        "type": "pi0",
        "cameras": {"cam_high": (150, 200), "cam_left_wrist": (150, 200), "cam_right_wrist": (150, 200)},
        "state_dim": 9,
        "action_dim": 7,
        "vision": "a",
        "tasks": ["fold the towel", "put the blue cup on the plate and the spoon in the drawer please"],
        "config": {
            "paligemma_variant": "live_vlm_gqa",
            "action_expert_variant": "live_expert_gqa",
            "chunk_size": 7,
            "n_action_steps": 3,
            "num_inference_steps": 4,
            "tokenizer_max_length": 12,
            "max_state_dim": 16,
            "max_action_dim": 12,
            "image_resolution": [112, 112],
            "min_period": 0.01,
            "max_period": 8.0,
            "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "MIN_MAX", "ACTION": "QUANTILE10"},
        },
    },
    # 1 camera smaller than 224 and tall, 2 empty-camera slots, one Euler step, a long token limit
    "live_pi0_1cam": {
        "type": "pi0",
        "cameras": {"front": (100, 56)},
        "state_dim": 3,
        "action_dim": 2,
        "vision": "b",
        "tasks": ["grasp_the cup", "push the red button twice\n"],
        "config": {
            "paligemma_variant": "live_vlm_mqa",
            "action_expert_variant": "live_expert_mqa",
            "chunk_size": 12,
            "n_action_steps": 12,
            "num_inference_steps": 1,
            "tokenizer_max_length": 30,
            "empty_cameras": 2,
            "image_resolution": [100, 100],  # not a multiple of the 14 px patch: 7 x 7 patches
            "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "QUANTILES", "ACTION": "IDENTITY"},
        },
    },
    # pi0.5 with 3 cameras at the model size (no resize), MEAN_STD instead of QUANTILES, state in
    # the prompt with a generous limit, 56 px resolution
    "live_pi05_3cam": {
        "type": "pi05",
        "cameras": {"a": (56, 56), "b": (56, 56), "c": (56, 56)},
        "state_dim": 10,
        "action_dim": 8,
        "vision": "a",
        "tasks": ["pick_up the red cube", "  stack the green block\non the blue one  "],
        "config": {
            "paligemma_variant": "live_vlm_mqa",
            "action_expert_variant": "live_expert_mqa",
            "chunk_size": 9,
            "n_action_steps": 5,
            "num_inference_steps": 3,
            "tokenizer_max_length": 90,
            "max_state_dim": 24,
            "max_action_dim": 16,
            "image_resolution": [56, 56],
            "min_period": 0.002,
            "max_period": 2.0,
            "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
        },
    },
    # pi0.5, 1 wide camera + an empty slot, a short token limit (every prompt cut), GQA, 5 steps,
    # saved in bfloat16 as the hub's pi0.5 checkpoints (LeRobot's fp32 run of it is the reference)
    "live_pi05_1cam": {
        "type": "pi05",
        "cameras": {"wrist": (60, 160)},
        "state_dim": 4,
        "action_dim": 6,
        "vision": "b",
        "tasks": ["open the drawer", "wipe the table"],
        "config": {
            "paligemma_variant": "live_vlm_gqa",
            "action_expert_variant": "live_expert_gqa",
            "chunk_size": 4,
            "n_action_steps": 2,
            "num_inference_steps": 5,
            "tokenizer_max_length": 14,
            "empty_cameras": 1,
            "dtype": "bfloat16",
        },
    },
    # images normalized by LeRobot's preprocessor before the model (VISUAL MEAN_STD, [3, 1, 1]
    # statistics): 2 cameras at the model size, so LeRobot neither resizes nor clamps them to
    # [0, 1]; a raw (IDENTITY) state, MIN_MAX actions
    "live_pi0_img_mean_std": {
        "type": "pi0",
        "cameras": {"top": (56, 56), "wrist": (56, 56)},
        "state_dim": 5,
        "action_dim": 4,
        "vision": "b",
        "tasks": ["pick up the cube", "open the drawer"],
        "config": {
            "paligemma_variant": "live_vlm_mqa",
            "action_expert_variant": "live_expert_mqa",
            "chunk_size": 5,
            "n_action_steps": 3,
            "num_inference_steps": 3,
            "tokenizer_max_length": 12,
            "max_state_dim": 8,
            "max_action_dim": 8,
            "image_resolution": [56, 56],
            "normalization_mapping": {"VISUAL": "MEAN_STD", "STATE": "IDENTITY", "ACTION": "MIN_MAX"},
        },
    },
    # pi0.5 with VISUAL MIN_MAX on a camera of another size (normalized, resized, clamped to [0, 1]
    # and padded by LeRobot), QUANTILE10 state in the prompt, IDENTITY actions
    "live_pi05_img_min_max": {
        "type": "pi05",
        "cameras": {"front": (40, 70)},
        "state_dim": 3,
        "action_dim": 5,
        "vision": "a",
        "tasks": ["wipe the table", "push the button"],
        "config": {
            "paligemma_variant": "live_vlm_gqa",
            "action_expert_variant": "live_expert_gqa",
            "chunk_size": 4,
            "n_action_steps": 4,
            "num_inference_steps": 2,
            "tokenizer_max_length": 60,
            "max_state_dim": 8,
            "max_action_dim": 8,
            "image_resolution": [56, 56],
            "normalization_mapping": {"VISUAL": "MIN_MAX", "STATE": "QUANTILE10", "ACTION": "IDENTITY"},
        },
    },
    # pi0.5 with VISUAL QUANTILES at the model size (not clamped), a raw (IDENTITY) state in the
    # prompt (most values past [-1, 1]: the end bins), QUANTILE10 actions
    "live_pi05_img_quantiles": {
        "type": "pi05",
        "cameras": {"left": (56, 56), "right": (56, 56)},
        "state_dim": 4,
        "action_dim": 3,
        "vision": "b",
        "tasks": ["stack the cups", "close the lid"],
        "config": {
            "paligemma_variant": "live_vlm_mqa",
            "action_expert_variant": "live_expert_mqa",
            "chunk_size": 3,
            "n_action_steps": 2,
            "num_inference_steps": 2,
            "tokenizer_max_length": 60,
            "max_state_dim": 8,
            "max_action_dim": 8,
            "image_resolution": [56, 56],
            "normalization_mapping": {"VISUAL": "QUANTILES", "STATE": "IDENTITY", "ACTION": "QUANTILE10"},
        },
    },
}
