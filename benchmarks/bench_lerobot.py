"""LeRobot benchmark: vla_ros on ONNX Runtime vs LeRobot's own torch eager, same run, same machine.

    ./env.sh python benchmarks/bench_lerobot.py                        # ACT + Diffusion (DDIM 10)
    ./env.sh python benchmarks/bench_lerobot.py act --runs 40 --work /tmp/bench_lerobot
    ./env.sh python benchmarks/bench_lerobot.py --policies smolvla --work /tmp/bench_lerobot

SmolVLA (450 M parameters) is not in the default run: it takes minutes to build and export and
several GB of memory (the export's peak RSS is printed); ask for it by name. ``pi0`` / ``pi05``
(full size, bf16, the spine model in torch; ~8.3 GiB each side, one side at a time, only with
16 GiB available) are measured by ``bench_lerobot_pi.py``: ``--policies pi0,pi05``.

For each policy at LeRobot's DEFAULT size (random weights) this

1. builds the policy with LeRobot's own classes in the reference lane (``.venv-lerobot``, Python
   3.12, ``lerobot==0.6.1``, run as a subprocess with ``HF_HUB_OFFLINE=1``; ACT / Diffusion
   ``pretrained_backbone_weights=None``; SmolVLA ``load_vlm_weights=False`` on a local VLM folder
   with SmolVLM2-500M's config, see :func:`_lane_vlm_folder`), randomizes every weight and
   normalization statistic (the golden scripts' ``_randomize`` / ``_stats``), and saves it with
   ``save_pretrained`` and LeRobot's processor files;
2. exports that folder with ``vla-ros export`` (the card a user would get; SmolVLA with
   ``--tokenizer`` the VLM folder's tokenizer.json), in a subprocess whose peak RSS is reported;
3. runs both on the same raw observations (uint8 HWC camera bytes, raw state; Diffusion and
   SmolVLA: the same initial noise; SmolVLA: the same instruction) and reports the max abs
   difference of the raw actions (parity);
4. times both, batch 1, 2 CPU threads each (``torch.set_num_threads(2)`` in the lane,
   ONNX Runtime ``intra_op_num_threads=2``), in alternating blocks (LeRobot block, vla_ros block,
   ...) so that load from other processes on a shared machine falls on both sides alike; one
   untimed call opens every block, and a warm-up phase precedes all timing.

Timed paths (the same work on both sides):

- ``whole``: raw observation in, raw actions out. LeRobot: uint8 HWC -> float CHW / 255 ->
  ``policy_preprocessor`` -> ``predict_action_chunk`` -> ``policy_postprocessor``; vla_ros:
  ``PolicyRuntime.infer``.
- ``model``: LeRobot's ``predict_action_chunk`` alone; vla_ros's graph call(s) alone
  (``last_times_ms()["model"]``; Diffusion, SmolVLA: the prefix graph plus the K step graphs).

For split cards the prefix / step split is printed below the table: vla_ros's prefix graph and
the sum of its step graphs per call; LeRobot SmolVLA's prefix (``predict_action_chunk`` from its
start to the end of the first ``vlm_with_expert`` forward: image and text embedding plus the VLM
prefill) and the rest (the ``num_steps`` denoising steps), timed by wrapping its
``forward``.

Prints one table (median and p90 per side and path, the LeRobot / vla_ros ratio of the medians,
parity) plus the machine. A policy that cannot be measured gets a row saying why. Benchmarks
print; they never assert on speed.

The lane side of this file (``--lane-worker``) imports only torch and LeRobot; the vla_ros side
never imports LeRobot.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LANE = ROOT / ".venv-lerobot" / "bin" / "python"
THREADS = 2
N_PARITY = 3
TAG = "BENCH> "  # lane -> parent messages on stdout; any other line is LeRobot's chatter

# LeRobot's default-size policies (its config defaults; only the features and, for Diffusion, the
# deployment sampler are chosen here). ACT: resnet18, dim_model 512, 4 encoder / 1 decoder layers,
# chunk 100, one 480x640 camera (the ALOHA-style shape of LeRobot's ACT examples), 14 joints.
# Diffusion (0.6.1 defaults): resnet18 with BatchNorm, no crop, spatial softmax 32 keypoints,
# U-Net down_dims (512, 1024, 2048), 2 observation steps, horizon 64, n_action_steps 32; one
# 96x96 camera and 2-D state/action (PushT's shapes); the deployment sampler DDIM with 10 steps.
POLICIES: dict[str, dict[str, Any]] = {
    "act": {
        "label": "ACT (resnet18, dim_model 512, 1 cam 480x640)",
        "cameras": {"top": (480, 640)},
        "state_dim": 14,
        "action_dim": 14,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
        "overrides": {"pretrained_backbone_weights": None},
        "runs": 30,
    },
    "diffusion": {
        "label": "Diffusion (resnet18, U-Net 512/1024/2048, horizon 64, 1 cam 96x96, DDIM 10)",
        "cameras": {"top": (96, 96)},
        "state_dim": 2,
        "action_dim": 2,
        "norm": {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"},
        "overrides": {
            "pretrained_backbone_weights": None,
            "noise_scheduler_type": "DDIM",
            "num_inference_steps": 10,
        },
        "runs": 10,
    },
    # smolvla_base's size: LeRobot's SmolVLAConfig defaults (16 of SmolVLM2-500M's 32 text layers,
    # expert width 0.75, chunk 50, 10 Euler steps, tokenizer_max_length 48, max_state/action_dim
    # 32) on a VLM folder with SmolVLM2-500M's numbers; 2 cameras 256x256 (smolvla_base's camera
    # size; it has 3), 6-D state / action (SO-101), SmolVLA's default normalization.
    "smolvla": {
        "label": "SmolVLA (smolvla_base size: SmolVLM2-500M, 16 VLM layers, chunk 50, 10 steps, "
        "2 cams 256x256)",
        "cameras": {"camera1": (256, 256), "camera2": (256, 256)},
        "state_dim": 6,
        "action_dim": 6,
        "norm": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
        "overrides": {"load_vlm_weights": False},
        "task": "pick up the red cube and place it in the bowl",
        "runs": 10,
        "default": False,
    },
}
#: full-size pi0 / pi0.5 (bf16, LeRobot then vla_ros in turn): benchmarks/bench_lerobot_pi.py
FULL_SIZE_PI = ("pi0", "pi05")
#: where the lane writes SmolVLA's VLM folder (config + tokenizer + processors), under --work/<policy>
VLM_FOLDER = "vlm_smolvlm2_500m"


def _send(msg: dict[str, Any]) -> None:
    sys.stdout.write(TAG + json.dumps(msg) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- lane side (LeRobot, Python 3.12)
def _lane_vlm_folder(dest: Path) -> Path:
    """SmolVLA's VLM folder at full size: SmolVLM2-500M's config (the golden script's
    ``SMOLVLM2_500M`` numbers, vocabulary 49280) with the golden script's small byte-level BPE
    tokenizer and SmolVLM's processor files. SmolVLA reads the config and processor by name even
    with ``load_vlm_weights=False``; the hub's folder is not available offline. The tokenizer
    only changes which ids an instruction gets; the export takes the same file (``--tokenizer``).
    """
    from lerobot_goldens_smolvla import SMOLVLM2_500M, make_vlm_folder

    if (dest / "config.json").is_file():
        return dest
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    sv = SMOLVLM2_500M
    make_vlm_folder(tmp, sv["text"], sv["vision"], sv["scale_factor"])
    cfg = json.loads((tmp / "config.json").read_text())
    cfg["text_config"]["vocab_size"] = sv["text"]["vocab_size"]  # make_vlm_folder sets the tokenizer's
    (tmp / "config.json").write_text(json.dumps(cfg, indent=1))
    tmp.rename(dest)
    return dest


def _lane_build(name: str, spec: dict[str, Any], folder: Path) -> None:
    """Build LeRobot's default-size policy with random weights and save it like training does."""
    import torch

    sys.path.insert(0, str(ROOT / "scripts"))
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
    from lerobot.policies.factory import make_pre_post_processors

    overrides = dict(spec["overrides"])
    if name == "act":
        from lerobot.policies.act.configuration_act import ACTConfig as Config
        from lerobot.policies.act.modeling_act import ACTPolicy as Policy
        from lerobot_goldens import _randomize, _stats
    elif name == "diffusion":
        from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig as Config
        from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy as Policy
        from lerobot_goldens_diffusion import _randomize, _stats
    else:
        from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig as Config
        from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy as Policy
        from lerobot_goldens_smolvla import _randomize, _stats

        overrides["vlm_model_name"] = str(_lane_vlm_folder(folder.parent / VLM_FOLDER).resolve())

    inputs = {
        f"observation.images.{cam}": PolicyFeature(type=FeatureType.VISUAL, shape=(3, h, w))
        for cam, (h, w) in spec["cameras"].items()
    }
    inputs["observation.state"] = PolicyFeature(type=FeatureType.STATE, shape=(spec["state_dim"],))
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(spec["action_dim"],))}
    cfg = Config(
        input_features=inputs,
        output_features=outputs,
        normalization_mapping={k: NormalizationMode(v) for k, v in spec["norm"].items()},
        device="cpu",
        **overrides,
    )
    g = torch.Generator().manual_seed(7)
    policy = Policy(cfg)
    _randomize(policy, g)
    stats = _stats(spec, g)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save_pretrained(str(tmp))
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    pre.save_pretrained(str(tmp))
    post.save_pretrained(str(tmp))
    tmp.rename(folder)


