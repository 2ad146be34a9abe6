"""SmolVLA golden fixtures, made by LeRobot itself (the parity oracle).

Runs in the reference lane only (Python 3.12 + ``lerobot[smolvla]==0.6.1``, see
``scripts/setup_lerobot_ref.sh`` / ``make lerobot-ref``) with ``HF_HUB_OFFLINE=1``; vla_ros never
imports LeRobot. Same folder format as ``scripts/lerobot_goldens.py`` (ACT)::

    test/fixtures/lerobot/smolvla_vlm_tiny/          the reduced "VLM" SmolVLA loads by name
                                                     (vlm_model_name): SmolVLM config.json,
                                                     tokenizer.json (+ tokenizer_config.json),
                                                     processor files; no weights
    test/fixtures/lerobot/<case>/pretrained_model/   the checkpoint folder as LeRobot writes it
    test/fixtures/lerobot/<case>/inputs.safetensors  observation.images.<cam> uint8 [N, H, W, 3]
                                                     (HWC camera bytes; LeRobot gets /255 CHW),
                                                     observation.state float32 [N, D],
                                                     noise float32 [N, chunk, max_action_dim]
    test/fixtures/lerobot/<case>/outputs.safetensors action float32 [N, chunk, A] (raw units),
                                                     action.normalized (before the postprocessor),
                                                     tokens int64 [N, tokenizer_max_length] (the
                                                     preprocessor's ids, -1 after the last one)
    test/fixtures/lerobot/<case>/provenance.json     script, case, versions, seed, the tasks

SmolVLA always loads its VLM config and processor by name, even with ``load_vlm_weights=False``,
so the script first writes a tiny SmolVLM folder (a byte-level BPE tokenizer trained here with the
``tokenizers`` library on a few instructions, a SmolVLM config with few layers and small widths,
the SmolVLM image/video processors) and passes its path (relative to the repository root) as
``vlm_model_name``. Each case builds a random-weight ``SmolVLAPolicy`` with LeRobot's classes,
saves it with ``save_pretrained`` and the processor pipelines (made-up statistics), reloads the
folder with LeRobot (``strict=True``) and runs raw observation + task -> preprocessor ->
``predict_action_chunk(noise=...)`` -> postprocessor, one sample at a time (as a robot does).

The vision tower's position ids are recorded with a hook and checked to be ``0..P-1``
(transformers 4.55-4.57 compute them off by one; see ``shared/LEROBOT_FACTS.md``): the script
refuses to write goldens from a transformers that gets them wrong.

The full-size key list (``smolvla_full_keys.json``) is LeRobot's default ``SmolVLAConfig`` built
on the meta device. Its VLM config (SmolVLM2-500M-Video-Instruct) is not available offline, so it
is constructed here from the published numbers (:data:`SMOLVLM2_500M`); see that constant.

Usage (in the lane): ``python scripts/lerobot_goldens_smolvla.py [--out DIR] [--only CASE]``
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
    write_full_keys,
    write_json,
)
from safetensors.torch import save_file
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "test" / "fixtures" / "lerobot"
VLM_DIR = "smolvla_vlm_tiny"
N_SAMPLES = 2

#: special tokens of the SmolVLM2 tokenizer the processor looks up (and a pad token)
SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<pad>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    "<end_of_utterance>",
]
CORPUS = [
    "pick up the red cube and place it in the bowl",
    "open the top drawer and put the sponge inside",
    "stack the green block on the blue block",
    "push the button, then fold the towel neatly",
    "grasp the cup by its handle",
]
#: the tiny VLM: SmolVLM layout (SigLIP-style vision tower, pixel shuffle, Llama text model)
TINY_TEXT = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 6,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "rms_norm_eps": 1e-5,
    "rope_theta": 100000.0,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
}
TINY_VISION = {
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 512,
    "patch_size": 16,
    "layer_norm_eps": 1e-6,
    "hidden_act": "gelu_pytorch_tanh",
}
TINY_SCALE_FACTOR = 4
#: SmolVLM2-500M-Video-Instruct's architecture numbers (its config.json is not available offline;
#: these are the values the facts sheet measured: 960 wide, 32 layers, 15 heads / 5 KV heads of 64,
#: MLP 2560, RMSNorm 1e-5; SigLIP 768 wide, 12 layers, 16x16 patches at 512, pixel shuffle x4;
#: the vocabulary size 49280 is the SmolVLM2 tokenizer's)
SMOLVLM2_500M = {
    "text": {
        "model_type": "llama",
        "hidden_size": 960,
        "intermediate_size": 2560,
        "num_hidden_layers": 32,
        "num_attention_heads": 15,
        "num_key_value_heads": 5,
        "head_dim": 64,
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
        "max_position_embeddings": 8192,
        "vocab_size": 49280,
        "tie_word_embeddings": False,
    },
    "vision": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 512,
        "patch_size": 16,
        "layer_norm_eps": 1e-6,
        "hidden_act": "gelu_pytorch_tanh",
    },
    "scale_factor": 4,
}

#: SmolVLA's default normalization_mapping (a case's "norm" replaces it)
DEFAULT_NORM = {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}

# name -> cameras {name: (H, W)}, dims, tasks, SmolVLAConfig overrides
CASES: dict[str, dict] = {
    "smolvla_2cam": {
        "cameras": {"top": (48, 64), "wrist": (48, 64)},
        "state_dim": 6,
        "action_dim": 6,
        "tasks": ["pick up the red cube", "stack the green block on the blue block\n"],
        "smolvla": {
            "chunk_size": 10,
            "n_action_steps": 5,
            "num_steps": 10,
            "num_vlm_layers": 4,
            "tokenizer_max_length": 16,
        },
    },
    # one tall camera plus an empty-camera slot; a task longer than the token limit
    "smolvla_1cam_empty": {
        "cameras": {"front": (72, 40)},
        "state_dim": 5,
        "action_dim": 4,
        "tasks": ["open the top drawer and put the sponge inside, then push the button", "grasp the cup"],
        "smolvla": {
            "chunk_size": 8,
            "n_action_steps": 8,
            "num_steps": 4,
            "num_vlm_layers": 3,
            "empty_cameras": 1,
            "tokenizer_max_length": 8,
        },
    },
    # images normalized by the preprocessor (VISUAL MEAN_STD with [3, 1, 1] statistics) before
    # SmolVLA resizes them; state MIN_MAX, action QUANTILES
    "smolvla_images_mean_std": {
        "cameras": {"left": (40, 40), "right": (40, 40)},
        "state_dim": 4,
        "action_dim": 3,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "QUANTILES"},
        "tasks": ["push the button", "grasp the cup"],
        "smolvla": {
            "chunk_size": 4,
            "n_action_steps": 4,
            "num_steps": 3,
            "num_vlm_layers": 2,
            "tokenizer_max_length": 10,
        },
    },
}


def make_tokenizer(dest: Path) -> None:
    """A byte-level BPE tokenizer (GPT-2 style, like SmolLM's) with SmolVLM's special tokens and a
    BOS post-processor, trained on :data:`CORPUS`; saved as tokenizer.json + tokenizer_config.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 10, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|im_start|> $A", special_tokens=[("<|im_start|>", SPECIALS.index("<|im_start|>"))]
    )
    dest.mkdir(parents=True, exist_ok=True)
    tok.save(str(dest / "tokenizer.json"))
    fast = PreTrainedTokenizerFast(
        tokenizer_file=str(dest / "tokenizer.json"),
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<|endoftext|>",
        extra_special_tokens={
            "fake_image_token": "<fake_token_around_image>",
            "image_token": "<image>",
            "global_image_token": "<global-img>",
            "end_of_utterance_token": "<end_of_utterance>",
        },
    )
    fast.save_pretrained(str(dest))


