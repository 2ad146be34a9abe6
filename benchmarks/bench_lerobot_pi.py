"""pi0 / pi0.5 at full size (~4 G parameters), bf16 on the CPU: vla_ros's spine model vs LeRobot's
eager ``predict_action_chunk``, same run, one after the other (never both in memory).

    ./env.sh python benchmarks/bench_lerobot.py --policies pi0,pi05 --work /tmp/bench_pi
    ./env.sh python benchmarks/bench_lerobot_pi.py pi05 --runs 3 --work /tmp/bench_pi   # the same

Why not the ONNX Runtime card: a full-size pi0 is 16 GB in float32 and its export traces it once
more; on a 23 GB machine shared with others neither fits. What fits is bf16, as LeRobot's hub
checkpoints run (``dtype: bfloat16``: Gemma 2B + Gemma 300M in bf16, SigLIP so400m, the
projector and every RMSNorm weight in float32), ~8.3 GiB of weights:

1. the lane (``.venv-lerobot``, LeRobot 0.6.1, ``--lane-worker``) builds LeRobot's default-size
   policy on the meta device with ``dtype: bfloat16`` (so LeRobot's own dtype rules apply),
   allocates it once (``to_empty``), restores the non-weight buffers exactly as LeRobot's
   constructor computes them (RoPE ``inv_freq``, SigLIP ``position_ids``, Gemma's embedding
   scale; then in LeRobot's dtype), fills the weights with seeded random values at unit scale
   (the golden script's ``_randomize``), saves the folder as training would (``save_pretrained``
   + processors, the tiny Gemma-layout tokenizer under PaliGemma's name), then times
   ``preprocessor -> predict_action_chunk(noise=) -> postprocessor`` and exits;
2. then this process reads the folder and builds the vla_ros model with
   :func:`~vla_ros.spine.families.lerobot_pi0_checkpoint.build_in_place` (meta device, the
   checkpoint's tensors assigned: no copy, LeRobot's dtypes kept) and times the same raw
   observation -> raw actions (normalize, tokenize, the prefix, the Euler steps, unnormalize),
   with the prefix / steps split.

Runs only when ``MemAvailable`` is at least :data:`MIN_AVAILABLE_GIB` (checked before each
side); a policy that cannot run gets a row saying why. Parity is LeRobot bf16 vs vla_ros bf16
(the same weights, inputs and noise): two bf16 implementations agree to bf16 rounding, not 1e-4
(the fp32 parity is the test suite's). Benchmarks print; they never assert on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LANE = ROOT / ".venv-lerobot" / "bin" / "python"
THREADS = 2
TAG = "BENCH> "
#: the memory a run needs free (GiB): ~8.3 weights + ~2 randomizing / activations + headroom
MIN_AVAILABLE_GIB = 16.0
TOKENIZER_NAME = "google/paligemma-3b-pt-224"
TASK = "pick up the red cube and place it in the bowl"
SPECS: dict[str, dict[str, Any]] = {
    name: {
        "label": f"{name} full size (PaliGemma 3B: SigLIP so400m + Gemma 2B, Gemma 300M expert), bf16, "
        "chunk 50, 10 steps, 2 cams 224x224",
        "cameras": {"base_0_rgb": (224, 224), "left_wrist_0_rgb": (224, 224)},
        "state_dim": 8,
        "action_dim": 7,
        "runs": 3,
    }
    for name in ("pi0", "pi05")
}


def available_gib() -> float:
    """``MemAvailable`` of /proc/meminfo in GiB (inf where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def _send(msg: dict[str, Any]) -> None:
    sys.stdout.write(TAG + json.dumps(msg) + "\n")
    sys.stdout.flush()


def _summary(samples_s: list[float]) -> dict[str, float]:
    import numpy as np

    a = np.asarray(samples_s) * 1e3
    return {"n": int(a.size), "p50": float(np.median(a)), "max": float(a.max()), "min": float(a.min())}


def _max_rss_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---------------------------------------------------------------- lane side (LeRobot, Python 3.12)
def _restore_buffers(policy: Any, meta_dtypes: dict[str, Any]) -> None:
    """The non-persistent buffers ``to_empty`` left uninitialized, as LeRobot's constructor (and
    its ``.to(bfloat16)``) makes them."""
    import torch

    for mod_name, mod in policy.named_modules():
        for b_name, buf in list(mod.named_buffers(recurse=False)):
            full = f"{mod_name}.{b_name}" if mod_name else b_name
            if b_name in ("inv_freq", "original_inv_freq"):
                value = type(mod).compute_default_rope_parameters(mod.config, "cpu")[0]
            elif b_name == "position_ids":
                value = torch.arange(buf.shape[-1]).expand(buf.shape)
            elif b_name == "embed_scale":
                value = torch.tensor(mod.scalar_embed_scale)
            else:
                raise SystemExit(f"unknown buffer {full}: teach _restore_buffers its value")
            mod.register_buffer(b_name, value.to(meta_dtypes[full]).clone(), persistent=False)


def _meta_policy(name: str, spec: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """(config, LeRobot's default-size bf16 policy on the meta device, its buffers' dtypes)."""
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot_goldens_pi0 import _classes

    cfg_cls, policy_cls = _classes(name)
    inputs = {
        f"observation.images.{c}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w))
        for c, (h, w) in spec["cameras"].items()
    }
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(spec["state_dim"],))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(spec["action_dim"],))}
    cfg = cfg_cls(input_features=inputs, output_features=outputs, device="cpu", dtype="bfloat16")
    cfg.device = "meta"  # the policy moves itself to config.device
    with torch.device("meta"):
        policy = policy_cls(cfg)  # LeRobot's own dtype rules run (on meta)
    cfg.device = "cpu"
    return cfg, policy, {k: v.dtype for k, v in policy.named_buffers()}