def _lane_inputs(name: str, spec: dict[str, Any], policy: Any) -> dict[str, Any]:
    """Raw observations: uint8 HWC camera bytes ([N, (T,) H, W, 3]), raw state; the noise
    (Diffusion [N, horizon, A]; SmolVLA [N, chunk, max_action_dim], LeRobot's padded width)."""
    import torch

    g = torch.Generator().manual_seed(11)
    hist = (policy.config.n_obs_steps,) if name == "diffusion" else ()
    out = {
        f"observation.images.{cam}": torch.randint(0, 256, (N_PARITY, *hist, h, w, 3), generator=g).to(
            torch.uint8
        )
        for cam, (h, w) in spec["cameras"].items()
    }
    out["observation.state"] = torch.randn(N_PARITY, *hist, spec["state_dim"], generator=g) * 1.5
    if name == "diffusion":
        out["noise"] = torch.randn(N_PARITY, policy.config.horizon, spec["action_dim"], generator=g)
    elif name == "smolvla":
        c = policy.config
        out["noise"] = torch.randn(N_PARITY, c.chunk_size, c.max_action_dim, generator=g)
    return out


class _PrefixClock:
    """The end time of each ``vlm_with_expert.forward`` call of one LeRobot SmolVLA
    ``predict_action_chunk`` (the first is the VLM prefill, the others the steps). LeRobot calls
    ``.forward(...)`` directly, which skips module hooks, so the instance's ``forward`` is wrapped
    (the same function, timed; nothing else changes)."""

    def __init__(self, policy: Any) -> None:
        self.ends: list[float] = []
        mod = policy.model.vlm_with_expert
        inner = mod.forward

        def forward(*args: Any, **kwargs: Any) -> Any:
            out = inner(*args, **kwargs)
            self.ends.append(time.perf_counter())
            return out

        mod.forward = forward

    def split(self, t0: float, t1: float) -> tuple[float, float]:
        """(prefix s, steps s) of the call that ran from ``t0`` to ``t1``."""
        first = self.ends[0] if self.ends else t1
        return first - t0, t1 - first


