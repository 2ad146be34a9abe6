"""The steps the bundled cards' training scripts share (``train_bundled``, ``train_flow``).

Scripted-expert demonstrations with DART-style noise injection (Laskey et al. 2017,
arXiv 1703.09327: the executed chunks carry a drifting offset, the labels stay clean), the
state/action normalization, the behaviour-cloning loop (AdamW + one-cycle learning rate) and
the card's ``provenance.training`` record. Each script keeps what is its own: the model, the
loss, the task and the closed-loop figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.contract.observation import Observation
from vla_ros.sim.loop import ExpertPolicy
from vla_ros.sim.robot import SimArmConfig
from vla_ros.sim.task import ReachTask, TaskEpisode, goal_pose

#: a training step's loss: (model, sample indices [B], images [B, 1, cams, 3, H, W] in [0, 1],
#: normalized states [B, 1, 6], normalized labels [B, H, 6]) -> scalar loss tensor
StepLoss = Callable[[Any, Any, Any, Any, Any], Any]


def sim_arm_io(horizon: int) -> dict[str, Any]:
    """The ``io`` section of a sim-arm card's model config: cameras ``front``, ``wrist`` (64x64),
    6 joints, ``horizon`` delta actions at 20 Hz (``dt`` 0.05 s), actions clipped to +-3 rad."""
    return {
        "camera_names": ["front", "wrist"],
        "image_size": [64, 64],
        "state_dim": 6,
        "action_dim": 6,
        "horizon": horizon,
        "dt": 0.05,
        "obs_history": 1,
        "text_max_len": 0,
        "action_mode": "delta",
        "extra": {"action_low": -3.0, "action_high": 3.0},
    }


def sim_arm_vision_backbone() -> dict[str, Any]:
    """The small ResNet of the sim-arm cards: 64 px -> 32 -> 16 -> 8 -> 4x4 = 16 tokens per camera."""
    return {
        "type": "ResNet",
        "widths": [16, 32, 32],
        "blocks": [1, 1, 1],
        "stem_kernel": 3,
        "stem_stride": 2,
        "stem_pool": True,
        "norm": "batch",
    }


def add_training_arguments(
    parser: argparse.ArgumentParser,
    out: Path,
    episodes: int,
    episode_s: float,
    steps: int,
    seed: int,
    max_minutes: float,
) -> None:
    """The options every training script has (card folder, demonstrations, optimizer), with its defaults."""
    parser.add_argument("--out", type=Path, default=out, help="card folder to write")
    parser.add_argument("--episodes", type=int, default=episodes, help="expert episodes to record")
    parser.add_argument("--episode-s", type=float, default=episode_s, help="length of an expert episode")
    parser.add_argument("--steps", type=int, default=steps, help="training steps")
    parser.add_argument("--batch", type=int, default=64, help="batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (one-cycle)")
    parser.add_argument("--seed", type=int, default=seed, help="data and init seed")
    parser.add_argument("--max-minutes", type=float, default=max_minutes, help="stop training after this")


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


def demonstration_start(
    task: ReachTask, target: np.ndarray | TaskEpisode, horizon: int, dt: float, rng: np.random.Generator
) -> tuple[np.ndarray, ExpertPolicy]:
    """An episode's start pose (rad, ``[6]``) and expert: the default pose +- 0.3 rad or a reached
    pose of another target +- 0.1 rad (half each); 60 % of the experts are :class:`NoisyExpert`
    (offset scale 0.05-0.3 rad)."""
    if rng.random() < 0.5:
        start = np.asarray(SimArmConfig().initial) + rng.uniform(-0.3, 0.3, size=6)
    else:
        start = goal_pose(task.sample_target(rng)) + rng.uniform(-0.1, 0.1, size=6)
    noisy = rng.random() < 0.6
    policy = (
        NoisyExpert(task, target, horizon, dt, rng, scale=float(rng.uniform(0.05, 0.3)))
        if noisy
        else ExpertPolicy(task, target, horizon, dt)
    )
    return start, policy


def timed_demonstrations(
    generate: Callable[[], dict[str, np.ndarray]], episodes: int
) -> tuple[dict[str, np.ndarray], float, float]:
    """Run ``generate``; returns (data, seconds it took, 1-min load average at the start)."""
    load_start = os.getloadavg()[0]
    t0 = time.monotonic()
    data = generate()
    gen_s = time.monotonic() - t0
    print(
        f"demonstrations: {len(data['states'])} observations from {episodes} episodes in {gen_s:.0f} s",
        flush=True,
    )
    return data, gen_s, load_start


def normalization(data: dict[str, np.ndarray]) -> dict[str, dict[str, list[float]]]:
    """Per-joint mean/std of states and of delta actions (std floored so nothing divides by ~0)."""
    s, a = data["states"], data["labels"].reshape(-1, data["labels"].shape[-1])
    return {
        "state": {"mean": s.mean(0).tolist(), "std": np.maximum(s.std(0), 1e-2).tolist()},
        "action": {"mean": a.mean(0).tolist(), "std": np.maximum(a.std(0), 1e-2).tolist()},
    }


@dataclass(frozen=True)
class FitOptions:
    """The behaviour-cloning loop's settings (the options of :func:`add_training_arguments`)."""

    steps: int
    batch: int
    lr: float
    seed: int
    max_minutes: float
    log_every: int = 100

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FitOptions:
        """The settings of a parsed command line."""
        return cls(args.steps, args.batch, args.lr, args.seed, args.max_minutes)


