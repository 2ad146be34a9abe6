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
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.contract.observation import Observation
from vla_ros.sim.loop import (
    HoldPolicy,
    LoopConfig,
    RuntimePolicy,
    evaluate,
    evaluation_targets,
    run_episode,
)
from vla_ros.sim.task import ReachTask
from vla_ros.sim.train_common import (
    FitOptions,
    NoisyExpert,
    add_training_arguments,
    demonstration_start,
    export_card,
    finish_card,
    fit,
    normalization,
    sim_arm_io,
    sim_arm_vision_backbone,
    timed_demonstrations,
    training_record,
)
from vla_ros.util.entry import run_command

__all__ = ["MODEL_CONFIG", "NoisyExpert", "generate", "main", "normalization", "train"]

NAME = "sim_reach_act"
DEFAULT_OUT = Path(__file__).resolve().parent / "bundled" / NAME
TRAIN_SEED = 7

#: the bundled model: ACT, small enough for ~ms CPU inference (see config/models/act_tiny.yaml)
MODEL_CONFIG: dict[str, Any] = {
    "name": NAME,
    "type": "act",
    "io": sim_arm_io(horizon=10),
    "dim": 64,
    "kl_weight": 10.0,
    "vision_backbone": sim_arm_vision_backbone(),
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


def generate(episodes: int, seed: int, task: ReachTask, cfg: LoopConfig) -> dict[str, np.ndarray]:
    """Demonstrations: uint8 images ``[N, cams, H, W, 3]``, states ``[N, 6]``, labels ``[N, H, 6]``."""
    io = MODEL_CONFIG["io"]
    horizon, dt = int(io["horizon"]), float(io["dt"])
    rng = np.random.default_rng(seed)
    images: list[np.ndarray] = []
    states: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for _ in range(episodes):
        target = task.sample_target(rng)
        start, policy = demonstration_start(task, target, horizon, dt, rng)

        def record(obs: Observation, _chunk: np.ndarray, target: np.ndarray = target) -> None:
            images.append(np.stack([obs.images[c] for c in cfg.cameras]))
            states.append(obs.state.astype(np.float32))
            labels.append(task.expert_chunk(obs.state, target, horizon, dt))

        run_episode(policy, target, task=task, config=cfg, initial=start, on_observation=record)
    return {"images": np.stack(images), "states": np.stack(states), "labels": np.stack(labels)}


def train(data: dict[str, np.ndarray], norm: dict[str, Any], opts: FitOptions) -> tuple[Any, dict[str, Any]]:
    """Fit the ACT model; returns (model in eval mode, training record)."""
    import torch

    from vla_ros.spine import build_vla

    torch.manual_seed(opts.seed)
    model = build_vla(copy.deepcopy(MODEL_CONFIG))

    def l1(model: Any, _idx: Any, img: Any, states: Any, labels: Any) -> Any:
        pred = model.predict_action({"images": img, "state": states})
        return torch.nn.functional.l1_loss(pred, labels)

    done, seconds, final = fit(model, data, norm, l1, "L1", opts)
    record = {
        "steps": done,
        "batch": opts.batch,
        "lr": opts.lr,
        "seconds": seconds,
        "final_l1_normalized": final,
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
    add_training_arguments(
        parser, DEFAULT_OUT, episodes=160, episode_s=2.5, steps=2000, seed=TRAIN_SEED, max_minutes=15.0
    )
    parser.add_argument("--eval-targets", type=int, default=20, help="held-out targets to evaluate")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: reproducible; 0 = all)")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="only re-run the closed-loop figures of --out"
    )


def run(args: argparse.Namespace) -> int:
    """Generate, train, export, evaluate; returns the exit code."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    task = ReachTask()
    eval_cfg = LoopConfig(duration_s=4.0)
    if args.evaluate_only:
        figures = closed_loop_figures(args.out, args.eval_targets, 1234, task, eval_cfg)
        print(json.dumps(figures, indent=2))
        return 0
    data, gen_s, load_start = timed_demonstrations(
        lambda: generate(args.episodes, args.seed, task, LoopConfig(duration_s=args.episode_s)), args.episodes
    )
    norm = normalization(data)
    model, record = train(data, norm, FitOptions.from_args(args))
    card = export_card(model, args.out, NAME, MODEL_CONFIG, norm, "vla_ros.sim.train_bundled")
    figures = closed_loop_figures(args.out, args.eval_targets, 1234, task, eval_cfg)
    params = sum(p.numel() for p in model.parameters())
    training = training_record(
        "vla_ros/sim/train_bundled.py",
        "reach the target marker (vla_ros.sim.task.ReachTask)",
        args,
        len(data["states"]),
        gen_s,
        load_start,
        params,
        record,
        figures,
    )
    readme = README.format(
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
    finish_card(card, args.out, training, lambda: (Path(args.out) / "README.md").write_text(readme))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m vla_ros.sim.train_bundled``."""
    return run_command("python -m vla_ros.sim.train_bundled", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