def _lane_worker(name: str, work: Path, parity: bool) -> None:
    """Build (once), write LeRobot's outputs on the parity inputs (``parity``), then time
    LeRobot on the parent's commands."""
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(THREADS)
    spec = POLICIES[name]
    folder = work / "pretrained_model"
    if not (folder / "config.json").is_file():
        _lane_build(name, spec, folder)
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    cfg_type = json.loads((folder / "config.json").read_text())["type"]
    policy = get_policy_class(cfg_type).from_pretrained(str(folder), strict=True).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(folder))
    inputs = _lane_inputs(name, spec, policy)
    diffusion = name == "diffusion"
    clock = _PrefixClock(policy) if name == "smolvla" else None
    split: dict[str, list[float]] = {"prefix": [], "steps": []}

    def observation(i: int) -> dict[str, Any]:
        obs: dict[str, Any] = {"task": spec["task"]} if "task" in spec else {}
        for k, v in inputs.items():
            if k.startswith("observation.images."):
                img = v[i].to(torch.float32) / 255.0  # [(T,) H, W, 3] -> channels first
                obs[k] = img.movedim(-1, -3)[None] if diffusion else img.permute(2, 0, 1)
            elif k == "observation.state":
                obs[k] = v[i][None] if diffusion else v[i]
        return obs

    def run(i: int) -> tuple[torch.Tensor, float]:
        """The whole path on sample ``i``; returns (raw actions, predict_action_chunk seconds)."""
        batch = pre(observation(i))
        if clock is not None:
            clock.ends.clear()
        t0 = time.perf_counter()
        if "noise" in inputs:
            policy.reset()
            chunk = policy.predict_action_chunk(batch, noise=inputs["noise"][i][None].clone())
        else:
            chunk = policy.predict_action_chunk(batch)
        t1 = time.perf_counter()
        if clock is not None:
            for key, dt in zip(("prefix", "steps"), clock.split(t0, t1)):
                split[key].append(dt)
        return post(chunk)[0], t1 - t0

    if parity:
        with torch.no_grad():
            actions = torch.stack([run(i)[0] for i in range(N_PARITY)])
        save_file({k: v.contiguous() for k, v in inputs.items()}, str(work / "inputs.safetensors"))
        save_file({"action": actions.contiguous()}, str(work / "outputs.safetensors"))
    import lerobot

    _send(
        {
            "ready": str(folder),
            "params_m": sum(p.numel() for p in policy.parameters()) / 1e6,
            "versions": {"lerobot": lerobot.__version__, "torch": torch.__version__},
            "torch_threads": torch.get_num_threads(),
            "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"),
            "max_rss_gb": _max_rss_gb(),
        }
    )
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        n, warm = int(cmd[1]), int(cmd[2])
        whole, model = [], []
        for v in split.values():
            v.clear()
        with torch.no_grad():
            for k in range(warm + n):
                t0 = time.perf_counter()
                _, dt = run(0)
                if k >= warm:
                    whole.append(time.perf_counter() - t0)
                    model.append(dt)
        graphs = {key: v[warm:] for key, v in split.items()}
        _send({"whole": whole, "model": model, **({"graphs": graphs} if clock is not None else {})})