def _lane_policy(name: str, spec: dict[str, Any], folder: Path) -> Any:
    """LeRobot's policy with random weights, saved to ``folder`` on the first run; loaded from it
    (meta device + the file's tensors assigned: LeRobot's ``from_pretrained`` builds float32
    first, 16 GB) on a rerun. Never two copies of the weights."""
    import torch
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot_goldens_pi0 import _randomize, _stats, make_tokenizer
    from safetensors.torch import load_file

    cfg, policy, dtypes = _meta_policy(name, spec)
    if (folder / "model.safetensors").is_file():
        missing, unexpected = policy.load_state_dict(
            load_file(str(folder / "model.safetensors")), strict=False, assign=True
        )
        if unexpected or [k for k in missing if "lm_head" not in k]:  # lm_head: tied, unused here
            raise SystemExit(f"{folder}: missing {missing[:4]}, unexpected {unexpected[:4]}")
    else:
        policy.to_empty(device="cpu")
        _randomize(policy, torch.Generator().manual_seed(7))
    _restore_buffers(policy, dtypes)
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.chdir(folder.parent)  # the processors load TOKENIZER_NAME: the local folder
    if not (folder / "model.safetensors").is_file():
        make_tokenizer(folder.parent / TOKENIZER_NAME)
        policy.save_pretrained(str(folder))
        pre, post = make_pre_post_processors(
            cfg, dataset_stats=_stats(spec, torch.Generator().manual_seed(8))
        )
        pre.save_pretrained(str(folder))
        post.save_pretrained(str(folder))
    return policy.eval()


