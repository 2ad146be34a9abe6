"""Shared by the LeRobot pi0 / pi0.5 and SmolVLA tests: raw golden inputs -> the spine's
inputs, the whole-path check against LeRobot's outputs, and the robot-path check of a card."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from lerobot_fixtures import BOUND, FIXTURES, folder, golden
from robot_path import assert_in_limits, bringup, publish_instruction, write_bringup_params

from vla_ros.export import PolicyCard
from vla_ros.runtime import Observation, load_runtime
from vla_ros.spine.checkpoints import (
    LeRobotCheckpoint,
    LeRobotFeature,
    build_lerobot_policy,
    read_lerobot_folder,
)

SIM_JOINTS = [f"joint_{i}" for i in range(1, 7)]
#: what the policy node logs once per task when an instruction's prompt is cut
NOTE = "longer than the tokenizer limit"
#: published on the instruction topic in the node tests (longer than the cards' token limits)
INSTRUCTION = "stack the green block on the blue block"


def provenance(case: str) -> dict:
    """The golden ``case``'s ``provenance.json`` (how LeRobot recorded it: tasks, prompts, ...)."""
    return json.loads((FIXTURES / case / "provenance.json").read_text())


def tasks(case: str) -> list[str]:
    """The task strings the golden ``case`` was recorded with."""
    return provenance(case)["tasks"]


def observations(case: str) -> tuple[list[Observation], np.ndarray, np.ndarray, np.ndarray]:
    """(raw observations with the golden tasks, golden noise, LeRobot's actions, its token ids)."""
    inputs, outputs = golden(case)
    cams = {k.split("observation.images.", 1)[1]: v.numpy() for k, v in inputs.items() if "images" in k}
    state = inputs["observation.state"].numpy()
    obs = [
        Observation(images={c: v[i] for c, v in cams.items()}, state=state[i], instruction=t, stamp_ns=i + 1)
        for i, t in enumerate(tasks(case))
    ]
    return obs, inputs["noise"].numpy(), outputs["action"].numpy(), outputs["tokens"].numpy()


def assert_card_reproduces_lerobot(card: Path, case: str, backend: str) -> None:
    """The card's runtime (``backend``) turns the golden ``case``'s raw observations and noise
    into LeRobot's raw actions (within :data:`BOUND`) with LeRobot's token ids, one step graph
    call per Euler step."""
    rt = load_runtime(card, backend=backend)
    obs, noise, want, tokens = observations(case)
    got = np.stack([rt.infer(o, noise=n) for o, n in zip(obs, noise)])
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= BOUND
    ids = np.concatenate([rt.pre(o)["tokens"] for o in obs])
    np.testing.assert_array_equal(ids, tokens)  # LeRobot's preprocessor ids, -1 padded
    assert rt.stats()["step"]["count"] == rt.card.export["split"]["num_steps"] * len(obs)


def full_keys_checkpoint(kind: str) -> tuple[dict, LeRobotCheckpoint]:
    """(``<kind>_full_keys.json``: a full-size LeRobot checkpoint's config and key list, a
    weightless, statistics-free checkpoint of that config at ``/nonexistent/<kind>_base``)."""
    data = json.loads((FIXTURES / f"{kind}_full_keys.json").read_text())
    cfg = data["config"]
    feats = {k: LeRobotFeature(v["type"], tuple(v["shape"])) for k, v in cfg["input_features"].items()}
    ckpt = LeRobotCheckpoint(
        path=Path(f"/nonexistent/{kind}_base"),
        policy_type=kind,
        config=cfg,
        state_dict={},
        stats={},
        norm_map=dict(cfg["normalization_mapping"]),
        input_features=feats,
        output_features={
            "action": LeRobotFeature("ACTION", tuple(cfg["output_features"]["action"]["shape"]))
        },
    )
    return data, ckpt


def load_case(case: str) -> tuple[str, LeRobotCheckpoint, torch.nn.Module]:
    """(``case``, its checkpoint, the spine policy built from it): the model tests' fixture."""
    ckpt = read_lerobot_folder(folder(case))
    return case, ckpt, build_lerobot_policy(ckpt)


