"""pi0 / pi0.5 golden fixtures at reduced size, made by LeRobot itself (the parity oracle).

Runs in the reference lane only (Python 3.12 + ``lerobot[smolvla,pi]==0.6.1``, see
``scripts/setup_lerobot_ref.sh``) with ``HF_HUB_OFFLINE=1``; vla_ros never imports LeRobot.
Folder format as ``scripts/lerobot_goldens_smolvla.py``::

    test/fixtures/lerobot/google/paligemma-3b-pt-224/   a tiny Gemma-style tokenizer under the
                                                      name LeRobot's processors load
    test/fixtures/lerobot/<case>/pretrained_model/     the checkpoint folder as LeRobot writes it,
                                                      plus gemma_variants.json (see below)
    test/fixtures/lerobot/<case>/inputs.safetensors    observation.images.<cam> uint8 [N, H, W, 3],
                                                      observation.state float32 [N, D] (raw),
                                                      noise float32 [N, chunk, max_action_dim]
    test/fixtures/lerobot/<case>/outputs.safetensors   action [N, chunk, A] (raw units),
                                                      action.normalized, tokens int64
                                                      [N, tokenizer_max_length] (-1 = padding)
    test/fixtures/lerobot/<case>/provenance.json       script, versions, seed, tasks, prompts,
                                                      what was patched
    test/fixtures/lerobot/pi0_full_keys.json, pi05_full_keys.json   LeRobot's default-size
                                                      state-dict names and shapes (meta device)

What is patched, at run time and only inside this process (LeRobot's files are untouched):

1. ``get_gemma_config`` in ``modeling_pi0`` / ``modeling_pi05`` also answers the reduced variant
   names of :data:`TINY_VARIANTS` (``gemma_300m`` / ``gemma_2b`` keep LeRobot's numbers), and
   ``PI0Config`` / ``PI05Config.__post_init__`` accept those names (the check runs with
   ``gemma_2b`` / ``gemma_300m`` in their place, then the names are put back).
2. ``PaliGemmaForConditionalGenerationWithPiGemma`` / ``PiGemmaForCausalLM`` as named in those
   modules: before the real class is built, the PaliGemma config's SigLIP vision config (LeRobot
   hard-codes so400m: 1152 wide, 27 layers, 16 heads, MLP 4304, projection 2048) is replaced by
   :data:`TINY_SIGLIP` with ``projection_dim`` = the tiny Gemma width, and the vocabulary of both
   Gemmas (LeRobot hard-codes 257152) becomes the tiny tokenizer's size. Reduced models only:
   ``gemma_2b`` / ``gemma_300m`` configs pass through unchanged.
3. The tokenizer: LeRobot's processors load ``google/paligemma-3b-pt-224`` with
   ``AutoTokenizer.from_pretrained``; the script runs with the working directory
   ``test/fixtures/lerobot`` where ``google/paligemma-3b-pt-224/`` is a local folder holding a
   tokenizer trained here with the ``tokenizers`` library (Gemma's layout: ``<pad>`` 0,
   ``<eos>`` 1, ``<bos>`` 2, ``<unk>`` 3, spaces as ``▁``, a ``<bos>`` post-processor), so the
   name resolves to that folder and the saved processor still names the real tokenizer.

``gemma_variants.json`` in each reduced checkpoint records the reduced variants' numbers and the
tiny SigLIP (what the real checkpoint's variant names stand for in LeRobot's table), which vla_ros
reads for variant names it does not know.

Each case: random weights at unit scale, ``save_pretrained`` + the processor pipelines (made-up
statistics; ``[3, 1, 1]`` image statistics, drawn after the others, when the case normalizes its
VISUAL features, so the other cases' fixtures stay byte-identical), reload with
``from_pretrained(strict=True)``: ``PI0Policy.from_pretrained`` returns a random model when
loading fails, so every reloaded tensor is compared with the saved file
(a mismatch stops the script). Then raw observation + task -> preprocessor ->
``policy._preprocess_images`` / ``prepare_state`` -> ``model.sample_actions(..., noise=)``
(``predict_action_chunk`` takes no noise) -> truncate -> postprocessor, one sample at a time.

Usage (in the lane): ``python scripts/lerobot_goldens_pi0.py [--out DIR] [--only CASE]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from lerobot_goldens_common import (
    folder_kb,
    meta_key_shapes,
    provenance,
    save_policy_folder,
    save_tensors,
    write_json,
)
from safetensors.torch import load_file, save_file
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "test" / "fixtures" / "lerobot"
TOKENIZER_NAME = "google/paligemma-3b-pt-224"
VARIANTS_FILE = "gemma_variants.json"
N_SAMPLES = 2

#: Gemma's special tokens, at Gemma's ids
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]
CORPUS = [
    "pick up the red cube and place it in the bowl",
    "open the top drawer and put the sponge inside",
    "stack the green block on the blue block",
    "push the button, then fold the towel neatly",
    "Task: grasp the cup by its handle, State: 12 127 255 0 -1 64 200;\nAction: ",
    "Task: wipe the table, State: 3 45 67 89 101 250 128 9;\nAction: ",
]
#: reduced Gemma variants (width, depth, mlp_dim, num_heads, num_kv_heads, head_dim), LeRobot's
#: ``GemmaConfig`` fields; the VLM and its expert share depth, kv heads and head size as LeRobot needs
TINY_VARIANTS: dict[str, dict[str, int]] = {
    "gemma_tiny_vlm": {
        "width": 64,
        "depth": 3,
        "mlp_dim": 128,
        "num_heads": 8,
        "num_kv_heads": 1,
        "head_dim": 16,
    },
    "gemma_tiny_expert": {
        "width": 48,
        "depth": 3,
        "mlp_dim": 96,
        "num_heads": 8,
        "num_kv_heads": 1,
        "head_dim": 16,
    },
    "gemma_tiny_vlm_gqa": {
        "width": 64,
        "depth": 2,
        "mlp_dim": 96,
        "num_heads": 4,
        "num_kv_heads": 2,
        "head_dim": 16,
    },
    "gemma_tiny_expert_gqa": {
        "width": 32,
        "depth": 2,
        "mlp_dim": 64,
        "num_heads": 4,
        "num_kv_heads": 2,
        "head_dim": 16,
    },
}
#: the reduced SigLIP (transformers ``SiglipVisionConfig`` fields); 14x14 patches at 224 as so400m
TINY_SIGLIP = {"hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4}

CASES: dict[str, dict] = {
    "pi0_2cam": {
        "type": "pi0",
        "cameras": {"top": (60, 80), "wrist": (60, 80)},
        "state_dim": 6,
        "action_dim": 6,
        "tasks": ["pick up the red cube", "stack the green block on the blue block\n"],
        "config": {
            "paligemma_variant": "gemma_tiny_vlm",
            "action_expert_variant": "gemma_tiny_expert",
            "chunk_size": 8,
            "n_action_steps": 4,
            "num_inference_steps": 3,
            "tokenizer_max_length": 16,
        },
    },
    # one camera at the model's size (no resize), an empty-camera slot, a task over the limit
    "pi0_1cam_empty": {
        "type": "pi0",
        "cameras": {"front": (224, 224)},
        "state_dim": 7,
        "action_dim": 5,
        "tasks": ["open the top drawer and put the sponge inside, then push the button", "grasp the cup"],
        "config": {
            "paligemma_variant": "gemma_tiny_vlm",
            "action_expert_variant": "gemma_tiny_expert",
            "chunk_size": 6,
            "n_action_steps": 6,
            "num_inference_steps": 2,
            "empty_cameras": 1,
            "tokenizer_max_length": 6,
        },
    },
    # quantile normalization, the state in the prompt (one value below q01 -> bin -1, one above)
    "pi05_2cam": {
        "type": "pi05",
        "cameras": {"top": (72, 40), "wrist": (72, 40)},
        "state_dim": 6,
        "action_dim": 4,
        "tasks": ["pick_up the red cube", "stack the green block\non the blue block\n"],
        "config": {
            "paligemma_variant": "gemma_tiny_vlm_gqa",
            "action_expert_variant": "gemma_tiny_expert_gqa",
            "chunk_size": 8,
            "n_action_steps": 8,
            "num_inference_steps": 3,
            "tokenizer_max_length": 96,
        },
    },
    # a prompt longer than the limit (truncated), an empty-camera slot
    "pi05_1cam_trunc": {
        "type": "pi05",
        "cameras": {"front": (48, 64)},
        "state_dim": 5,
        "action_dim": 5,
        "tasks": ["open the top drawer and put the sponge inside", "grasp the cup"],
        "config": {
            "paligemma_variant": "gemma_tiny_vlm",
            "action_expert_variant": "gemma_tiny_expert",
            "chunk_size": 5,
            "n_action_steps": 5,
            "num_inference_steps": 2,
            "empty_cameras": 1,
            "tokenizer_max_length": 20,
        },
    },
    # images normalized by the preprocessor (VISUAL MEAN_STD, [3, 1, 1] statistics) at the model
    # size: LeRobot neither resizes nor clamps them; MIN_MAX state, QUANTILES actions
    "pi0_images_mean_std": {
        "type": "pi0",
        "cameras": {"top": (56, 56)},
        "state_dim": 4,
        "action_dim": 3,
        "tasks": ["pick up the red cube", "open the drawer"],
        "config": {
            "paligemma_variant": "gemma_tiny_vlm_gqa",
            "action_expert_variant": "gemma_tiny_expert_gqa",
            "chunk_size": 4,
            "n_action_steps": 4,
            "num_inference_steps": 2,
            "tokenizer_max_length": 12,
            "max_state_dim": 8,
            "max_action_dim": 8,
            "image_resolution": (56, 56),
            "normalization_mapping": {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "QUANTILES"},
        },
    },
    # pi0.5, VISUAL MIN_MAX on a camera of another size (normalized, resized, clamped to [0, 1],
    # padded), QUANTILE10 state in the prompt, MEAN_STD actions
    "pi05_images_min_max": {
        "type": "pi05",
        "cameras": {"front": (40, 70)},
        "state_dim": 4,
        "action_dim": 3,
        "tasks": ["wipe the table", "push the button"],
        "config": {
            "paligemma_variant": "gemma_tiny_vlm_gqa",
            "action_expert_variant": "gemma_tiny_expert_gqa",
            "chunk_size": 4,
            "n_action_steps": 4,
            "num_inference_steps": 2,
            "tokenizer_max_length": 48,
            "max_state_dim": 8,
            "max_action_dim": 8,
            "image_resolution": (56, 56),
            "normalization_mapping": {"VISUAL": "MIN_MAX", "STATE": "QUANTILE10", "ACTION": "MEAN_STD"},
        },
    },
}


# ----------------------------------------------------------------------------- tokenizer
def make_tokenizer(dest: Path) -> int:
    """A Gemma-layout BPE tokenizer (``tokenizer.json`` + transformers' config files); its size."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.Fuse()])
    alphabet = [chr(c) for c in range(33, 127)] + ["\u2581", "\n"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, initial_alphabet=alphabet)
    tok.train_from_iterator(CORPUS * 10, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    dest.mkdir(parents=True, exist_ok=True)
    tok.save(str(dest / "tokenizer.json"))
    fast = PreTrainedTokenizerFast(
        tokenizer_file=str(dest / "tokenizer.json"),
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    fast.save_pretrained(str(dest))
    return tok.get_vocab_size()


# ----------------------------------------------------------------------------- patches
def patch_lerobot(vocab_size: int) -> None:
    """Teach LeRobot's pi0/pi0.5 the reduced variants (see the module docstring, items 1-2)."""
    from lerobot.policies.pi0 import configuration_pi0, modeling_pi0
    from lerobot.policies.pi05 import configuration_pi05, modeling_pi05

    for mod in (modeling_pi0, modeling_pi05):
        real_get = mod.get_gemma_config
        real_vlm = mod.PaliGemmaForConditionalGenerationWithPiGemma
        real_expert = mod.PiGemmaForCausalLM

        def get_gemma_config(variant: str, _real=real_get, _cls=mod.GemmaConfig):
            if variant in TINY_VARIANTS:
                return _cls(**TINY_VARIANTS[variant])
            return _real(variant)

        def vlm(config, _real=real_vlm):
            if config.text_config.hidden_size != 2048:  # a reduced model
                for k, v in TINY_SIGLIP.items():
                    setattr(config.vision_config, k, v)
                config.vision_config.projection_dim = config.text_config.hidden_size
                config.text_config.vocab_size = vocab_size
                config._vocab_size = vocab_size
            return _real(config)

        def expert(config, _real=real_expert):
            if config.hidden_size != 1024 or config.num_hidden_layers != 18:
                config.vocab_size = vocab_size
            return _real(config)

        mod.get_gemma_config = get_gemma_config
        mod.PaliGemmaForConditionalGenerationWithPiGemma = vlm
        mod.PiGemmaForCausalLM = expert

    for cls in (configuration_pi0.PI0Config, configuration_pi05.PI05Config):
        real_post = cls.__post_init__

        def post_init(self, _real=real_post):
            names = (self.paligemma_variant, self.action_expert_variant)
            if names[0] in TINY_VARIANTS:
                self.paligemma_variant = "gemma_2b"
            if names[1] in TINY_VARIANTS:
                self.action_expert_variant = "gemma_300m"
            try:
                _real(self)
            finally:
                self.paligemma_variant, self.action_expert_variant = names

        cls.__post_init__ = post_init


# ----------------------------------------------------------------------------- cases
def _classes(kind: str):
    if kind == "pi0":
        from lerobot.policies.pi0.configuration_pi0 import PI0Config
        from lerobot.policies.pi0.modeling_pi0 import PI0Policy

        return PI0Config, PI0Policy
    from lerobot.policies.pi05.configuration_pi05 import PI05Config
    from lerobot.policies.pi05.modeling_pi05 import PI05Policy

    return PI05Config, PI05Policy


def _config(case: dict):
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature

    cfg_cls, _ = _classes(case["type"])
    inputs = {
        f"observation.images.{cam}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w))
        for cam, (h, w) in case["cameras"].items()
    }
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(case["state_dim"],))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(case["action_dim"],))}
    kw = dict(case["config"])
    if "normalization_mapping" in kw:
        kw["normalization_mapping"] = {
            k: NormalizationMode(v) for k, v in kw["normalization_mapping"].items()
        }
    return cfg_cls(input_features=inputs, output_features=outputs, device="cpu", **kw)


