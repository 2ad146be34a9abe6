"""Policy set-up from plain values: cameras, joint names, staleness limits, the assembler."""

from __future__ import annotations

import pytest

from vla_ros.contract.io_spec import IOSpec
from vla_ros.policy import (
    make_assembler,
    parse_cameras,
    resolve_joint_names,
    runtime_options,
    staleness_limits,
)

CARD_CAMERAS = ("wrist", "top")


def test_parse_cameras_defaults_and_overrides() -> None:
    assert parse_cameras([], CARD_CAMERAS) == {
        "wrist": "camera/wrist/image_raw",
        "top": "camera/top/image_raw",
    }
    got = parse_cameras([" top = /cams/top/image_raw/compressed "], CARD_CAMERAS)
    assert got == {"wrist": "camera/wrist/image_raw", "top": "/cams/top/image_raw/compressed"}


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        (["wrist"], r"entry 'wrist' is not 'name=topic'"),
        (["=/x"], r"is not 'name=topic'"),
        (["wrist="], r"is not 'name=topic'"),
        (["side=/x"], r"camera 'side' is not in the policy card, whose cameras are \['wrist', 'top'\]"),
        (["top=/a", "top=/b"], r"camera 'top' is listed twice"),
    ],
)
def test_parse_cameras_errors(entries, match) -> None:
    with pytest.raises(ValueError, match=match):
        parse_cameras(entries, CARD_CAMERAS)


def test_resolve_joint_names() -> None:
    assert resolve_joint_names("state_joints", [], ["j1", "j2"]) == ("j1", "j2")
    assert resolve_joint_names("state_joints", ["a", "b"], ["j1", "j2"]) == ("a", "b")
    with pytest.raises(ValueError, match=r"parameter action_joints has 1 names \['a'\] but the card has 2"):
        resolve_joint_names("action_joints", ["a"], ["j1", "j2"])


def test_staleness_limits_are_integer_ns() -> None:
    limits = staleness_limits(0.2, 0.1, 0.05)
    assert (limits.image_ns, limits.state_ns, limits.future_ns) == (200_000_000, 100_000_000, 50_000_000)
    with pytest.raises(ValueError, match="image_ns must be >= 0"):
        staleness_limits(-1.0, 0.1, 0.05)


def _io(obs_history: int) -> IOSpec:
    return IOSpec(
        camera_names=CARD_CAMERAS,
        image_size=(24, 32),
        state_dim=2,
        action_dim=2,
        horizon=4,
        dt=0.05,
        obs_history=obs_history,
    )


def test_make_assembler_history_spacing() -> None:
    limits = staleness_limits(0.2, 0.1, 0.05)
    single = make_assembler(_io(1), ("a", "b"), limits, history_dt_s=0.5)
    assert (single.history, single.history_dt_ns) == (1, 0)
    assert single.camera_names == CARD_CAMERAS and single.state_joints == ("a", "b")
    card_dt = make_assembler(_io(3), ("a", "b"), limits)
    assert (card_dt.history, card_dt.history_dt_ns) == (3, 50_000_000)
    explicit = make_assembler(_io(3), ("a", "b"), limits, history_dt_s=0.1)
    assert explicit.history_dt_ns == 100_000_000 and explicit.limits is limits


def test_runtime_options(card) -> None:
    from vla_ros.runtime import load_runtime

    assert runtime_options("onnxruntime", "auto", 0) == {"providers": "auto"}
    assert runtime_options("onnxruntime", "cpu", 2) == {"providers": "cpu", "threads": 2}
    assert runtime_options("torch", "auto", 0) == {}
    assert runtime_options("torch", "cpu", 1) == {"device": "cpu", "threads": 1}
    assert runtime_options("tensorrt", "auto", 0) == {}
    # the options are what the real backend accepts
    runtime = load_runtime(card, backend="onnxruntime", **runtime_options("onnxruntime", "cpu", 1))
    assert runtime.card.policy_id