def images_and_state(
    ckpt: LeRobotCheckpoint, model: torch.nn.Module, inputs: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Golden uint8 HWC camera bytes and raw state -> images ``[B, N, 3, H, W]`` in [0, 1] (the
    model's camera order) and the checkpoint-normalized state ``[B, D]``."""
    cams = [f"observation.images.{c}" for c in model.io.camera_names]
    images = torch.stack([inputs[f].permute(0, 3, 1, 2).to(torch.float32) / 255.0 for f in cams], dim=1)
    return images, ckpt.normalizer("observation.state").normalize(inputs["observation.state"])


def assert_whole_path_matches(
    ckpt: LeRobotCheckpoint,
    model: torch.nn.Module,
    obs: dict[str, torch.Tensor],
    inputs: dict[str, torch.Tensor],
    outputs: dict[str, torch.Tensor],
) -> None:
    """``model.predict_action(obs, noise=inputs["noise"])`` equals LeRobot's actions (raw and
    normalized) within :data:`BOUND`, and the golden actions vary over the chunk and samples."""
    with torch.no_grad():
        normalized = model.predict_action(obs, noise=inputs["noise"])
    got = ckpt.normalizer("action").unnormalize(normalized)
    assert got.shape == outputs["action"].shape
    assert (got - outputs["action"]).abs().max().item() <= BOUND
    assert (normalized - outputs["action.normalized"]).abs().max().item() <= BOUND
    # the golden actions vary over the chunk and between samples (a constant would not)
    assert outputs["action"].std(dim=1).min().item() > 1e-2
    assert (outputs["action"][0] - outputs["action"][1]).abs().max().item() > 1e-2


def sim_arm_copy(
    case: str, dest: Path, max_tokens: int, action_dim: int | None = None, **config: Any
) -> dict:
    """The golden ``case``'s folder at ``dest`` made sim-arm shaped: camera ``top`` renamed
    ``front`` (names only), :data:`SIM_JOINTS` as the state and action names, a token limit of
    ``max_tokens``, the action shape ``[action_dim]`` when given and the ``config`` entries set in
    ``config.json``. Returns the config written."""
    shutil.copytree(folder(case), dest)
    for name in ("config.json", "policy_preprocessor.json", "policy_postprocessor.json"):
        f = dest / name
        f.write_text(f.read_text().replace("observation.images.top", "observation.images.front"))
    cfg = json.loads((dest / "config.json").read_text())
    cfg["input_features"]["observation.state"]["names"] = SIM_JOINTS
    if action_dim is not None:
        cfg["output_features"]["action"]["shape"] = [action_dim]
    cfg["output_features"]["action"]["names"] = SIM_JOINTS
    cfg.update(config)
    cfg["tokenizer_max_length"] = max_tokens
    (dest / "config.json").write_text(json.dumps(cfg))
    return cfg


def assert_card_drives_robot(
    ros: Any, card_path: Path, tmp_path: Path, image_size: tuple[int, int], horizon: int
) -> None:
    """The sim-arm card at ``card_path`` drives the real policy_node -> executor_node graph
    (images ``image_size`` = (width, height) pixels): after :data:`INSTRUCTION` is published, an
    action chunk ``[horizon, 6]`` of the card's policy over :data:`SIM_JOINTS` comes out, every
    joint command stays in the arm's limits, and the prompt's cut is logged exactly once."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from vla_ros.msg import ActionChunk

    arm = write_bringup_params(
        tmp_path / "bringup.yaml", card_path, image_width=image_size[0], image_height=image_size[1]
    )
    chunks = ros.subscribe("/vla/action_chunk", ActionChunk)
    commands = ros.subscribe("/vla/joint_command", JointState)
    instruction = ros.publisher("/vla/instruction", String)
    with bringup(tmp_path / "bringup.yaml", duration_s=90) as run:
        publish_instruction(ros, chunks, instruction, INSTRUCTION)
        command = commands.wait_for(1, timeout=20)[0]
    out = run.output
    assert run.returncode == 0, out
    card = PolicyCard.load(card_path)
    chunk = list(chunks.messages)[-1]
    assert chunk.policy_id == card.policy_id
    assert (chunk.horizon, chunk.action_dim) == (horizon, 6)
    assert list(chunk.joint_names) == SIM_JOINTS
    assert np.all(np.isfinite(np.asarray(chunk.actions)))
    assert list(command.name) == SIM_JOINTS
    assert_in_limits(commands.messages, arm)  # every command the executor published
    # the instruction topic reached the policy's tokenizer: its prompt's cut is said once per task
    notes = [line for line in out.splitlines() if NOTE in line and INSTRUCTION[:20] in line]
    assert len(notes) == 1, out


def assert_split_layout_equals_predict(
    model: torch.nn.Module, obs: dict[str, torch.Tensor], noise: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``export_prefix`` then ``num_export_steps`` ``export_step`` calls from ``noise`` equal
    ``predict_action`` (cut to the action dim), the prefix cache has one entry per LLM layer and
    the padded noise dimensions are inputs too. Returns (the prefix, the predicted actions)."""
    with torch.no_grad():
        prefix = model.export_prefix(obs)
        x = noise
        for i in range(model.num_export_steps):
            x = model.export_step(prefix, x, torch.tensor(i))
        whole = model.predict_action(obs, noise=noise)
        other = model.predict_action(obs, noise=torch.zeros_like(noise))
    assert torch.equal(x[..., : model.io.action_dim], whole)
    assert prefix["prefix_k"].shape[0] == model.llm_backbone.depth
    assert (other - whole).abs().max().item() > 1e-2  # the padded noise dims are inputs too
    return prefix, whole


def ort_session(path: Path) -> ort.InferenceSession:
    """A CPU ONNX Runtime session of the graph at ``path`` (2 intra-op threads)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_split_onnx(
    split: dict,
    prefix_sess: ort.InferenceSession,
    step_sess: ort.InferenceSession,
    obs: dict[str, torch.Tensor],
    noise: torch.Tensor,
    feed_names: Iterable[str],
    action_dim: int,
) -> torch.Tensor:
    """The exported split graphs sample one action chunk per sample of ``obs``: the prefix graph
    fed ``feed_names`` of ``obs``, then ``split["num_steps"]`` step-graph calls from ``noise``.
    Returns the normalized actions ``[B, chunk, action_dim]``."""
    feed_names = list(feed_names)
    got = []
    for i in range(obs["state"].shape[0]):
        feeds = {n: obs[n][i : i + 1].numpy() for n in feed_names}
        outs = prefix_sess.run(split["prefix_outputs"], feeds)
        cache = dict(zip(split["prefix_outputs"], outs, strict=True))
        x = noise[i : i + 1].numpy()
        for step in range(split["num_steps"]):
            x = step_sess.run(["x_next"], {**cache, "x": x, "step_index": np.array(step, dtype=np.int64)})[0]
        got.append(torch.from_numpy(x[0, :, :action_dim]))
    return torch.stack(got)