def fit(
    model: Any,
    data: dict[str, np.ndarray],
    norm: dict[str, Any],
    step_loss: StepLoss,
    loss_name: str,
    opts: FitOptions,
) -> tuple[int, float, float]:
    """Behaviour cloning: AdamW (weight decay 1e-4) with a one-cycle learning rate peaking at
    ``opts.lr``, batches drawn with ``opts.seed``; stops after ``opts.steps`` or
    ``opts.max_minutes``. The model ends in eval mode. Returns (steps done, seconds, mean loss of
    the last 100 steps)."""
    import torch

    steps, batch, lr, log_every = opts.steps, opts.batch, opts.lr, opts.log_every

    images = torch.from_numpy(data["images"])  # uint8 [N, cams, H, W, 3]
    s_mean, s_std = (torch.tensor(norm["state"][k]) for k in ("mean", "std"))
    a_mean, a_std = (torch.tensor(norm["action"][k]) for k in ("mean", "std"))
    states = (torch.from_numpy(data["states"]) - s_mean) / s_std
    labels = (torch.from_numpy(data["labels"]) - a_mean) / a_std
    n = images.shape[0]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(opts.seed)
    model.train()
    t0 = time.monotonic()
    losses: list[float] = []
    done = 0
    for step in range(steps):
        idx = torch.randint(0, n, (batch,), generator=gen)
        # exactly the runtime's preprocessing: uint8 HWC -> float CHW in [0, 1], [B, T=1, N, C, H, W]
        img = images[idx].permute(0, 1, 4, 2, 3).float().mul_(1.0 / 255.0)[:, None]
        loss = step_loss(model, idx, img, states[idx][:, None], labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        done = step + 1
        if log_every and (done % log_every == 0 or done == 1):
            print(
                f"  step {done:5d}/{steps}  {loss_name} {np.mean(losses[-log_every:]):.4f}  "
                f"{time.monotonic() - t0:6.0f} s",
                flush=True,
            )
        if (time.monotonic() - t0) > opts.max_minutes * 60:
            print(f"  stopping at step {done}: --max-minutes {opts.max_minutes} reached", flush=True)
            break
    model.eval()
    return done, round(time.monotonic() - t0, 1), round(float(np.mean(losses[-100:])), 4)


def export_card(
    model: Any, out: Path, name: str, model_config: dict[str, Any], norm: dict[str, Any], module: str
) -> Any:
    """:func:`vla_ros.export.export_policy` of a sim-arm card (delta actions on the 6 sim joints);
    the export command is ``python -m <module> <this process's arguments>``. Returns the PolicyCard."""
    from vla_ros.export import export_policy

    joints = list(SimArmConfig().joint_names)
    return export_policy(
        model,
        out,
        name=name,
        model_config=model_config,
        state_joints=joints,
        action_joints=list(joints),
        normalization=norm,
        delta_to_absolute=False,
        export_command=f"python -m {module} " + " ".join(sys.argv[1:]),
    )


def training_record(
    script: str,
    task: str,
    args: argparse.Namespace,
    observations: int,
    gen_s: float,
    load_start: float,
    params: int,
    record: dict[str, Any],
    figures: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    """The card's ``provenance.training``: the script, the demonstrations, the machine, ``extra``,
    the fit's ``record`` and the closed-loop ``figures``."""
    return {
        "script": script,
        "task": task,
        "episodes": args.episodes,
        "episode_s": args.episode_s,
        "observations": observations,
        "seed": args.seed,
        "demonstration_seconds": round(gen_s, 1),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": round(load_start, 2),  # the timings are from a shared machine if high
        "parameters": int(params),
        **extra,
        **record,
        "closed_loop": figures,
    }


def finish_card(card: Any, out: Path, training: dict[str, Any], write_readme: Callable[[], None]) -> None:
    """Store ``training`` in the card's provenance, write its README.md, check the card loads
    again and print the record."""
    from vla_ros.contract.card import PolicyCard

    card.provenance["training"] = training
    card.save()
    write_readme()
    PolicyCard.load(out)  # still a valid card
    print(json.dumps(training, indent=2))
    print(f"card: {out} ({card.policy_id})")
