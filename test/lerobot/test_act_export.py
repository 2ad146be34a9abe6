"""``vla-ros export <LeRobot folder>``: the card on ONNX Runtime (and torch) against LeRobot's goldens."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from lerobot_fixtures import ACT_CASES, BOUND, folder, golden

from vla_ros.cli import main
from vla_ros.export import PolicyCard
from vla_ros.runtime import Observation, load_runtime


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for case in ACT_CASES:
        dst = tmp_path_factory.mktemp(case) / "card"
        args = ["export", str(folder(case)), "--out", str(dst), "--quiet"]
        if case == "act_2cam_minmax_prenorm":
            args += ["--fps", "50", "--name", "two_cams"]
        assert main(args) == 0
        out[case] = dst
    return out


def observations(case: str) -> tuple[list[Observation], np.ndarray]:
    inputs, outputs = golden(case)
    cams = {k.split("observation.images.", 1)[1]: v.numpy() for k, v in inputs.items() if "images" in k}
    state = inputs["observation.state"].numpy()
    obs = [
        Observation(images={c: v[i] for c, v in cams.items()}, state=state[i], stamp_ns=i)
        for i in range(state.shape[0])
    ]
    return obs, outputs["action"].numpy()


@pytest.mark.parametrize("case", ACT_CASES)
@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_card_reproduces_lerobot(cards: dict[str, Path], case: str, backend: str) -> None:
    """Raw observation in (uint8 camera images, raw joint state), raw actions out, <= 1e-4."""
    rt = load_runtime(cards[case], backend=backend)
    obs, want = observations(case)
    got = np.stack([rt.infer(o) for o in obs])
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= BOUND


def test_card_maps_the_features(cards: dict[str, Path]) -> None:
    card = PolicyCard.load(cards["act_2cam_minmax_prenorm"])
    assert card.name == "two_cams"
    assert card.family == "lerobot_act"
    assert card.io.camera_names == ("cam_high", "cam_wrist")
    assert card.io.image_size == (64, 48)
    assert card.io.horizon == 10 and card.io.dt == pytest.approx(0.02)
    assert card.state_joints == [f"joint_{i}" for i in range(7)]
    assert card.action_joints == [f"joint_{i}" for i in range(5)]
    assert card.io.extra["lerobot"]["n_action_steps"] == 5
    assert card.io.extra["lerobot"]["normalization"] == {
        "observation.images.cam_high": "MEAN_STD",
        "observation.images.cam_wrist": "MEAN_STD",
        "observation.state": "MIN_MAX",
        "action": "MIN_MAX",
    }
    assert card.provenance["checkpoint"] == str(folder("act_2cam_minmax_prenorm"))
    assert card.parity["max_abs_err"] <= 1e-4
    one = PolicyCard.load(cards["act_1cam_meanstd"])
    assert one.name == "act_1cam_meanstd" and one.io.dt == pytest.approx(1 / 30)
    assert PolicyCard.load(cards["act_legacy_v03"]).provenance["source"].endswith("(legacy layout)")


def test_joint_names_from_the_config(tmp_path: Path) -> None:
    d = tmp_path / "pm"
    shutil.copytree(folder("act_quantiles"), d)
    cfg = json.loads((d / "config.json").read_text())
    names = ["shoulder", "elbow", "wrist", "gripper"]
    cfg["input_features"]["observation.state"]["names"] = names
    cfg["output_features"]["action"]["names"] = names
    (d / "config.json").write_text(json.dumps(cfg))
    assert main(["export", str(d), "--out", str(tmp_path / "card"), "--quiet"]) == 0
    card = PolicyCard.load(tmp_path / "card")
    assert card.state_joints == names and card.action_joints == names


@pytest.mark.parametrize(
    ("make", "match"),
    [
        ("not_lerobot", "not a LeRobot policy config"),
        ("unsupported", "'vqbet' is not supported; vla_ros builds"),
        ("mismatch", "does not fit"),
        ("unmappable", "environment state"),
        ("bad_fps", "--fps -5.0 must be > 0"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, capsys, make: str, match: str) -> None:
    d = tmp_path / "pm"
    shutil.copytree(folder("act_quantiles"), d)
    cfg = json.loads((d / "config.json").read_text())
    extra: list[str] = []
    if make == "not_lerobot":
        cfg = {"architectures": ["BertModel"]}
    elif make == "unsupported":
        cfg["type"] = "vqbet"
    elif make == "mismatch":
        cfg["dim_feedforward"] = 128
    elif make == "unmappable":
        cfg["input_features"]["observation.environment_state"] = {"type": "ENV", "shape": [3]}
    else:
        extra = ["--fps", "-5"]
    (d / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "card"
    assert main(["export", str(d), "--out", str(out), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert "vla-ros export: error:" in err and match in err
    assert not out.exists()
