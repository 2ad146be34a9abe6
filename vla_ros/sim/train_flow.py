"""Train the bundled flow-matching policy for the switching-targets task on the CPU.

Scripted-expert demonstrations -> flow-matching behaviour cloning (spine family
``flow_matching``, trained through the family's own ``forward`` loss) -> policy card (ONNX,
split layout: a prefix graph and an Euler-step graph)::

    ./env.sh python -m vla_ros.sim.train_flow   # writes vla_ros/sim/bundled/sim_switching_targets_flow
    ./env.sh python -m vla_ros.sim.train_flow --steps 100 --episodes 4 --out /tmp/card   # a quick try
    ./env.sh python -m vla_ros.sim.train_flow --evaluate-only # the closed-loop figures of the card

1. **Demonstrations.** :class:`~vla_ros.sim.task.SwitchingTargetsTask`'s expert drives the
   simulated arm through the pure closed loop (:func:`vla_ros.sim.loop.run_episode`) over
   sequences of targets, from the default pose or a random reached pose; in part of the
   episodes the executed chunks carry a drifting offset (DART-style noise injection,
   :class:`vla_ros.sim.train_common.NoisyExpert`); the label is always the clean expert chunk
   for the observed state and the target shown.
2. **Flow matching.** The family's training loss (``FlowMatchingVLA.forward``: velocity
   regression at ``x_t = t * noise + (1 - t) * actions``, Beta-sampled flow times; pi0, Black
   et al. 2024, arXiv 2410.24164) on normalized delta actions (20 actions at 20 Hz: a 1 s
   chunk horizon, longer than the largest latency studied, 0.5 s).
3. **Export and check.** :func:`vla_ros.export.export_policy` (parity-gated), then the card on
   ONNX Runtime in the closed loop on held-out episodes (figures in the card's
   ``provenance.training`` and README.md).

``--rtc`` trains with real-time-chunking conditioning (training-time action conditioning:
the committed prefix of the chunk is given to the model, with simulated delays) through the
family's own switch for it; it stops with an error naming what is missing while the family
has none.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from vla_ros.contract.observation import Observation
from vla_ros.sim.loop import (
    HoldPolicy,
    LoopConfig,
    RuntimePolicy,
    evaluation_episodes,
    run_episode,
)
from vla_ros.sim.task import SwitchingTargetsTask, goal_pose
from vla_ros.sim.train_common import (
    FitOptions,
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

NAME = "sim_switching_targets_flow"
DEFAULT_OUT = Path(__file__).resolve().parent / "bundled" / NAME
TRAIN_SEED = 11
#: held-out episodes come from this seed (training uses --seed)
EVAL_SEED = 1234
#: ``--rtc``: the most committed actions the policy is conditioned on (12 x 50 ms: latencies
#: up to 0.55 s, the study's 500 ms included)
RTC_MAX_DELAY = 12
RTC_NOTE = "yes (`rtc: {{max_delay: {k}}}`, labels continuing the executor's committed actions)"

#: the bundled model: flow matching, ~0.5 M parameters, ms-scale CPU inference
MODEL_CONFIG: dict[str, Any] = {
    "name": NAME,
    "type": "flow_matching",
    "io": sim_arm_io(horizon=20),
    "num_steps": 10,
    "vision_backbone": sim_arm_vision_backbone(),
    "projector": {"type": "MLPProjector"},
    "llm_backbone": {
        "type": "DecoderLM",
        "dim": 64,
        "depth": 2,
        "heads": 4,
        "kv_heads": 2,
        "head_dim": 16,
        "max_len": 64,
    },
    "vla_head": {"type": "FlowMatchingExpert", "dim": 64, "heads": 4},
    "freeze": {},
}


def generate(
    episodes: int, seed: int, task: SwitchingTargetsTask, cfg: LoopConfig, rtc: bool = False
) -> dict[str, np.ndarray]:
    """Demonstrations: uint8 images ``[N, cams, H, W, 3]``, states ``[N, 6]``, labels ``[N, H, 6]``.

    With ``rtc``, every other episode runs the executor in ``rtc`` mode at a random latency of
    0.1-0.5 s, so its observations carry what the executor had committed (its plan, ahead of
    the lagging measured state); those are kept too: ``committed [N, RTC_MAX_DELAY, 6]``
    (absolute, zero-padded), ``committed_len [N]`` and the goal poses ``goals [N, 6]``, from
    which :func:`conditioned_labels` builds the labels of a conditioned sample.
    """
    io = MODEL_CONFIG["io"]
    horizon, dt = int(io["horizon"]), float(io["dt"])
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("images", "states", "labels", "committed", "goals")}
    lengths: list[int] = []
    goal_cache: dict[tuple[float, float], np.ndarray] = {}
    for i in range(episodes):
        ep = task.sample_episode(rng)
        start, policy = demonstration_start(task, ep, horizon, dt, rng)
        ep_cfg = cfg
        if rtc and i % 2 == 1:
            latency = float(rng.choice([0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]))
            ep_cfg = dataclasses.replace(cfg, mode="rtc", latency_s=latency)

        def record(obs: Observation, _chunk: np.ndarray, ep: Any = ep) -> None:
            key = (float(ep.target[0]), float(ep.target[1]))
            if key not in goal_cache:
                goal_cache[key] = goal_pose(ep.target)
            goal = goal_cache[key]
            out["images"].append(np.stack([obs.images[c] for c in cfg.cameras]))
            out["states"].append(obs.state.astype(np.float32))
            out["labels"].append(task.approach(obs.state, goal, horizon, dt))
            out["goals"].append(goal.astype(np.float32))
            c = obs.committed_actions
            c = np.zeros((0, 6), np.float32) if c is None else c[:RTC_MAX_DELAY]
            lengths.append(len(c))
            out["committed"].append(np.concatenate([c, np.zeros((RTC_MAX_DELAY - len(c), 6), np.float32)]))

        run_episode(policy, ep, task=task, config=ep_cfg, initial=start, on_observation=record)
    data = {k: np.stack(v) for k, v in out.items()}
    data["committed_len"] = np.asarray(lengths, dtype=np.int64)
    return data


def conditioned_labels(
    data: dict[str, np.ndarray], idx: np.ndarray, delays: np.ndarray, task: SwitchingTargetsTask
) -> np.ndarray:
    """Delta labels ``[B, H, 6]`` of samples ``idx`` whose first ``delays[b]`` actions are the
    recorded committed ones (:meth:`~vla_ros.sim.task.ReachTask.continuation`); delay 0: the
    plain expert label."""
    io = MODEL_CONFIG["io"]
    horizon, dt = int(io["horizon"]), float(io["dt"])
    out = np.empty((len(idx), horizon, 6), dtype=np.float32)
    for b, (i, d) in enumerate(zip(idx, delays)):
        if d == 0:
            out[b] = data["labels"][i]
        else:
            out[b] = task.continuation(
                data["states"][i], data["committed"][i, :d], data["goals"][i], horizon, dt
            )
    return out


def build_model(rtc: bool) -> Any:
    """The spine model of :data:`MODEL_CONFIG`; ``rtc`` switches on the family's RTC conditioning.

    Raises ``SystemExit`` naming what is missing when ``rtc`` is asked and the family has no
    training-time conditioning (``rtc`` setting) yet.
    """
    from vla_ros.spine import build_vla

    config = copy.deepcopy(MODEL_CONFIG)
    if rtc:
        config["rtc"] = {"max_delay": RTC_MAX_DELAY}
    try:
        return build_vla(config), config
    except TypeError as e:
        if rtc and "rtc" in str(e):
            raise SystemExit(
                f"--rtc: the flow_matching family does not take an 'rtc' setting yet ({e}); "
                "train without --rtc"
            ) from e
        raise


def train(
    data: dict[str, np.ndarray], norm: dict[str, Any], opts: FitOptions, rtc: bool = False
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Fit the flow-matching model with the family's loss; returns (model in eval mode, config, record)."""
    import torch

    torch.manual_seed(opts.seed)
    model, config = build_model(rtc)
    a_mean, a_std = (torch.tensor(norm["action"][k]) for k in ("mean", "std"))
    np_rng = np.random.default_rng(opts.seed)
    task = SwitchingTargetsTask()

    def flow_loss(model: Any, idx: Any, img: Any, states: Any, labels: Any) -> Any:
        batch_in = {"images": img, "state": states, "actions": labels}
        if rtc:  # d uniform in [0, committed length] per sample: labels continue the committed actions
            ids = idx.numpy()
            delays = np.floor(np_rng.random(len(ids)) * (data["committed_len"][ids] + 1)).astype(np.int64)
            raw = torch.from_numpy(conditioned_labels(data, ids, delays, task))
            batch_in["actions"] = (raw - a_mean) / a_std
            batch_in["rtc_delay"] = torch.from_numpy(delays)
        return model(batch_in)["loss"]

    done, seconds, final = fit(model, data, norm, flow_loss, "flow MSE", opts)
    record = {
        "steps": done,
        "batch": opts.batch,
        "lr": opts.lr,
        "rtc_conditioning": bool(rtc),
        "seconds": seconds,
        "final_flow_mse_normalized": final,
    }
    return model, config, record