def _max_rss_gb() -> float:
    """This process's peak resident set size (GiB; Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---------------------------------------------------------------- parent side (vla_ros, Python 3.11)
class Lane:
    """The LeRobot worker subprocess (one policy, one OpenMP setting) and its line protocol."""

    def __init__(self, lane_python: Path, name: str, work: Path, env: dict[str, str], parity: bool) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", **env}
        cmd = [str(lane_python), str(Path(__file__).resolve()), "--lane-worker", name, "--work", str(work)]
        self.proc = subprocess.Popen(
            [*cmd, *([] if parity else ["--no-parity"])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(ROOT),
        )

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(TAG):
                return json.loads(line[len(TAG) :])
            sys.stderr.write(f"[lane] {line}")
        raise RuntimeError(f"the LeRobot lane exited with code {self.proc.wait()} (its stderr is above)")

    def time(self, n: int, warm: int) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"time {n} {warm}\n")
        self.proc.stdin.flush()
        return self.receive()

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def _observations(work: Path, spec: dict[str, Any]) -> tuple[list[Any], list[Any], Any]:
    """(observations with the spec's task as instruction, noises or Nones, LeRobot's raw actions)
    from the lane's files."""
    from safetensors.numpy import load_file

    from vla_ros.runtime import Observation

    inputs = load_file(str(work / "inputs.safetensors"))
    want = load_file(str(work / "outputs.safetensors"))["action"]
    cams = {k.split("observation.images.", 1)[1]: v for k, v in inputs.items() if "images" in k}
    obs = [
        Observation(
            images={c: v[i] for c, v in cams.items()},
            state=inputs["observation.state"][i],
            instruction=spec.get("task", ""),
            stamp_ns=i,
        )
        for i in range(want.shape[0])
    ]
    noise = [inputs["noise"][i] for i in range(want.shape[0])] if "noise" in inputs else [None] * len(obs)
    return obs, noise, want


def _window(card: Any, actions: Any) -> Any:
    """The part of the chunk LeRobot returns (Diffusion: ``io.extra.action_window``)."""
    win = card.io.extra.get("action_window")
    if win and actions.shape[0] == card.io.horizon:
        return actions[win[0] : win[1]]
    return actions