@torch.no_grad()
def _randomize(policy: nn.Module, g: torch.Generator) -> None:
    """Random weights at unit scale (LeRobot's init zeroes the norms and AdaRMS; nothing to test)."""
    for name, t in policy.state_dict().items():
        if not t.is_floating_point():
            continue
        if "norm" in name and name.endswith(".weight") and t.ndim == 1:
            if "vision_tower" in name:  # LayerNorm: w * x
                t.copy_(0.8 + 0.4 * torch.rand(t.shape, generator=g))
            else:  # Gemma RMSNorm: (1 + w) * x
                t.copy_(0.2 * torch.randn(t.shape, generator=g))
        elif "norm.dense" in name:  # AdaRMS modulation (scale, shift, gate) from the time
            t.copy_(0.3 * torch.randn(t.shape, generator=g) / (t.shape[-1] ** 0.5 if t.ndim > 1 else 1))
        elif name.endswith(".bias"):
            t.copy_(0.1 * torch.randn(t.shape, generator=g))
        elif "position_embedding" in name:
            t.copy_(0.5 * torch.randn(t.shape, generator=g))
        elif "embed_tokens" in name or "lm_head" in name:  # scaled by sqrt(width) in the prefix
            t.copy_(torch.randn(t.shape, generator=g) / t.shape[1] ** 0.5)
        else:
            fan_in = t[0].numel() if t.ndim > 1 else t.numel()
            t.copy_(torch.randn(t.shape, generator=g) / max(fan_in, 1) ** 0.5)