def closed_loop_figures(
    card_dir: Path, episodes: int, seed: int, task: SwitchingTargetsTask, cfg: LoopConfig
) -> dict[str, Any]:
    """The exported card (ONNX Runtime) vs. the hold-still baseline on held-out task episodes."""
    from vla_ros.runtime import load_runtime

    runtime = load_runtime(card_dir, backend="onnxruntime", threads=1)
    io = runtime.card.io
    policy = RuntimePolicy(runtime, seed=seed)
    learned = [
        run_episode(policy, ep, task=task, config=cfg) for ep in evaluation_episodes(episodes, task, seed)
    ]
    hold_policy = HoldPolicy(io.horizon, io.action_dim, io.dt)
    hold = [
        run_episode(hold_policy, ep, task=task, config=cfg)
        for ep in evaluation_episodes(episodes, task, seed)
    ]
    times = [e.time_to_success_s for e in learned if e.success]
    return {
        "episodes": episodes,
        "episode_seed": seed,
        "episode_s": cfg.duration_s,
        "latency_s": cfg.latency_s,
        "executor_mode": cfg.mode,
        "schedule": cfg.schedule,
        "execution_horizon": cfg.execution_horizon,
        "policy_success_rate": round(float(np.mean([e.success for e in learned])), 3),
        "policy_mean_time_to_success_s": round(float(np.mean(times)), 3) if times else None,
        "policy_targets_reached_mean": round(
            float(np.mean([len(e.task_episode.reached_at_s) for e in learned])), 2
        ),
        "hold_still_success_rate": round(float(np.mean([e.success for e in hold])), 3),
    }


