"""Train the bundled demo policy: scripted-expert demonstrations -> behaviour cloning -> policy card.

Everything runs in the pure simulator (no ROS) on the CPU in a few minutes::

    ./env.sh python -m vla_ros.sim.train_bundled               # writes vla_ros/sim/bundled/sim_reach_act
    ./env.sh python -m vla_ros.sim.train_bundled --steps 200 --episodes 20 --out /tmp/card   # a quick try

1. **Demonstrations.** :class:`~vla_ros.sim.task.ReachTask`'s expert drives the simulated arm
   through the same closed loop the tests and the demo use (:func:`vla_ros.sim.loop.run_episode`:
   renderer, executor controller, servo dynamics). Starts are the arm's default pose or a reached
   pose of another target, plus noise. In part of the episodes the executed chunks carry a
   drifting offset (DART-style noise injection) so the data covers states off the expert's path;
   the *label* is always the clean expert chunk for the observed state.
2. **Behaviour cloning.** An ACT model (spine family ``act``; 2 cameras 64x64, 6 joints, 10
   delta actions at 20 Hz) is fitted with an L1 loss on its inference path (latent = prior mean:
   the expert is deterministic, so the CVAE has nothing to model). State and action statistics
   become the card's normalization.
3. **Export and check.** :func:`vla_ros.export.export_policy` writes the card (safetensors +
   ONNX, parity-gated); the card is then loaded with the ONNX Runtime backend and run in the
   closed loop on held-out targets against the hold-still baseline; the figures go into the
   card's ``provenance.training`` and a README.md beside it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.contract.observation import Observation
from vla_ros.sim.loop import (
    ExpertPolicy,
    HoldPolicy,
    LoopConfig,
    RuntimePolicy,
    evaluate,
    evaluation_targets,
    run_episode,
)
from vla_ros.sim.robot import SimArmConfig
from vla_ros.sim.task import ReachTask, TaskEpisode, goal_pose

NAME = "sim_reach_act"
DEFAULT_OUT = Path(__file__).resolve().parent / "bundled" / NAME
TRAIN_SEED = 7

#: the bundled model: ACT, small enough for ~ms CPU inference (see config/models/act_tiny.yaml)
MODEL_CONFIG: dict[str, Any] = {
    "name": NAME,
    "type": "act",
    "io": {
        "camera_names": ["front", "wrist"],
        "image_size": [64, 64],
        "state_dim": 6,
        "action_dim": 6,
        "horizon": 10,
        "dt": 0.05,
        "obs_history": 1,
        "text_max_len": 0,
        "action_mode": "delta",
        "extra": {"action_low": -3.0, "action_high": 3.0},
    },
    "dim": 64,
    "kl_weight": 10.0,
    "vision_backbone": {
        "type": "ResNet",
        "widths": [16, 32, 32],
        "blocks": [1, 1, 1],
        "stem_kernel": 3,
        "stem_stride": 2,
        "stem_pool": True,  # 64 px -> 32 -> 16 -> 8 -> 4x4 = 16 tokens per camera
        "norm": "batch",
    },
    "projector": {"type": "LinearProjector"},
    "vla_head": {
        "type": "ACTHead",
        "heads": 4,
        "enc_layers": 2,
        "dec_layers": 1,
        "cvae_layers": 1,
        "latent_dim": 8,
    },
    "freeze": {},
}


class NoisyExpert(ExpertPolicy):
    """The expert whose *executed* chunks carry a slowly drifting offset (labels stay clean)."""

    def __init__(
        self,
        task: ReachTask,
        target: np.ndarray | TaskEpisode,
        horizon: int,
        dt: float,
        rng: np.random.Generator,
        scale: float,
    ) -> None:
        super().__init__(task, target, horizon, dt)
        self.rng, self.scale = rng, scale
        self.offset = np.zeros(6)
        self.calls = 0
        self.ramp = (np.arange(horizon) + 1.0)[:, None] / horizon

    def __call__(self, obs: Observation) -> np.ndarray:
        if self.calls % 12 == 0:  # a new drift direction every 0.4 s
            self.offset = self.rng.normal(0.0, self.scale, size=len(obs.state))
        self.calls += 1
        return super().__call__(obs) + (self.ramp * self.offset[None, :]).astype(np.float32)


def generate(episodes: int, seed: int, task: ReachTask, cfg: LoopConfig) -> dict[str, np.ndarray]:
    """Demonstrations: uint8 images ``[N, cams, H, W, 3]``, states ``[N, 6]``, labels ``[N, H, 6]``."""
    io = MODEL_CONFIG["io"]
    horizon, dt = int(io["horizon"]), float(io["dt"])
    rng = np.random.default_rng(seed)
    default = np.asarray(SimArmConfig().initial)
    images: list[np.ndarray] = []
    states: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for _ in range(episodes):
        target = task.sample_target(rng)
        if rng.random() < 0.5:
            start = default + rng.uniform(-0.3, 0.3, size=6)
        else:
            start = goal_pose(task.sample_target(rng)) + rng.uniform(-0.1, 0.1, size=6)
        noisy = rng.random() < 0.6
        policy = (
            NoisyExpert(task, target, horizon, dt, rng, scale=float(rng.uniform(0.05, 0.3)))
            if noisy
            else ExpertPolicy(task, target, horizon, dt)
        )

        def record(obs: Observation, _chunk: np.ndarray, target: np.ndarray = target) -> None:
            images.append(np.stack([obs.images[c] for c in cfg.cameras]))
            states.append(obs.state.astype(np.float32))
            labels.append(task.expert_chunk(obs.state, target, horizon, dt))

        run_episode(policy, target, task=task, config=cfg, initial=start, on_observation=record)
    return {"images": np.stack(images), "states": np.stack(states), "labels": np.stack(labels)}


def normalization(data: dict[str, np.ndarray]) -> dict[str, dict[str, list[float]]]:
    """Per-joint mean/std of states and of delta actions (std floored so nothing divides by ~0)."""
    s, a = data["states"], data["labels"].reshape(-1, data["labels"].shape[-1])
    return {
        "state": {"mean": s.mean(0).tolist(), "std": np.maximum(s.std(0), 1e-2).tolist()},
        "action": {"mean": a.mean(0).tolist(), "std": np.maximum(a.std(0), 1e-2).tolist()},
    }


def train(
    data: dict[str, np.ndarray],
    norm: dict[str, Any],
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    max_minutes: float,
    log_every: int = 100,
) -> tuple[Any, dict[str, Any]]:
    """Fit the ACT model; returns (model in eval mode, training record)."""
    import torch

    from vla_ros.spine import build_vla

    torch.manual_seed(seed)
    model = build_vla(copy.deepcopy(MODEL_CONFIG))
    images = torch.from_numpy(data["images"])  # uint8 [N, cams, H, W, 3]
    s_mean, s_std = (torch.tensor(norm["state"][k]) for k in ("mean", "std"))
    a_mean, a_std = (torch.tensor(norm["action"][k]) for k in ("mean", "std"))
    states = (torch.from_numpy(data["states"]) - s_mean) / s_std
    labels = (torch.from_numpy(data["labels"]) - a_mean) / a_std
    n = images.shape[0]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    t0 = time.monotonic()
    losses: list[float] = []
    done = 0
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=gen)
        # exactly the runtime's preprocessing: uint8 HWC -> float CHW in [0, 1], [B, T=1, N, C, H, W]
        img = images[idx].permute(0, 1, 4, 2, 3).float().mul_(1.0 / 255.0)[:, None]
        pred = model.predict_action({"images": img, "state": states[idx][:, None]})
        loss = torch.nn.functional.l1_loss(pred, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        done = step + 1
        if log_every and (done % log_every == 0 or done == 1):
            print(
                f"  step {done:5d}/{steps}  L1 {np.mean(losses[-log_every:]):.4f}  "
                f"{time.monotonic() - t0:6.0f} s",
                flush=True,
            )
        if (time.monotonic() - t0) > max_minutes * 60:
            print(f"  stopping at step {done}: --max-minutes {max_minutes} reached", flush=True)
            break
    model.eval()
    record = {
        "steps": done,
        "batch": batch,
        "lr": lr,
        "seconds": round(time.monotonic() - t0, 1),
        "final_l1_normalized": round(float(np.mean(losses[-100:])), 4),
    }
    return model, record


def closed_loop_figures(
    card_dir: Path, targets: int, seed: int, task: ReachTask, cfg: LoopConfig
) -> dict[str, Any]:
    """The exported card (ONNX Runtime) vs. the hold-still baseline in the closed loop."""
    from vla_ros.runtime import load_runtime

    runtime = load_runtime(card_dir, backend="onnxruntime", threads=1)
    io = runtime.card.io
    goals = evaluation_targets(targets, seed=seed, task=task)
    policy = RuntimePolicy(runtime)
    learned = evaluate(lambda _t: policy, goals, task=task, config=cfg)
    hold = evaluate(lambda _t: HoldPolicy(io.horizon, io.action_dim, io.dt), goals, task=task, config=cfg)
    return {
        "targets": targets,
        "target_seed": seed,
        "episode_s": cfg.duration_s,
        "success_radius": task.success_radius,
        "policy_mean_final_distance": round(learned.mean_final_distance, 4),
        "policy_success_rate": round(learned.success_rate, 3),
        "hold_still_mean_final_distance": round(hold.mean_final_distance, 4),
        "hold_still_success_rate": round(hold.success_rate, 3),
    }


README = """# {name}: the bundled demo policy