def make_vlm_folder(dest: Path, text: dict, vision: dict, scale_factor: int) -> None:
    """A SmolVLM folder (config + tokenizer + processors, no weights) usable as vlm_model_name."""
    from transformers import AutoTokenizer, SmolVLMConfig, SmolVLMImageProcessor, SmolVLMProcessor
    from transformers.models.smolvlm.video_processing_smolvlm import SmolVLMVideoProcessor

    make_tokenizer(dest)
    tok = AutoTokenizer.from_pretrained(str(dest))
    text = {"vocab_size": len(tok), "pad_token_id": tok.pad_token_id, **text}
    cfg = SmolVLMConfig(
        text_config=text,
        vision_config=vision,
        scale_factor=scale_factor,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        pad_token_id=tok.pad_token_id,
    )
    cfg.save_pretrained(str(dest))
    image_seq_len = (vision["image_size"] // vision["patch_size"]) ** 2 // scale_factor**2
    proc = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(),
        tokenizer=tok,
        video_processor=SmolVLMVideoProcessor(),
        image_seq_len=image_seq_len,
    )
    proc.save_pretrained(str(dest))


def _vlm_name(vlm: Path) -> str:
    """The VLM folder as LeRobot gets it: relative to the repository root when inside it."""
    try:
        return str(vlm.resolve().relative_to(ROOT))
    except ValueError:
        return str(vlm.resolve())