CLOSED_LOOP = """{episodes_eval} held-out episodes (seed {episode_seed}), pure closed loop
(`vla_ros.sim.loop`: renderer + this card on ONNX Runtime + the executor's ChunkController + servo dynamics,
simulated time), executor mode `{executor_mode}`, injected latency {latency_s:g} s, one inference
in flight.

| policy | success rate | mean time to success | targets reached (mean of {n_targets}) |
|---|---|---|---|
| this card | {policy_success_rate:.0%} | {tts} | {policy_targets_reached_mean} |
| hold still (baseline) | {hold_still_success_rate:.0%} | - | - |
"""

README = """# {name}: the bundled flow-matching policy (switching targets)

A flow-matching policy (spine family `flow_matching`, {params:,} parameters, {num_steps} Euler
steps) for the simulated 6-joint arm's `switching_targets` task
(`vla_ros.sim.task.SwitchingTargetsTask`): {n_targets} targets appear one after the other in
the two 64x64 cameras (`front`, `wrist`); each is replaced by the next as soon as the fingertip
is within {success_radius:g} of it; success = all reached within {deadline_s:g} s. The target is
visible only in the images. The closed-loop latency study (`benchmarks/bench_closed_loop.py`,
docs/latency.md) runs this card.

- inputs: cameras `front`, `wrist` (64x64 RGB), state `joint_1..joint_6` (rad)
- outputs: {horizon} delta actions at {hz:g} Hz (`action_mode: delta`; a {span:g} s chunk horizon)
- trained by `./env.sh python -m vla_ros.sim.train_flow{flag}` (`vla_ros/sim/train_flow.py`):
  {episodes} scripted-expert episodes ({samples} observations, seed {seed}), the family's
  flow-matching loss, {steps} steps x batch {batch} on the CPU ({threads} torch thread(s)) in
  {seconds:.0f} s (final normalized flow MSE {mse}); RTC conditioning: {rtc}; generating the
  demonstrations took {gen_s:.0f} s

## Offline closed-loop figures

{closed_loop}

Reproduce: `./env.sh python -m vla_ros.sim.train_flow --evaluate-only`.
"""


def evaluate_card(card_dir: Path, episodes: int, task: SwitchingTargetsTask) -> dict[str, Any]:
    """:func:`closed_loop_figures` of the card; ``{"error": ...}`` when this tree cannot run it
    (e.g. a card with RTC inputs before the runtime feeds them): the card stays, re-run with
    ``--evaluate-only``."""
    from vla_ros.contract.errors import VlaRosError

    try:
        return closed_loop_figures(card_dir, episodes, EVAL_SEED, task, eval_config(task))
    except VlaRosError as e:
        print(f"closed-loop check not run: {e}", flush=True)
        return {"error": str(e)[:500]}