def lane_worker(name: str, work: Path, runs: int) -> None:
    """Build or load LeRobot's policy and time it; writes inputs / outputs for the parity check."""
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(ROOT / "scripts"))
    torch.set_num_threads(THREADS)
    spec = SPECS[name]
    folder = work / "pretrained_model"
    t = time.perf_counter()
    policy = _lane_policy(name, spec, folder)
    build_s = time.perf_counter() - t
    load_s = 0.0
    from lerobot.policies.factory import make_pre_post_processors

    q = policy.model.paligemma_with_expert.paligemma.model.language_model.layers[0].self_attn.q_proj
    if q.weight.dtype != torch.bfloat16 or not q.weight.abs().sum() > 0:
        raise SystemExit(f"LeRobot did not load {folder} as bf16 weights ({q.weight.dtype})")
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(folder))
    g = torch.Generator().manual_seed(11)
    inputs = {
        f"observation.images.{c}": torch.randint(0, 256, (h, w, 3), generator=g).to(torch.uint8)
        for c, (h, w) in spec["cameras"].items()
    }
    inputs["observation.state"] = torch.randn(spec["state_dim"], generator=g)
    inputs["noise"] = torch.randn(1, policy.config.chunk_size, policy.config.max_action_dim, generator=g)
    ends: list[float] = []
    inner = policy.model.paligemma_with_expert.forward

    def forward(*args: Any, **kwargs: Any) -> Any:  # the first call of a chunk is the prefix
        out = inner(*args, **kwargs)
        ends.append(time.perf_counter())
        return out

    policy.model.paligemma_with_expert.forward = forward
    whole, model, prefix = [], [], []
    actions = None
    with torch.no_grad():
        for k in range(runs + 1):  # one untimed warm-up call
            t0 = time.perf_counter()
            obs = {"task": TASK, "observation.state": inputs["observation.state"]}
            for c in spec["cameras"]:
                obs[f"observation.images.{c}"] = inputs[f"observation.images.{c}"].permute(2, 0, 1) / 255.0
            batch = pre(obs)
            ends.clear()
            t1 = time.perf_counter()
            chunk = policy.predict_action_chunk(batch, noise=inputs["noise"].clone())
            t2 = time.perf_counter()
            actions = post(chunk.float())[0]
            t3 = time.perf_counter()
            if k:
                whole.append(t3 - t0)
                model.append(t2 - t1)
                prefix.append(ends[0] - t1)
    save_file({k: v.contiguous() for k, v in inputs.items()}, str(work / "inputs.safetensors"))
    save_file({"action": actions.contiguous()}, str(work / "outputs.safetensors"))
    import lerobot

    _send(
        {
            "whole": whole,
            "model": model,
            "prefix": prefix,
            "steps": [m - p for m, p in zip(model, prefix)],
            "build_s": build_s,
            "load_s": load_s,
            "params_g": sum(p.numel() for p in policy.parameters()) / 1e9,
            "max_rss_gib": _max_rss_gib(),
            "versions": {"lerobot": lerobot.__version__, "torch": torch.__version__},
        }
    )


# ---------------------------------------------------------------- vla_ros side (Python 3.11)
def _vla_ros(name: str, work: Path, runs: int) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    from vla_ros.spine.checkpoints import read_lerobot_folder
    from vla_ros.spine.families.lerobot_pi0_checkpoint import build_in_place

    torch.set_num_threads(THREADS)
    t = time.perf_counter()
    ckpt = read_lerobot_folder(work / "pretrained_model")
    model = build_in_place(ckpt, tokenizer=work / TOKENIZER_NAME)
    load_s = time.perf_counter() - t
    inputs = load_file(str(work / "inputs.safetensors"))
    want = load_file(str(work / "outputs.safetensors"))["action"]
    state_norm, action_norm = ckpt.normalizer("observation.state"), ckpt.normalizer("action")
    whole, model_s, prefix_s = [], [], []
    got = None
    with torch.no_grad():
        for k in range(runs + 1):
            t0 = time.perf_counter()
            images = torch.stack(
                [inputs[f"observation.images.{c}"].permute(2, 0, 1) / 255.0 for c in model.io.camera_names]
            )[None, None]
            state = state_norm.normalize(inputs["observation.state"])[None]
            tokens = model.tokenize([TASK], state) if name == "pi05" else model.tokenize([TASK])
            obs = {"images": images, "state": state[:, None], "tokens": tokens}
            t1 = time.perf_counter()
            prefix = model.export_prefix(obs)
            t2 = time.perf_counter()
            x = model.get_noise(obs, inputs["noise"])
            for i in range(model.num_steps):
                x = model.export_step(prefix, x, i)
            t3 = time.perf_counter()
            got = action_norm.unnormalize(x[0, :, : model.io.action_dim].float())
            t4 = time.perf_counter()
            if k:
                whole.append(t4 - t0)
                model_s.append(t3 - t1)
                prefix_s.append(t2 - t1)
    return {
        "whole": whole,
        "model": model_s,
        "prefix": prefix_s,
        "steps": [m - p for m, p in zip(model_s, prefix_s)],
        "load_s": load_s,
        "parity_max_abs": float((got - want).abs().max()),
        "action_max_abs": float(want.abs().max()),
        "max_rss_gib": _max_rss_gib(),
        "versions": {"torch": torch.__version__},
    }