`make demo` runs this card. An ACT policy (spine family `act`, {params:,} parameters) that moves
the simulated 6-joint arm's fingertip onto the white target drawn in its two 64x64 cameras
(`front`, `wrist`). The target is visible only in the images.

- inputs: cameras `front`, `wrist` (64x64 RGB), state `joint_1..joint_6` (rad)
- outputs: 10 delta actions at 20 Hz (`action_mode: delta`; the executor adds the state at the
  observation stamp)
- trained by `./env.sh python -m vla_ros.sim.train_bundled` (`vla_ros/sim/train_bundled.py`):
  {episodes} scripted-expert episodes ({samples} observations, seed {seed}), behaviour cloning
  {steps} steps x batch {batch} on the CPU ({threads} torch thread(s)) in {seconds:.0f} s (final
  normalized L1 {l1}); generating the demonstrations took {gen_s:.0f} s

## Offline closed-loop figures

{targets} held-out targets, {episode_s:g} s episodes from the arm's default pose, pure closed loop
(`vla_ros.sim.loop`: renderer + this card on ONNX Runtime + the executor's ChunkController +
servo dynamics, simulated time). Metric: final fingertip-to-target distance (arm length 1.0);
success: within {success_radius:g}.

| policy | mean final distance | success rate |
|---|---|---|
| this card | {policy_mean_final_distance:.4f} | {policy_success_rate:.0%} |
| hold still (baseline) | {hold_still_mean_final_distance:.4f} | {hold_still_success_rate:.0%} |