def _config(case: dict, vlm_name: str):
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig

    inputs = {
        f"observation.images.{cam}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w))
        for cam, (h, w) in case["cameras"].items()
    }
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(case["state_dim"],))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(case["action_dim"],))}
    return SmolVLAConfig(
        input_features=inputs,
        output_features=outputs,
        normalization_mapping={k: NormalizationMode(v) for k, v in case.get("norm", DEFAULT_NORM).items()},
        vlm_model_name=vlm_name,
        load_vlm_weights=False,
        device="cpu",
        **case["smolvla"],
    )


@torch.no_grad()
def _randomize(policy: nn.Module, g: torch.Generator) -> None:
    """Random weights at unit scale everywhere (the default init is too small to test anything)."""
    for name, t in policy.state_dict().items():
        if not t.is_floating_point():
            continue
        if "norm" in name and name.endswith(".weight"):
            t.copy_(0.8 + 0.4 * torch.rand(t.shape, generator=g))
        elif name.endswith(".bias"):
            t.copy_(0.1 * torch.randn(t.shape, generator=g))
        elif "position_embedding" in name:
            t.copy_(0.5 * torch.randn(t.shape, generator=g))
        elif "embed_tokens" in name:  # scaled by sqrt(hidden) in the prefix
            t.copy_(torch.randn(t.shape, generator=g) / t.shape[1] ** 0.5)
        else:
            fan_in = t[0].numel() if t.ndim > 1 else t.numel()
            t.copy_(torch.randn(t.shape, generator=g) / max(fan_in, 1) ** 0.5)


def _stats(case: dict, g: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    def vec(d: int) -> dict[str, torch.Tensor]:
        mean = torch.randn(d, generator=g)
        std = 0.2 + torch.rand(d, generator=g)
        return {
            "mean": mean,
            "std": std,
            "min": mean - 2.5 * std,
            "max": mean + 2.5 * std,
            "count": torch.tensor([1000.0]),
        }

    out = {"observation.state": vec(case["state_dim"]), "action": vec(case["action_dim"])}
    if "norm" in case:  # quantiles, and image statistics [3, 1, 1] (drawn after the others)
        for st in out.values():
            st["q01"], st["q99"] = st["min"] + 0.1 * st["std"], st["max"] - 0.1 * st["std"]
        for cam in case["cameras"]:
            mean = torch.tensor([0.45, 0.42, 0.40]) + 0.05 * torch.randn(3, generator=g)
            std = torch.tensor([0.23, 0.22, 0.24]) + 0.02 * torch.rand(3, generator=g)
            img = {"mean": mean, "std": std, "min": torch.zeros(3), "max": torch.ones(3)}
            out[f"observation.images.{cam}"] = {k: v.reshape(3, 1, 1) for k, v in img.items()}
    return out


def _inputs(case: dict, cfg, g: torch.Generator) -> dict[str, torch.Tensor]:
    out = {
        f"observation.images.{cam}": torch.randint(
            0, 256, (N_SAMPLES, h, w, 3), generator=g, dtype=torch.uint8
        )
        for cam, (h, w) in case["cameras"].items()
    }
    out["observation.state"] = torch.randn(N_SAMPLES, case["state_dim"], generator=g) * 1.5
    out["noise"] = torch.randn(N_SAMPLES, cfg.chunk_size, cfg.max_action_dim, generator=g)
    return out


def _position_ids_hook(policy: nn.Module, seen: list[torch.Tensor]):
    emb = policy.model.vlm_with_expert.get_vlm_model().vision_model.embeddings.position_embedding
    return emb.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach().clone()))


def _run_lerobot(folder: Path, inputs: dict[str, torch.Tensor], tasks: list[str]) -> tuple[dict, bool]:
    """Reload ``folder`` with LeRobot and run the whole path on every sample."""
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    policy = SmolVLAPolicy.from_pretrained(str(folder), strict=True).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(folder))
    seen: list[torch.Tensor] = []
    hook = _position_ids_hook(policy, seen)
    max_len = policy.config.tokenizer_max_length
    actions, normalized, tokens = [], [], []
    for i in range(N_SAMPLES):
        obs = {"task": tasks[i]}
        for k, v in inputs.items():
            if k.startswith("observation.images."):
                obs[k] = v[i].permute(2, 0, 1).to(torch.float32) / 255.0
            elif k.startswith("observation."):
                obs[k] = v[i]
        batch = pre(obs)
        ids = batch["observation.language.tokens"][0]
        mask = batch["observation.language.attention_mask"][0].bool()
        row = torch.full((max_len,), -1, dtype=torch.long)
        row[: int(mask.sum())] = ids[mask]
        tokens.append(row)
        policy.reset()
        chunk = policy.predict_action_chunk(batch, noise=inputs["noise"][i : i + 1].clone())
        normalized.append(chunk[0].clone())
        actions.append(post(chunk)[0].clone())
    hook.remove()
    ok = bool(seen) and all(torch.equal(p[0], torch.arange(p.shape[1])) for p in seen)
    out = {
        "action": torch.stack(actions).contiguous(),
        "action.normalized": torch.stack(normalized).contiguous(),
        "tokens": torch.stack(tokens).contiguous(),
    }
    return out, ok