def _stats(case: dict, g: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    def vec(d: int) -> dict[str, torch.Tensor]:
        mean = torch.randn(d, generator=g)
        std = 0.2 + torch.rand(d, generator=g)
        q = {f"q{p:02d}": mean + s * std for p, s in ((1, -2.3), (10, -1.3), (50, 0.0), (90, 1.3), (99, 2.3))}
        return {
            "mean": mean,
            "std": std,
            "min": mean - 2.5 * std,
            "max": mean + 2.5 * std,
            "count": torch.tensor([1000.0]),
            **q,
        }

    out = {"observation.state": vec(case["state_dim"]), "action": vec(case["action_dim"])}
    visual = (case["config"].get("normalization_mapping") or {}).get("VISUAL", "IDENTITY")
    if str(getattr(visual, "value", visual)) != "IDENTITY":  # image statistics [3, 1, 1], drawn last
        for cam in case["cameras"]:
            mean = torch.tensor([0.45, 0.42, 0.40]) + 0.05 * torch.randn(3, generator=g)
            std = torch.tensor([0.23, 0.22, 0.24]) + 0.02 * torch.rand(3, generator=g)
            img = {"mean": mean, "std": std, "min": torch.full((3,), 0.05), "max": torch.full((3,), 0.9)}
            img.update(q01=img["min"] + 0.02, q99=img["max"] - 0.02, q10=mean - std, q90=mean + std)
            out[f"observation.images.{cam}"] = {k: v.reshape(3, 1, 1) for k, v in img.items()}
    return out


def _inputs(case: dict, cfg, stats: dict, g: torch.Generator) -> dict[str, torch.Tensor]:
    out = {
        f"observation.images.{cam}": torch.randint(
            0, 256, (N_SAMPLES, h, w, 3), generator=g, dtype=torch.uint8
        )
        for cam, (h, w) in case["cameras"].items()
    }
    st = stats["observation.state"]
    state = st["mean"] + st["std"] * 1.2 * torch.randn(N_SAMPLES, case["state_dim"], generator=g)
    state[0, 0] = st["q01"][0] - 0.5 * st["std"][0]  # below q01: normalized < -1 (pi0.5 bin -1)
    state[1, 1] = st["q99"][1] + 0.5 * st["std"][1]  # above q99: normalized > 1 (bin 255)
    out["observation.state"] = state
    out["noise"] = torch.randn(N_SAMPLES, cfg.chunk_size, cfg.max_action_dim, generator=g)
    return out


def check_loaded(policy: nn.Module, folder: Path) -> int:
    """Every tensor of ``model.safetensors`` equals the reloaded model's (the random-model trap:
    ``PI0Policy.from_pretrained`` prints and returns a random model when loading fails)."""
    saved = load_file(str(folder / "model.safetensors"))
    sd = policy.state_dict()
    bad = [k for k, v in saved.items() if k not in sd or not torch.equal(sd[k], v)]
    if bad or not saved:
        raise SystemExit(f"{folder}: LeRobot did not load the saved weights ({len(bad)} differ: {bad[:4]})")
    return len(saved)


def _run_lerobot(
    kind: str, folder: Path, inputs: dict[str, torch.Tensor], tasks: list[str]
) -> tuple[dict, list]:
    from lerobot.policies.factory import make_pre_post_processors

    _, policy_cls = _classes(kind)
    policy = policy_cls.from_pretrained(str(folder), strict=True).eval()
    n_loaded = check_loaded(policy, folder)
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(folder))
    max_len = policy.config.tokenizer_max_length
    actions, normalized, tokens, prompts = [], [], [], []
    for i in range(N_SAMPLES):
        obs = {"task": tasks[i]}
        for k, v in inputs.items():
            if k.startswith("observation.images."):
                obs[k] = v[i].permute(2, 0, 1).to(torch.float32) / 255.0
            elif k.startswith("observation."):
                obs[k] = v[i]
        batch = pre(obs)
        prompts.append(batch.get("task"))
        ids = batch["observation.language.tokens"][0]
        mask = batch["observation.language.attention_mask"][0].bool()
        row = torch.full((max_len,), -1, dtype=torch.long)
        row[: int(mask.sum())] = ids[mask]
        tokens.append(row)
        with torch.no_grad():
            images, img_masks = policy._preprocess_images(batch)
            lang = (batch["observation.language.tokens"], batch["observation.language.attention_mask"])
            noise = inputs["noise"][i : i + 1].clone()
            if kind == "pi0":
                state = policy.prepare_state(batch)
                chunk = policy.model.sample_actions(images, img_masks, *lang, state, noise=noise)
            else:
                chunk = policy.model.sample_actions(images, img_masks, *lang, noise=noise)
        chunk = chunk[:, :, : policy.config.output_features["action"].shape[0]]
        normalized.append(chunk[0].clone())
        actions.append(post(chunk)[0].clone())
    out = {
        "action": torch.stack(actions).contiguous(),
        "action.normalized": torch.stack(normalized).contiguous(),
        "tokens": torch.stack(tokens).contiguous(),
    }
    return out, [prompts, n_loaded]


