"""Run INSIDE the LeRobot reference lane (Python 3.12, ``lerobot[pi]==0.6.1``): build the reduced
pi0 / pi0.5 checkpoints of ``pi0_live_cases.py`` with LeRobot itself and record what LeRobot's
own policy API answers on fixed inputs. ``test_pi0_live.py`` runs it in a subprocess, then
exports the folders with ``vla-ros export`` and compares. Never imported by vla_ros.

Per case, under ``--out``::

    google/paligemma-3b-pt-224/       the tiny Gemma-layout tokenizer (scripts/lerobot_goldens_pi0.py)
    <case>/pretrained_model/          save_pretrained + processors (+ gemma_variants.json)
    <case>/inputs.safetensors         observation.images.<cam> uint8 [N, H, W, 3], observation.state
                                      float32 [N, D] raw, noise / select_noise [N, chunk, max_action_dim]
    <case>/outputs.safetensors        chunk [N, chunk, A]: postprocessor(predict_action_chunk(batch,
                                      noise=noise)); select [N, n_action_steps, A]: postprocessor of
                                      n_action_steps select_action calls after torch.manual_seed
                                      (select_noise = LeRobot's sample_noise after the same seed);
                                      tokens [N, tokenizer_max_length] (-1 = padding)
                                      chunk_bfloat16: a bf16 checkpoint's chunk at its own precision
    <case>/case.json                  tasks, the prompts LeRobot built, versions

A checkpoint saved with ``dtype: bfloat16`` is answered by LeRobot loaded with ``dtype`` set to
``float32`` (vla_ros runs fp32; the bf16 weights widen exactly) and, for the record, as saved.

LeRobot only knows ``gemma_2b`` / ``gemma_300m`` and hard-codes SigLIP so400m; this process
teaches it the reduced variants of the case file as ``scripts/lerobot_goldens_pi0.py`` does
(its items 1-3; LeRobot's files are untouched) and writes them into ``gemma_variants.json``,
the file vla_ros reads for variant names it does not know. ``PI0Policy.from_pretrained``
returns a random model when loading fails, so every reloaded tensor is compared with the file.

Usage (in the lane): ``python test/lerobot/pi0_live_lane.py --out DIR [--only CASE]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "scripts")]

import torch  # noqa: E402
from lerobot_goldens_common import save_policy_folder, save_tensors, versions, write_json  # noqa: E402
from lerobot_goldens_pi0 import (  # noqa: E402
    TOKENIZER_NAME,
    VARIANTS_FILE,
    _classes,
    _randomize,
    _stats,
    make_tokenizer,
)
from pi0_live_cases import CASES, N_SAMPLES, VARIANTS, VISION  # noqa: E402

#: the reduced SigLIP of the case being built (read by the patched PaliGemma constructor)
CURRENT_VISION: dict[str, int] = {}


def patch_lerobot(vocab_size: int) -> None:
    """LeRobot learns :data:`VARIANTS` and builds :data:`CURRENT_VISION` as its SigLIP."""
    from lerobot.policies.pi0 import configuration_pi0, modeling_pi0
    from lerobot.policies.pi05 import configuration_pi05, modeling_pi05

    for mod in (modeling_pi0, modeling_pi05):
        real_get, real_vlm, real_expert = (
            mod.get_gemma_config,
            mod.PaliGemmaForConditionalGenerationWithPiGemma,
            mod.PiGemmaForCausalLM,
        )

        def get_gemma_config(variant: str, _real=real_get, _cls=mod.GemmaConfig):
            return _cls(**VARIANTS[variant]) if variant in VARIANTS else _real(variant)

        def vlm(config, _real=real_vlm):
            for k, v in CURRENT_VISION.items():
                setattr(config.vision_config, k, v)
            config.vision_config.projection_dim = config.text_config.hidden_size
            config.text_config.vocab_size = vocab_size
            config._vocab_size = vocab_size
            return _real(config)

        def expert(config, _real=real_expert):
            config.vocab_size = vocab_size
            return _real(config)

        mod.get_gemma_config = get_gemma_config
        mod.PaliGemmaForConditionalGenerationWithPiGemma = vlm
        mod.PiGemmaForCausalLM = expert

    for cls in (configuration_pi0.PI0Config, configuration_pi05.PI05Config):
        real_post = cls.__post_init__

        def post_init(self, _real=real_post):
            names = (self.paligemma_variant, self.action_expert_variant)
            self.paligemma_variant = "gemma_2b" if names[0] in VARIANTS else names[0]
            self.action_expert_variant = "gemma_300m" if names[1] in VARIANTS else names[1]
            try:
                _real(self)
            finally:
                self.paligemma_variant, self.action_expert_variant = names

        cls.__post_init__ = post_init


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
    if "image_resolution" in kw:
        kw["image_resolution"] = tuple(kw["image_resolution"])
    return cfg_cls(input_features=inputs, output_features=outputs, device="cpu", **kw)


def _inputs(case: dict, cfg, stats: dict, g: torch.Generator) -> dict[str, torch.Tensor]:
    out = {
        f"observation.images.{cam}": torch.randint(
            0, 256, (N_SAMPLES, h, w, 3), generator=g, dtype=torch.uint8
        )
        for cam, (h, w) in case["cameras"].items()
    }
    st = stats["observation.state"]
    state = st["mean"] + st["std"] * 1.2 * torch.randn(N_SAMPLES, case["state_dim"], generator=g)
    state[0, 0] = st["min"][0] - 0.3 * st["std"][0]  # outside every range: pi0.5 bin -1, MIN_MAX < -1
    state[1, 1] = st["max"][1] + 0.3 * st["std"][1]
    out["observation.state"] = state
    out["noise"] = torch.randn(N_SAMPLES, cfg.chunk_size, cfg.max_action_dim, generator=g)
    return out


def check_loaded(policy: torch.nn.Module, folder: Path) -> None:
    """Every tensor of ``model.safetensors`` is the reloaded model's (at the file's dtype): the
    random-model trap of ``PI0Policy.from_pretrained``."""
    from safetensors.torch import load_file

    saved, sd = load_file(str(folder / "model.safetensors")), policy.state_dict()
    bad = [k for k, v in saved.items() if k not in sd or not torch.equal(sd[k].to(v.dtype), v)]
    if bad or not saved:
        raise SystemExit(f"{folder}: LeRobot did not load the saved weights ({len(bad)} differ: {bad[:4]})")


def _run(kind: str, folder: Path, inputs: dict, tasks: list[str], seed: int) -> tuple[dict, list]:
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.common.flow_matching import sample_noise
    from lerobot.policies.factory import make_pre_post_processors

    _, policy_cls = _classes(kind)
    cfg = PreTrainedConfig.from_pretrained(str(folder))
    saved_dtype, cfg.dtype = cfg.dtype, "float32"  # the reference: LeRobot's fp32 run
    policy = policy_cls.from_pretrained(str(folder), config=cfg, strict=True).eval()
    check_loaded(policy, folder)
    low = None
    if saved_dtype != "float32":  # and LeRobot's run at the checkpoint's own precision
        low = policy_cls.from_pretrained(str(folder), strict=True).eval()
        assert low.config.dtype == saved_dtype
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(folder))
    chunks_low = []
    chunks, selects, select_noise, tokens, prompts = [], [], [], [], []
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
        row = torch.full((cfg.tokenizer_max_length,), -1, dtype=torch.long)
        row[: int(mask.sum())] = ids[mask]
        tokens.append(row)
        with torch.no_grad():
            chunk = policy.predict_action_chunk(batch, noise=inputs["noise"][i : i + 1].clone())
        chunks.append(post(chunk)[0].clone())
        if low is not None:
            with torch.no_grad():
                chunk = low.predict_action_chunk(batch, noise=inputs["noise"][i : i + 1].clone())
            chunks_low.append(post(chunk.float())[0].clone())
        # select_action draws its own noise: seed, and draw the same with LeRobot's sample_noise
        torch.manual_seed(seed + i)
        select_noise.append(sample_noise((1, cfg.chunk_size, cfg.max_action_dim), "cpu")[0])
        policy.reset()
        torch.manual_seed(seed + i)
        with torch.no_grad():
            rows = [post(policy.select_action(batch))[0].clone() for _ in range(cfg.n_action_steps)]
        selects.append(torch.stack(rows))
    out = {
        "chunk": torch.stack(chunks).contiguous(),
        "select": torch.stack(selects).contiguous(),
        "tokens": torch.stack(tokens).contiguous(),
    }
    if low is not None:
        out[f"chunk_{saved_dtype}"] = torch.stack(chunks_low).contiguous()
    return out, [prompts, torch.stack(select_noise)]


def make_case(name: str, case: dict, out: Path, seed: int, vocab_size: int) -> None:
    CURRENT_VISION.clear()
    CURRENT_VISION.update(VISION[case["vision"]])
    g = torch.Generator().manual_seed(seed)
    cfg = _config(case)
    _, policy_cls = _classes(case["type"])
    policy = policy_cls(cfg)
    _randomize(policy, g)
    stats = _stats(case, g)
    dest = out / name
    folder = save_policy_folder(policy, cfg, stats, dest)
    write_json(
        folder / VARIANTS_FILE,
        {
            "note": "reduced live-lane model: LeRobot's variants as extended by pi0_live_lane.py",
            "variants": {k: VARIANTS[k] for k in (cfg.paligemma_variant, cfg.action_expert_variant)},
            "vision": {**CURRENT_VISION, "patch_size": 14, "layer_norm_eps": 1e-6},
            "vocab_size": vocab_size,
        },
    )
    inputs = _inputs(case, cfg, stats, g)
    outputs, (prompts, select_noise) = _run(case["type"], folder, inputs, case["tasks"], seed)
    inputs["select_noise"] = select_noise
    save_tensors(inputs, dest / "inputs.safetensors")
    save_tensors(outputs, dest / "outputs.safetensors")
    write_json(
        dest / "case.json",
        {"tasks": case["tasks"], "prompts": prompts, "versions": versions("transformers", "tokenizers")},
    )
    print(
        f"{name}: chunk {tuple(outputs['chunk'].shape)} std {outputs['chunk'].std():.3f}, prompts {prompts}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", default=None, help="one case name")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    tok_dir = out / TOKENIZER_NAME
    shutil.rmtree(tok_dir, ignore_errors=True)
    vocab_size = make_tokenizer(tok_dir)
    os.chdir(out)  # LeRobot's processors load TOKENIZER_NAME: the local folder
    patch_lerobot(vocab_size)
    for i, (name, case) in enumerate(CASES.items()):
        if args.only in (None, name):
            make_case(name, case, out, seed=7000 + 10 * i, vocab_size=vocab_size)
    (out / "done.json").write_text(json.dumps(sorted(CASES)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