def _provenance(case_name: str, extra: dict | None = None) -> dict:
    return provenance(
        "scripts/lerobot_goldens_smolvla.py",
        case_name,
        ("transformers", "tokenizers"),
        "raw observation + task -> preprocessor -> predict_action_chunk(noise) -> postprocessor",
        extra,
    )


def make_case(name: str, case: dict, out: Path, seed: int) -> None:
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    g = torch.Generator().manual_seed(seed)
    cfg = _config(case, _vlm_name(out / VLM_DIR))
    policy = SmolVLAPolicy(cfg)
    _randomize(policy, g)
    stats = _stats(case, g)
    dest = out / name
    folder = save_policy_folder(policy, cfg, stats, dest)
    inputs = _inputs(case, cfg, g)
    save_tensors(inputs, dest / "inputs.safetensors")
    outputs, pos_ok = _run_lerobot(folder, inputs, case["tasks"])
    if not pos_ok:
        raise SystemExit(
            "the vision tower's position ids are not 0..P-1 in this transformers (4.55-4.57 are off "
            "by one); pin the reference lane's transformers (requirements/lerobot-ref.txt)"
        )
    save_file(outputs, str(dest / "outputs.safetensors"))
    prov = _provenance(
        name,
        {
            "seed": seed,
            "case_spec": case,
            "tasks": case["tasks"],
            "vlm_model_name": cfg.vlm_model_name,
            "vision_position_ids": "checked 0..P-1 by a hook on the position embedding",
            "n_samples": N_SAMPLES,
        },
    )
    write_json(dest / "provenance.json", prov)
    print(f"{name}: {folder_kb(dest):.0f} kB, action std {outputs['action'].std():.3f}")


def full_size_keys(out: Path, tmp: Path) -> None:
    """Every state-dict name and shape of LeRobot's default-size SmolVLA (smolvla_base's layout:
    3 cameras 256x256 as in its config, 6-D state/action), built on the meta device with the
    SmolVLM2-500M numbers of :data:`SMOLVLM2_500M` (the tiny tokenizer stands in for SmolVLM2's
    only to satisfy the processor lookup)."""
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    vlm = tmp / "smolvlm2_500m_config"
    make_vlm_folder(vlm, SMOLVLM2_500M["text"], SMOLVLM2_500M["vision"], SMOLVLM2_500M["scale_factor"])
    cfg_path = vlm / "config.json"
    c = json.loads(cfg_path.read_text())
    c["text_config"]["vocab_size"] = SMOLVLM2_500M["text"]["vocab_size"]
    cfg_path.write_text(json.dumps(c, indent=1))
    inputs = {
        f"observation.images.camera{i}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, 256, 256))
        for i in (1, 2, 3)
    }
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(6,))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(6,))}
    cfg = SmolVLAConfig(input_features=inputs, output_features=outputs, vlm_model_name=str(vlm), device="cpu")
    keys = meta_key_shapes(SmolVLAPolicy, cfg)
    cfg.vlm_model_name = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
    prov = _provenance(
        "smolvla_full_keys",
        {
            "built_on": "meta device, default SmolVLAConfig",
            "vlm_config": "SmolVLM2-500M-Video-Instruct constructed from known numbers (offline)",
            "smolvlm2_500m": SMOLVLM2_500M,
        },
    )
    write_full_keys(out, "smolvla_full_keys", cfg, keys, prov, vlm_config=c)


def main(argv: list[str] | None = None) -> int:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", default=None, help="one case name (or smolvla_full_keys)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)  # vlm_model_name is relative to the repository root
    torch.set_num_threads(2)
    vlm = args.out / VLM_DIR
    shutil.rmtree(vlm, ignore_errors=True)
    make_vlm_folder(vlm, TINY_TEXT, TINY_VISION, TINY_SCALE_FACTOR)
    for i, (name, case) in enumerate(CASES.items()):
        if args.only in (None, name):
            make_case(name, case, args.out, seed=3000 + i)
    if args.only in (None, "smolvla_full_keys"):
        with tempfile.TemporaryDirectory() as tmp:
            full_size_keys(args.out, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
