"""The live lane for pi0 / pi0.5: LeRobot 0.6.1 (the 3.12 reference venv) builds reduced
checkpoints with non-default configs (``pi0_live_cases.py``) and answers ``predict_action_chunk``
(fixed noise) and ``select_action`` (seeded) on this test's own inputs; ``vla-ros export`` turns
each folder into split and monolithic cards, which the torch and ONNX Runtime backends run from
raw camera bytes, raw state and the task string. Marked ``lerobot``; skipped without the lane."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from lerobot_fixtures import BOUND
from pi0_live_cases import CASES, N_SAMPLES
from safetensors.torch import load_file

from vla_ros.cli import main
from vla_ros.contract.card import PolicyCard
from vla_ros.runtime import Observation, load_runtime

ROOT = Path(__file__).resolve().parents[2]
LANE = Path(os.environ.get("LEROBOT_VENV", ROOT / ".venv-lerobot")) / "bin" / "python"
TOKENIZER = "google/paligemma-3b-pt-224"

pytestmark = [
    pytest.mark.lerobot,
    pytest.mark.slow,
    pytest.mark.skipif(
        not LANE.is_file(), reason=f"no LeRobot reference lane at {LANE.parent.parent}: run make lerobot-ref"
    ),
]


@pytest.fixture(scope="module")
def lane(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every case built and answered by LeRobot in one lane process."""
    out = tmp_path_factory.mktemp("pi0_live")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [str(LANE), str(ROOT / "test" / "lerobot" / "pi0_live_lane.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / "done.json").is_file(), run.stdout[-2000:]
    return out


def _export(lane: Path, case: str, layout: str) -> Path:
    card = lane / case / f"card_{layout}"
    if not (card / "card.yaml").is_file():
        args = ["export", str(lane / case / "pretrained_model"), "--out", str(card), "--layout", layout]
        args += ["--tokenizer", str(lane / TOKENIZER), "--fps", "15", "--quiet"]
        assert main(args) == 0
    return card


def _observations(lane: Path, case: str) -> tuple[list[Observation], dict, dict]:
    inputs = load_file(str(lane / case / "inputs.safetensors"))
    outputs = load_file(str(lane / case / "outputs.safetensors"))
    tasks = json.loads((lane / case / "case.json").read_text())["tasks"]
    obs = []
    for i in range(N_SAMPLES):
        images = {cam: inputs[f"observation.images.{cam}"][i].numpy() for cam in CASES[case]["cameras"]}
        state = inputs["observation.state"][i].numpy()
        obs.append(Observation(images=images, state=state, instruction=tasks[i]))
    return obs, inputs, outputs


@pytest.mark.parametrize("layout", ["split", "monolithic"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_export_reproduces_lerobot_policy(lane: Path, case: str, layout: str) -> None:
    """torch and ONNX Runtime, from raw inputs: the whole chunk equals LeRobot's
    ``predict_action_chunk`` and its first ``n_action_steps`` rows LeRobot's ``select_action``
    sequence, both within :data:`BOUND` in raw units."""
    spec = CASES[case]
    card_dir = _export(lane, case, layout)
    card = PolicyCard.load(card_dir)
    cfg = spec["config"]
    chunk, n_exec = cfg["chunk_size"], cfg["n_action_steps"]
    assert card.io.camera_names == tuple(spec["cameras"])
    assert (card.io.horizon, card.io.action_dim, card.io.state_dim) == (
        chunk,
        spec["action_dim"],
        spec["state_dim"],
    )
    assert card.io.text_max_len == cfg["tokenizer_max_length"]
    assert card.io.noise_shape == (chunk, cfg.get("max_action_dim", 32))
    assert card.io.extra["lerobot"]["n_action_steps"] == n_exec
    obs, inputs, outputs = _observations(lane, case)
    for backend in ("torch", "onnxruntime"):
        rt = load_runtime(card_dir, backend=backend)
        for i, o in enumerate(obs):
            got = rt.infer(o, noise=inputs["noise"][i].numpy())
            want = outputs["chunk"][i].numpy()
            assert got.shape == want.shape
            err = float(np.abs(got - want).max())
            assert err <= BOUND, f"{backend} {layout} sample {i}: predict_action_chunk differs by {err:.2e}"
            sel = rt.infer(o, noise=inputs["select_noise"][i].numpy())[:n_exec]
            err = float(np.abs(sel - outputs["select"][i].numpy()).max())
            assert err <= BOUND, f"{backend} {layout} sample {i}: select_action differs by {err:.2e}"
    # the inputs matter: the samples' chunks differ, and so do the two noises' chunks
    assert float((outputs["chunk"][0] - outputs["chunk"][1]).abs().max()) > 1e-2
    assert float((outputs["chunk"][0, :n_exec] - outputs["select"][0]).abs().max()) > 1e-2


def test_over_long_tasks_are_cut_and_said_once(lane: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The tasks LeRobot's tokenizer cut (its tokens fill the limit) get one warning each from
    the runtime's tokenizer, however often they are inferred; the others none."""
    for case in sorted(CASES):
        outputs = load_file(str(lane / case / "outputs.safetensors"))
        cut = [bool((row >= 0).all()) for row in outputs["tokens"]]
        rt = load_runtime(_export(lane, case, "split"), backend="onnxruntime")
        obs, inputs, _ = _observations(lane, case)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            for _ in range(2):
                for i, o in enumerate(obs):
                    rt.infer(o, noise=inputs["noise"][i].numpy())
        notes = [
            r.getMessage() for r in caplog.records if "longer than the tokenizer limit" in r.getMessage()
        ]
        assert len(notes) == sum(cut), (case, cut, notes)


def test_bfloat16_checkpoint_runs_fp32_and_the_card_says_so(lane: Path) -> None:
    """A checkpoint saved with ``dtype: bfloat16`` (the hub's pi0.5): vla_ros equals LeRobot's
    fp32 run of it (the test above); LeRobot's own bf16 run differs by bf16 rounding only, and
    the export's note saying so is in the card's provenance."""
    case = "live_pi05_1cam"
    assert CASES[case]["config"]["dtype"] == "bfloat16"
    outputs = load_file(str(lane / case / "outputs.safetensors"))
    low = float((outputs["chunk_bfloat16"] - outputs["chunk"]).abs().max())
    assert 0.0 < low < 0.1
    card = PolicyCard.load(_export(lane, case, "split"))
    assert card.io.extra["lerobot"]["dtype"] == "bfloat16"
    notes = [w for w in card.provenance["warnings"] if "dtype 'bfloat16'" in w]
    assert len(notes) == 1 and "float32" in notes[0]