def _summary(samples_s: list[float]) -> dict[str, float]:
    """n, median, p90 (numpy's linear percentile) and min, in ms, of samples in seconds."""
    import numpy as np

    a = np.asarray(samples_s) * 1e3
    return {
        "n": int(a.size),
        "p50": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "min": float(a.min()),
    }


# LeRobot's configurations, each its own lane process: as installed, and with a bounded OpenMP
# busy-wait. On a loaded 2-core machine libgomp's default (threads sleep almost at once between
# torch's many small parallel regions) makes 2-thread eager torch several times slower than
# 1 thread; spinning up to 3M iterations (tens of ms) before sleeping restores it. Giving
# LeRobot its best setting keeps the comparison honest; the spin ends before vla_ros's block.
LEROBOT_SETTINGS: dict[str, dict[str, str]] = {
    "as installed": {},
    "GOMP_SPINCOUNT=3000000": {"GOMP_SPINCOUNT": "3000000"},
}


def _export(folder: str, card_dir: Path, tokenizer: Path | None) -> dict[str, Any]:
    """``vla-ros export FOLDER --out CARD_DIR`` (the working tree's vla_ros) in a subprocess, its
    torch at :data:`THREADS` threads; returns ``{"rc", "seconds", "max_rss_gb"}`` (the export's
    peak RSS, GiB). Its progress and errors go to this process's stderr."""
    argv = ["export", folder, "--out", str(card_dir), "--quiet"]
    if tokenizer is not None:
        argv += ["--tokenizer", str(tokenizer)]
    code = (
        "import json, resource, sys, torch\n"
        f"torch.set_num_threads({THREADS})\n"
        "from vla_ros.cli import main\n"
        "rc = main(json.loads(sys.argv[1]))\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20\n"
        f"print({TAG!r} + json.dumps({{'rc': rc, 'max_rss_gb': rss}}), flush=True)\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(argv)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    out = {"rc": proc.returncode, "seconds": time.perf_counter() - t, "max_rss_gb": float("nan")}
    for line in proc.stdout.splitlines():
        if line.startswith(TAG):
            out["max_rss_gb"] = json.loads(line[len(TAG) :])["max_rss_gb"]
        else:
            sys.stderr.write(f"[export] {line}\n")
    return out


def bench_policy(name: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Build, export, check parity and time one policy; returns its result row."""
    import numpy as np

    from vla_ros.export import PolicyCard
    from vla_ros.runtime import load_runtime

    spec = POLICIES[name]
    work = root / name
    work.mkdir(parents=True, exist_ok=True)
    lanes: dict[str, Lane] = {}
    try:
        t = time.perf_counter()
        ready = {}
        for i, (setting, env) in enumerate(LEROBOT_SETTINGS.items()):
            lanes[setting] = Lane(Path(args.lane), name, work, env, parity=i == 0)
            ready = lanes[setting].receive()  # the first lane builds the checkpoint, alone
        print(f"[{name}] LeRobot checkpoint ready in {time.perf_counter() - t:.0f} s: {ready['ready']}")
        card_dir = work / "card"
        export: dict[str, Any] = {}
        if not (card_dir / "card.yaml").is_file():
            tokenizer = work / VLM_FOLDER / "tokenizer.json" if "task" in spec else None
            export = _export(ready["ready"], card_dir, tokenizer)
            if export["rc"] != 0:
                return {
                    "name": name,
                    "not_measured": f"vla-ros export exited {export['rc']} (its message is above)",
                }
            print(
                f"[{name}] vla-ros export: {export['seconds']:.0f} s, peak RSS {export['max_rss_gb']:.1f} GiB"
            )
        card = PolicyCard.load(card_dir)
        rt = load_runtime(card_dir, backend="onnxruntime", providers="cpu", threads=THREADS)
        obs, noises, want = _observations(work, spec)
        got = np.stack([_window(card, rt.infer(o, noise=n)) for o, n in zip(obs, noises)])
        parity = float(np.abs(got - want).max()) if got.shape == want.shape else float("nan")
        graph_stages = rt.graph_stages()

        def vla_block(n: int, warm: int) -> dict[str, Any]:
            whole, model = [], []
            graphs: dict[str, list[float]] = {"prefix": [], "steps": []}
            for k in range(warm + n):
                rt.reset_stats()
                t0 = time.perf_counter()
                rt.infer(obs[0], noise=noises[0])
                dt = time.perf_counter() - t0
                if k >= warm:
                    whole.append(dt)
                    model.append(rt.last_times_ms()["model"] / 1e3)
                    if graph_stages == ("prefix", "step"):
                        st = rt.stats()
                        graphs["prefix"].append(st["prefix"]["mean_ms"] / 1e3)
                        graphs["steps"].append(st["step"]["mean_ms"] * st["step"]["count"] / 1e3)
            return {"whole": whole, "model": model, **({"graphs": graphs} if graphs["prefix"] else {})}

        sides: dict[str, Any] = {f"LeRobot {s}": lane.time for s, lane in lanes.items()}
        sides["vla_ros"] = vla_block
        for run_block in sides.values():
            run_block(0, args.warmup)
        times: dict[str, dict[str, list[float]]] = {side: {"whole": [], "model": []} for side in sides}
        graph_times: dict[str, dict[str, list[float]]] = {}
        runs = args.runs or spec["runs"]
        blocks = max(1, min(args.blocks, runs))
        for b in range(blocks):  # LeRobot, LeRobot, vla_ros, LeRobot, ...: drifting load hits all
            n = runs // blocks + (1 if b < runs % blocks else 0)
            for side, run_block in sides.items():
                got_t = run_block(n, 1)  # one untimed call opens each block
                for path in ("whole", "model"):
                    times[side][path] += got_t[path]
                for g, v in got_t.get("graphs", {}).items():
                    graph_times.setdefault(side, {}).setdefault(g, []).extend(v)
        return {
            "name": name,
            "label": spec["label"],
            "params_m": ready["params_m"],
            "layout": card.layout,
            "times": {side: {p: _summary(v) for p, v in tv.items()} for side, tv in times.items()},
            "graphs": {side: {g: _summary(v) for g, v in gv.items()} for side, gv in graph_times.items()},
            "parity_max_abs": parity,
            "action_max_abs": float(np.abs(want).max()),
            "versions": {**ready["versions"], **_ort_version()},
            "ort": rt.info(),
            "memory_gb": {
                "lerobot_lane_peak_rss": ready.get("max_rss_gb"),
                "vla_ros_export_peak_rss": export.get("max_rss_gb"),
                "vla_ros_bench_process_peak_rss": _max_rss_gb(),
            },
            "export_s": export.get("seconds"),
            "num_steps": (card.export.get("split") or {}).get("num_steps"),
        }
    except Exception as e:  # a failure of one policy is a row, not a crash of the benchmark
        return {"name": name, "not_measured": f"{type(e).__name__}: {str(e)[:300]}"}
    finally:
        for lane in lanes.values():
            lane.close()


def _ort_version() -> dict[str, str]:
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__}


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": len(os.sched_getaffinity(0)), "cpu": cpu, "loadavg_1m": os.getloadavg()[0]}


def _cell(s: dict[str, float]) -> str:
    return f"{s['p50']:.0f} / {s['p90']:.0f} / {s['min']:.0f}"


def _ratio(lerobot: dict[str, dict[str, float]], vla_ros: dict[str, dict[str, float]]) -> str:
    w, v = lerobot["whole"], vla_ros["whole"]
    m = lerobot["model"]["p50"] / vla_ros["model"]["p50"]
    return f"**{w['p50'] / v['p50']:.2f}x** ({w['min'] / v['min']:.2f}x) | {m:.2f}x"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: one line per side and policy; each LeRobot line has its ratio to vla_ros.

    The ratio is LeRobot's time over vla_ros's (> 1: vla_ros is faster), of the medians, with
    the ratio of the minimums (the least disturbed runs of a shared machine) in brackets.
    """
    head = (
        "| policy | side | whole path p50 / p90 / min (ms) | model p50 / p90 / min (ms) | "
        "LeRobot / vla_ros, whole p50 (min) | model p50 | parity max abs, raw actions |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "not_measured" in r:
            lines.append(f"| {r['name']} | - | not measured: {r['not_measured']} | | | | |")
            continue
        v, times = r["versions"], r["times"]
        vr = times["vla_ros"]
        first = f"{r['label']}, {r['params_m']:.1f} M params"
        for side, t in times.items():
            if side == "vla_ros":
                continue
            lines.append(
                f"| {first} | {side} (lerobot {v['lerobot']}, torch {v['torch']} eager, n={t['whole']['n']})"
                f" | {_cell(t['whole'])} | {_cell(t['model'])} | {_ratio(t, vr)} | |"
            )
            first = ""
        lines.append(
            f"| | vla_ros, ONNX Runtime {v['onnxruntime']} ({r['layout']}, n={vr['whole']['n']})"
            f" | {_cell(vr['whole'])} | {_cell(vr['model'])} | 1 | 1"
            f" | {r['parity_max_abs']:.1e} (actions up to {r['action_max_abs']:.1f}) |"
        )
    return "\n".join(lines)


def format_notes(rows: list[dict[str, Any]]) -> str:
    """Lines under the table: the prefix / steps split of split cards (p50 ms) and memory."""
    out = []
    for r in rows:
        if "not_measured" in r:
            continue
        if r.get("graphs"):
            parts = [
                f"{side}: prefix {g['prefix']['p50']:.0f} + steps {g['steps']['p50']:.0f}"
                for side, g in r["graphs"].items()
            ]
            k = r.get("num_steps")
            out.append(f"- {r['name']} p50 ms, prefix vs the {k or 'K'} steps: " + "; ".join(parts))
        mem = {k: v for k, v in (r.get("memory_gb") or {}).items() if v is not None}
        if mem:
            extra = f", export {r['export_s']:.0f} s" if r.get("export_s") else ""
            out.append(
                f"- {r['name']} memory (GiB): " + ", ".join(f"{k} {v:.1f}" for k, v in mem.items()) + extra
            )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = [n for n, s in POLICIES.items() if s.get("default", True)]
    parser.add_argument("policies", nargs="*", help=f"any of {list(POLICIES)} (default: {default})")
    parser.add_argument("--policies", dest="policy_list", default=None, help="the same, a comma list")
    parser.add_argument(
        "--runs", type=int, default=None, help="timed runs per side (ACT 30, Diffusion 10, SmolVLA 10)"
    )
    parser.add_argument("--blocks", type=int, default=5, help="alternating LeRobot / vla_ros blocks")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per side before timing")
    parser.add_argument("--lane", default=str(DEFAULT_LANE), help="the reference lane's python")
    parser.add_argument("--work", default=None, help="keep checkpoints and cards here (reused)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--lane-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-parity", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lane_worker:
        _lane_worker(args.lane_worker, Path(args.work), parity=not args.no_parity)
        return 0
    # the working tree's vla_ros, not an older colcon install (install/) that env.sh puts first
    sys.path.insert(0, str(ROOT))
    names = [*args.policies, *(p for p in (args.policy_list or "").split(",") if p)] or default
    full_pi = [p for p in names if p in FULL_SIZE_PI]
    names = [p for p in names if p not in FULL_SIZE_PI]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        parser.error(f"unknown policies {unknown}; choose from {list(POLICIES)}")
    import torch

    torch.set_num_threads(THREADS)  # the export's parity gate; timing uses ONNX Runtime
    root = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vla_ros_bench_lerobot_"))
    rows = []
    for name in names:
        if not Path(args.lane).is_file():
            rows.append(
                {"name": name, "not_measured": f"no reference lane at {args.lane} (make lerobot-ref)"}
            )
            continue
        rows.append(bench_policy(name, args, root))
    pi_rows = []
    if full_pi:  # full-size pi0 / pi0.5 in bf16, one side after the other (bench_lerobot_pi.py)
        import bench_lerobot_pi

        runs = args.runs or bench_lerobot_pi.SPECS[full_pi[0]]["runs"]
        pi_rows = [bench_lerobot_pi.bench_pi(n, root / "pi_full" / n, runs, Path(args.lane)) for n in full_pi]
    m = _machine()
    print(
        f"\n== LeRobot vs vla_ros, batch 1, {THREADS} threads each, {m['cpus']} CPUs ({m['cpu']}), "
        f"load avg {m['loadavg_1m']:.1f} =="
    )
    if rows:
        print(format_table(rows))
    notes = format_notes(rows)
    if notes:
        print(notes)
    if pi_rows:
        print(bench_lerobot_pi.format_rows(pi_rows))
        rows += pi_rows
    if args.json:
        print(json.dumps({"machine": m, "rows": rows}, indent=1))
    if not args.work:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