def _provenance(case_name: str, extra: dict | None = None) -> dict:
    return provenance(
        "scripts/lerobot_goldens_pi0.py",
        case_name,
        ("transformers", "tokenizers"),
        "raw observation + task -> preprocessor -> _preprocess_images/prepare_state -> "
        "model.sample_actions(noise) -> truncate -> postprocessor",
        extra,
        patched=[
            "get_gemma_config answers the variants of gemma_variants.json; the config's variant check "
            "accepts them",
            "PaliGemma's SigLIP vision config replaced by the tiny one (projection_dim = Gemma width), "
            "both Gemmas' vocabulary = the tiny tokenizer's size",
            f"{TOKENIZER_NAME} resolves to the local folder test/fixtures/lerobot/{TOKENIZER_NAME}",
        ],
    )


def make_case(name: str, case: dict, out: Path, seed: int, vocab_size: int) -> None:
    g = torch.Generator().manual_seed(seed)
    cfg = _config(case)
    _, policy_cls = _classes(case["type"])
    policy = policy_cls(cfg)
    _randomize(policy, g)
    stats = _stats(case, g)
    dest = out / name
    folder = save_policy_folder(policy, cfg, stats, dest)
    variants = {
        "note": "reduced test model: LeRobot's variant table as extended by scripts/lerobot_goldens_pi0.py",
        "variants": {k: TINY_VARIANTS[k] for k in (cfg.paligemma_variant, cfg.action_expert_variant)},
        "vision": {**TINY_SIGLIP, "patch_size": 14, "layer_norm_eps": 1e-6},
        "vocab_size": vocab_size,
    }
    write_json(folder / VARIANTS_FILE, variants)
    inputs = _inputs(case, cfg, stats, g)
    save_tensors(inputs, dest / "inputs.safetensors")
    outputs, (prompts, n_loaded) = _run_lerobot(case["type"], folder, inputs, case["tasks"])
    save_file(outputs, str(dest / "outputs.safetensors"))
    prov = _provenance(
        name,
        {
            "seed": seed,
            "case_spec": case,
            "tasks": case["tasks"],
            "prompts": prompts,
            "loaded": f"{n_loaded} tensors of model.safetensors equal in the reloaded LeRobot model",
            "n_samples": N_SAMPLES,
        },
    )
    write_json(dest / "provenance.json", prov)
    print(f"{name}: {folder_kb(dest):.0f} kB, action std {outputs['action'].std():.3f}, prompts {prompts}")