def bench_pi(name: str, work: Path, runs: int, lane: Path) -> dict[str, Any]:
    """One policy: LeRobot in the lane (then it exits), then vla_ros here; the result row."""
    import subprocess

    work.mkdir(parents=True, exist_ok=True)
    for side in ("LeRobot", "vla_ros"):
        free = available_gib()
        if free < MIN_AVAILABLE_GIB:
            return {
                "name": name,
                "not_measured": f"{free:.1f} GiB available before {side}; needs {MIN_AVAILABLE_GIB}",
            }
        if side == "LeRobot":
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
            cmd = [str(lane), str(Path(__file__).resolve()), name, "--lane-worker", "--work", str(work)]
            proc = subprocess.run([*cmd, "--runs", str(runs)], stdout=subprocess.PIPE, text=True, env=env)
            msgs = [json.loads(x[len(TAG) :]) for x in proc.stdout.splitlines() if x.startswith(TAG)]
            if proc.returncode != 0 or not msgs:
                return {"name": name, "not_measured": f"the LeRobot lane exited {proc.returncode}"}
            lerobot = msgs[-1]
        else:
            vla = _vla_ros(name, work, runs)
    return {"name": name, "label": SPECS[name]["label"], "lerobot": lerobot, "vla_ros": vla}


def _side_line(first: str, label: str, d: dict[str, Any], ratio: str, parity: str) -> str:
    w, m, p, st = (_summary(d[k]) for k in ("whole", "model", "prefix", "steps"))
    return (
        f"| {first} | {label} (n={w['n']}) | {w['p50']:.0f} / {w['max']:.0f} / {w['min']:.0f} | "
        f"{m['p50']:.0f} | {p['p50']:.0f} | {st['p50']:.0f} | {ratio} | {parity} | {d['max_rss_gib']:.1f} |"
    )


def format_rows(rows: list[dict[str, Any]]) -> str:
    """Markdown table (ms: median / max / min of the timed calls) with the prefix / steps split."""
    lines = [
        "| policy | side | whole path p50 / max / min (ms) | model p50 (ms) | prefix p50 (ms) | "
        "10 steps p50 (ms) | LeRobot / vla_ros, whole p50 | parity max abs (bf16 vs bf16) | peak RSS GiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "not_measured" in r:
            lines.append(f"| {r['name']} | - | not measured: {r['not_measured']} | | | | | | |")
            continue
        lr, vr = r["lerobot"], r["vla_ros"]
        ratio = _summary(lr["whole"])["p50"] / _summary(vr["whole"])["p50"]
        lv = lr["versions"]
        first = f"{r['label']}, {lr['params_g']:.2f} G params"
        lines.append(
            _side_line(
                first, f"LeRobot {lv['lerobot']}, torch {lv['torch']} eager", lr, f"**{ratio:.2f}x**", ""
            )
        )
        parity = f"{vr['parity_max_abs']:.1e} (actions up to {vr['action_max_abs']:.1f})"
        label = f"vla_ros spine model (build_in_place), torch {vr['versions']['torch']} eager"
        lines.append(_side_line("", label, vr, "1", parity))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("policies", nargs="*", default=["pi0", "pi05"], help="pi0 and/or pi05")
    ap.add_argument("--runs", type=int, default=3, help="timed calls per side (after one warm-up)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/vla_ros_bench_pi"), help="checkpoints (reused)")
    ap.add_argument("--lane", type=Path, default=DEFAULT_LANE)
    ap.add_argument("--lane-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.lane_worker:
        lane_worker(args.policies[0], args.work, args.runs)
        return 0
    sys.path.insert(0, str(ROOT))
    rows = [bench_pi(n, args.work / n, args.runs, args.lane) for n in args.policies]
    print(f"\n== pi0 / pi0.5 full size, bf16, batch 1, {THREADS} threads each, {os.cpu_count()} CPUs ==")
    print(format_rows(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