Reproduce: `./env.sh python -m vla_ros.sim.train_bundled --evaluate-only`.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options."""
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="card folder to write")
    parser.add_argument("--episodes", type=int, default=160, help="expert episodes to record")
    parser.add_argument("--episode-s", type=float, default=2.5, help="length of an expert episode")
    parser.add_argument("--steps", type=int, default=2000, help="training steps")
    parser.add_argument("--batch", type=int, default=64, help="batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (one-cycle)")
    parser.add_argument("--seed", type=int, default=TRAIN_SEED, help="data and init seed")
    parser.add_argument("--max-minutes", type=float, default=15.0, help="stop training after this")
    parser.add_argument("--eval-targets", type=int, default=20, help="held-out targets to evaluate")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: reproducible; 0 = all)")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="only re-run the closed-loop figures of --out"
    )


def run(args: argparse.Namespace) -> int:
    """Generate, train, export, evaluate; returns the exit code."""
    import torch

    from vla_ros.contract.card import PolicyCard
    from vla_ros.export import export_policy

    if args.threads:
        torch.set_num_threads(args.threads)
    task = ReachTask()
    eval_cfg = LoopConfig(duration_s=4.0)
    if args.evaluate_only:
        figures = closed_loop_figures(args.out, args.eval_targets, 1234, task, eval_cfg)
        print(json.dumps(figures, indent=2))
        return 0
    load_start = os.getloadavg()[0]
    t0 = time.monotonic()
    data = generate(args.episodes, args.seed, task, LoopConfig(duration_s=args.episode_s))
    gen_s = time.monotonic() - t0
    print(
        f"demonstrations: {len(data['states'])} observations from {args.episodes} episodes in {gen_s:.0f} s",
        flush=True,
    )
    norm = normalization(data)
    model, record = train(data, norm, args.steps, args.batch, args.lr, args.seed, args.max_minutes)
    card = export_policy(
        model,
        args.out,
        name=NAME,
        model_config=MODEL_CONFIG,
        state_joints=list(SimArmConfig().joint_names),
        action_joints=list(SimArmConfig().joint_names),
        normalization=norm,
        delta_to_absolute=False,
        export_command="python -m vla_ros.sim.train_bundled " + " ".join(sys.argv[1:]),
    )
    figures = closed_loop_figures(args.out, args.eval_targets, 1234, task, eval_cfg)
    params = sum(p.numel() for p in model.parameters())
    training = {
        "script": "vla_ros/sim/train_bundled.py",
        "task": "reach the target marker (vla_ros.sim.task.ReachTask)",
        "episodes": args.episodes,
        "episode_s": args.episode_s,
        "observations": len(data["states"]),
        "seed": args.seed,
        "demonstration_seconds": round(gen_s, 1),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": round(load_start, 2),  # the timings are from a shared machine if high
        "parameters": int(params),
        **record,
        "closed_loop": figures,
    }
    card.provenance["training"] = training
    card.save()
    (Path(args.out) / "README.md").write_text(
        README.format(
            name=NAME,
            params=params,
            episodes=args.episodes,
            samples=training["observations"],
            seed=args.seed,
            steps=record["steps"],
            batch=args.batch,
            seconds=record["seconds"],
            l1=record["final_l1_normalized"],
            threads=torch.get_num_threads(),
            gen_s=gen_s,
            **figures,
        )
    )
    PolicyCard.load(args.out)  # still a valid card
    print(json.dumps(training, indent=2))
    print(f"card: {args.out} ({card.policy_id})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m vla_ros.sim.train_bundled``."""
    parser = argparse.ArgumentParser(
        prog="python -m vla_ros.sim.train_bundled", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