def full_size_keys(kind: str, out: Path, tmp: Path) -> None:
    """Every state-dict name and shape of LeRobot's default-size pi0 / pi0.5 (gemma_2b +
    gemma_300m, SigLIP so400m, 224x224, 32-dim padded state/action), on the meta device."""
    from lerobot.configs.types import FeatureType, PolicyFeature

    cfg_cls, policy_cls = _classes(kind)
    inputs = {
        f"observation.images.{c}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, 224, 224))
        for c in ("base_0_rgb", "left_wrist_0_rgb")
    }
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(8,))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(7,))}
    cfg = cfg_cls(input_features=inputs, output_features=outputs, device="cpu")
    cfg.device = "meta"  # PI0Policy moves itself to config.device
    keys = meta_key_shapes(policy_cls, cfg)
    cfg.device = "cpu"
    save = tmp / f"_{kind}_cfg"
    save.mkdir(exist_ok=True)
    cfg._save_pretrained(save)
    data = {
        "provenance": _provenance(
            f"{kind}_full_keys", {"built_on": f"meta device, default {cfg_cls.__name__}"}
        ),
        "config": json.loads((save / "config.json").read_text()),
        "keys": keys,
    }
    write_json(out / f"{kind}_full_keys.json", data)
    n_params = sum(torch.Size(s).numel() for s in keys.values())
    print(f"{kind}_full_keys.json: {len(keys)} keys, {n_params / 1e9:.2f} G")


def main(argv: list[str] | None = None) -> int:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", default=None, help="one case name (or pi0_full_keys / pi05_full_keys)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    tok_dir = out / TOKENIZER_NAME
    shutil.rmtree(tok_dir, ignore_errors=True)
    vocab_size = make_tokenizer(tok_dir)
    os.chdir(out)  # TOKENIZER_NAME resolves to the local folder (module docstring, item 3)
    patch_lerobot(vocab_size)
    for i, (name, case) in enumerate(CASES.items()):
        if args.only in (None, name):
            make_case(name, case, out, seed=4000 + i, vocab_size=vocab_size)
    for kind in ("pi0", "pi05"):
        if args.only in (None, f"{kind}_full_keys"):
            with tempfile.TemporaryDirectory() as tmp:
                full_size_keys(kind, out, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
