"""``vla-ros export <LeRobot Diffusion folder>``: the card through vla_ros's runtimes vs LeRobot.

The card's chunk is the whole sampled horizon (the split layout's ``x``); LeRobot executes the
window ``io.extra["action_window"]`` of it, which this test reads off the card.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lerobot_fixtures import BOUND, folder, golden

from vla_ros.cli import main
from vla_ros.export import PolicyCard
from vla_ros.runtime import Observation, load_runtime

CASES = ("diffusion_gn_ddim", "diffusion_bn_sample")


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for case in CASES:
        dst = tmp_path_factory.mktemp(case) / "card"
        assert main(["export", str(folder(case)), "--out", str(dst), "--fps", "10", "--quiet"]) == 0
        out[case] = dst
    return out


# (torch, diffusion_bn_sample) is left out: the torch runtime misses it by 1.2e-4 (ORT and the
# model called directly are within 1e-7). Explained: the case is ill-conditioned in float32
# (GroupNorm groups of one channel); LeRobot's own float32 output is ~1.2e-4 (raw) from its
# float64 output, which vla_ros's float64 reproduces (test_diffusion_live.py, float64 test)
@pytest.mark.parametrize(
    ("case", "backend"),
    [
        ("diffusion_gn_ddim", "onnxruntime"),
        ("diffusion_gn_ddim", "torch"),
        ("diffusion_bn_sample", "onnxruntime"),
    ],
)
def test_card_reproduces_lerobot(cards: dict[str, Path], case: str, backend: str) -> None:
    """Camera bytes and raw state history in, raw actions out, LeRobot's window <= 1e-4."""
    card = PolicyCard.load(cards[case])
    assert card.family == "lerobot_diffusion" and card.layout == "split"
    start, stop = card.io.extra["action_window"]
    rt = load_runtime(cards[case], backend=backend)
    inputs, outputs = golden(case)
    cams = {k.split("observation.images.", 1)[1]: v.numpy() for k, v in inputs.items() if "images" in k}
    for i in range(outputs["action"].shape[0]):
        obs = Observation(
            images={c: v[i] for c, v in cams.items()},
            state=inputs["observation.state"][i].numpy(),
            stamp_ns=i,
        )
        got = rt.infer(obs, noise=inputs["noise"][i].numpy())
        # the runtime publishes LeRobot's executed window only: row `start` is action 0
        assert got.shape == (stop - start, card.io.action_dim) == card.io.chunk_shape
        assert np.abs(got - outputs["action"][i].numpy()).max() <= BOUND


def test_card_records_the_sampler(cards: dict[str, Path]) -> None:
    card = PolicyCard.load(cards["diffusion_gn_ddim"])
    assert card.io.obs_history == 2 and card.io.horizon == 16
    assert card.io.extra["action_window"] == [1, 9]
    assert card.io.extra["noise_scheduler_type"] == "DDIM" and card.export["split"]["num_steps"] == 10
    assert card.io.camera_names == ("top", "wrist") and card.io.dt == pytest.approx(0.1)
    assert card.parity["max_abs_err"] <= BOUND


def test_a_ddpm_checkpoint_deploys_with_ddim_in_k_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """--sampler DDIM --sampler-steps K: LeRobot's DDPM draws fresh noise at every step (not
    reproducible); the deployed card samples with DDIM in K steps, parity-gated like any card."""
    ddpm = folder("diffusion_ddpm")
    out = tmp_path / "card"
    rc = main(
        ["export", str(ddpm), "--out", str(out), "--sampler", "DDIM", "--sampler-steps", "5", "--quiet"]
    )
    assert rc == 0, capsys.readouterr().err
    card = PolicyCard.load(out)
    assert card.io.extra["noise_scheduler_type"] == "DDIM" and card.export["split"]["num_steps"] == 5
    act = folder("act_1cam_meanstd")
    rc = main(["export", str(act), "--out", str(tmp_path / "act"), "--sampler", "DDIM", "--quiet"])
    assert rc == 2 and "apply to Diffusion Policy checkpoints; this one is 'act'" in capsys.readouterr().err
    assert not (tmp_path / "act").exists()


@pytest.mark.parametrize("sampler", [None, "DDPM"])
def test_a_ddpm_sampler_is_refused_naming_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture, sampler: str | None
) -> None:
    """DDPM (LeRobot's default sampler, e.g. diffusion_pusht) draws fresh noise in every step:
    no graph reproduces it, so export refuses it (exit 2, nothing written) and names --sampler
    DDIM, instead of failing its own parity gate (exit 1, 'try --exporter dynamo')."""
    out = tmp_path / "card"
    args = ["export", str(folder("diffusion_ddpm")), "--out", str(out), "--quiet"]
    rc = main(args + (["--sampler", sampler] if sampler else []))
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    source = "--sampler DDPM" if sampler else "config.json has noise_scheduler_type 'DDPM'"
    assert source in err and "DDPM draws fresh noise in each of its 20 steps" in err
    assert "--sampler DDIM --sampler-steps 10" in err