def write_readme(out: Path, training: dict[str, Any], task: SwitchingTargetsTask) -> None:
    """README.md beside the card from its ``provenance.training`` record."""
    io = MODEL_CONFIG["io"]
    figures = training.get("closed_loop") or {}
    if "error" in figures:
        table = f"Not evaluated: {figures['error']}"
    else:
        tts = figures["policy_mean_time_to_success_s"]
        table = CLOSED_LOOP.format(
            episodes_eval=figures["episodes"],
            n_targets=task.n_targets,
            tts="-" if tts is None else f"{tts:.2f} s",
            **{k: v for k, v in figures.items() if k != "episodes"},
        )
    (out / "README.md").write_text(
        README.format(
            name=NAME,
            params=training["parameters"],
            num_steps=MODEL_CONFIG["num_steps"],
            n_targets=task.n_targets,
            success_radius=task.success_radius,
            deadline_s=task.deadline_s,
            horizon=io["horizon"],
            hz=1.0 / io["dt"],
            span=io["horizon"] * io["dt"],
            episodes=training["episodes"],
            samples=training["observations"],
            seed=training["seed"],
            steps=training["steps"],
            batch=training["batch"],
            threads=training.get("torch_threads", 1),
            seconds=training["seconds"],
            mse=training["final_flow_mse_normalized"],
            rtc=RTC_NOTE.format(k=RTC_MAX_DELAY) if training.get("rtc_conditioning") else "no",
            flag=" --rtc" if training.get("rtc_conditioning") else "",
            gen_s=training["demonstration_seconds"],
            closed_loop=table,
        )
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options."""
    add_training_arguments(
        parser, DEFAULT_OUT, episodes=80, episode_s=6.0, steps=3000, seed=TRAIN_SEED, max_minutes=20.0
    )
    parser.add_argument("--eval-episodes", type=int, default=20, help="held-out episodes to evaluate")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: reproducible; 0 = all)")
    parser.add_argument(
        "--rtc", action="store_true", help="train with the family's real-time-chunking conditioning"
    )
    parser.add_argument(
        "--evaluate-only", action="store_true", help="only re-run the closed-loop figures of --out"
    )
    parser.add_argument(
        "--trained",
        type=Path,
        default=Path(tempfile.gettempdir()) / f"{NAME}_trained.pt",
        help="where the trained weights are kept before the export",
    )
    parser.add_argument(
        "--resume-export", action="store_true", help="export and check the weights in --trained (no training)"
    )


def eval_config(task: SwitchingTargetsTask) -> LoopConfig:
    """The card's closed-loop check: 100 ms latency, ``latest``, one inference in flight."""
    return LoopConfig(
        duration_s=task.deadline_s,
        latency_s=0.1,
        mode="latest",
        schedule="one_in_flight",
        execution_horizon=3,
        stop_on_success=True,
    )


def run(args: argparse.Namespace) -> int:
    """Generate, train, export, evaluate; returns the exit code."""
    import torch

    from vla_ros.contract.card import PolicyCard

    if args.threads:
        torch.set_num_threads(args.threads)
    task = SwitchingTargetsTask()
    if args.evaluate_only:  # re-run the figures; the card's provenance and README follow
        card = PolicyCard.load(args.out)
        training = dict(card.provenance.get("training") or {})
        training["closed_loop"] = evaluate_card(args.out, args.eval_episodes, task)
        card.provenance["training"] = training
        card.save()
        write_readme(Path(args.out), training, task)
        print(json.dumps(training["closed_loop"], indent=2))
        return 0
    if args.resume_export:  # a finished training whose export or check failed
        saved = torch.load(args.trained, weights_only=False)
        model, config = build_model(bool(saved["record"]["rtc_conditioning"]))
        model.load_state_dict(saved["state_dict"])
        model.eval()
        norm, record, n_obs = saved["norm"], saved["record"], saved["observations"]
        gen_s, load_start = saved["demonstration_seconds"], saved["load_average_at_start"]
    else:
        if args.rtc:
            build_model(True)  # fail before the demonstrations when the family cannot do it
        data, gen_s, load_start = timed_demonstrations(
            lambda: generate(
                args.episodes, args.seed, task, LoopConfig(duration_s=args.episode_s), rtc=args.rtc
            ),
            args.episodes,
        )
        norm = normalization(data)
        model, config, record = train(data, norm, FitOptions.from_args(args), rtc=args.rtc)
        n_obs = len(data["states"])
        del data
        torch.save(
            {
                "state_dict": model.state_dict(),
                "norm": norm,
                "record": record,
                "observations": n_obs,
                "demonstration_seconds": gen_s,
                "load_average_at_start": load_start,
            },
            args.trained,
        )
        print(f"trained weights: {args.trained} (export again with --resume-export)", flush=True)
    card = export_card(model, args.out, NAME, config, norm, "vla_ros.sim.train_flow")
    figures = evaluate_card(args.out, args.eval_episodes, task)
    params = sum(p.numel() for p in model.parameters())
    training = training_record(
        "vla_ros/sim/train_flow.py",
        "switching_targets (vla_ros.sim.task.SwitchingTargetsTask)",
        args,
        n_obs,
        gen_s,
        load_start,
        params,
        record,
        figures,
        torch_threads=torch.get_num_threads(),
    )
    finish_card(card, args.out, training, lambda: write_readme(Path(args.out), training, task))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m vla_ros.sim.train_flow``."""
    return run_command("python -m vla_ros.sim.train_flow", __doc__, add_arguments, run, argv)


if __name__ == "__main__":
    sys.exit(main())
