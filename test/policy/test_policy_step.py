"""PolicyStep on a real ONNX card and real onnxruntime, fed rosbags messages and integer-ns time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from policy_msgs import compressed, image, joints, stamp_ns

from vla_ros.policy import (
    ChunkResult,
    NoChunk,
    PolicyStep,
    make_assembler,
    resolve_joint_names,
    staleness_limits,
)
from vla_ros.runtime import Observation, load_runtime

CAMERAS = ("wrist", "top")
T0 = 1_700_000_000 * 1_000_000_000  # an arbitrary bag time
MS = 1_000_000
H, W = 48, 64


class Logs(list):
    """Collects ``log(level, message)`` calls."""

    def __call__(self, level: str, message: str) -> None:
        self.append((level, message))

    def having(self, *needles: str) -> list[tuple[str, str]]:
        return [(lv, m) for lv, m in self if all(n in m for n in needles)]


@pytest.fixture(scope="module")
def runtime(card: Path):
    return load_runtime(card, backend="onnxruntime")


@pytest.fixture(scope="module")
def reference(card: Path):
    """A second runtime on the same card: the oracle for the chunk."""
    return load_runtime(card, backend="onnxruntime")


def make_step(runtime, state_joints=(), action_joints=(), image_s=0.2, state_s=0.1, **kw):
    card = runtime.card
    logs = Logs()
    names = resolve_joint_names("state_joints", state_joints, card.state_joints)
    assembler = make_assembler(card.io, names, staleness_limits(image_s, state_s, 0.05))
    actions = resolve_joint_names("action_joints", action_joints, card.action_joints)
    return PolicyStep(runtime, assembler, action_joints=actions, log=logs, **kw), logs


def frames(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c: rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8) for c in CAMERAS}


def feed(step: PolicyStep, t: int, rgb: dict, state=(1.0, 2.0, 3.0), cams=CAMERAS) -> None:
    """Push one image per camera and a joint_states (joints out of order, plus an extra one)."""
    for c in cams:
        assert step.push_image(c, t, image(t, rgb[c]))
    assert step.push_joint_state(t, ("x", "j3", "j2", "j1"), (9.0, *state[::-1]))


def test_chunk_is_the_runtime_output_with_oldest_stamp(runtime, reference) -> None:
    step, _ = make_step(runtime, action_joints=("a1", "a2"))
    rgb = frames(0)
    t_top, t_wrist, t_state = T0 - 30 * MS, T0, T0 - 10 * MS
    # bgr8 with row padding: conversion must undo both
    bgr = np.ascontiguousarray(rgb["wrist"][..., ::-1])
    assert step.push_image("wrist", t_wrist, image(t_wrist, bgr, encoding="bgr8", pad=5))
    assert step.push_image("top", t_top, image(t_top, rgb["top"]))
    assert step.push_joint_state(t_state, ("x", "j3", "j2", "j1"), (9.0, 3.0, 2.0, 1.0))

    result = step.run(T0 + 5 * MS)
    assert isinstance(result, ChunkResult)
    assert result.stamp_ns == t_top and result.seq == 0
    assert (result.horizon, result.action_dim) == (4, 2) and result.actions.dtype == np.float32
    assert result.joint_names == ("a1", "a2")
    assert result.dt_ns == 50 * MS and result.action_mode == "absolute"
    assert result.policy_id == reference.card.policy_id
    assert result.infer_ns > 0
    want = reference.infer(Observation(images=rgb, state=np.array([1.0, 2.0, 3.0])))
    np.testing.assert_allclose(result.actions, want, rtol=1e-5, atol=1e-6)

    # nothing new: no second chunk from the same messages
    assert step.run(T0 + 6 * MS) == NoChunk("not_new")
    assert step.stats.count("chunks_published") == 0  # publishing is the caller's business
    step.record_published(result, latency_ns=7 * MS)
    assert step.stats.count("chunks_published") == 1
    assert step.stats.timings[-1][:2] == (7 * MS, result.infer_ns)

    feed(step, T0 + 20 * MS, frames(1))
    second = step.run(T0 + 21 * MS)
    assert isinstance(second, ChunkResult) and second.seq == 1 and second.stamp_ns == T0 + 20 * MS


def test_replay_is_deterministic(card: Path) -> None:
    """Two steps on two runtimes, fed the same stamped messages and times, give identical chunks."""
    outs = []
    for _ in range(2):
        step, _ = make_step(load_runtime(card, backend="onnxruntime"))
        chunks = []
        for i in range(3):
            t = T0 + i * 50 * MS
            feed(step, t, frames(10 + i), state=(1.0 + i, 2.0, 3.0))
            chunks.append(step.run(t + 2 * MS))
        outs.append(chunks)
    for a, b in zip(*outs):
        assert isinstance(a, ChunkResult) and isinstance(b, ChunkResult)
        assert (a.stamp_ns, a.seq) == (b.stamp_ns, b.seq)
        np.testing.assert_array_equal(a.actions, b.actions)


def test_waiting_for_inputs_is_info_then_recovers(runtime) -> None:
    step, logs = make_step(runtime)
    for i in range(3):
        result = step.run(T0 + i * MS)
        assert isinstance(result, NoChunk) and result.reason == "rejected"
    assert set(result.causes) == {
        "input:camera:wrist:missing",
        "input:camera:top:missing",
        "input:joint_states:missing",
    }
    assert [lv for lv, _ in logs.having("waiting")] == ["info"] * 3  # once per cause, not per step
    assert step.stats.count("stale_observations") == 0
    feed(step, T0 + 10 * MS, frames(2))
    assert isinstance(step.run(T0 + 11 * MS), ChunkResult)
    assert len(logs.having("recovered: input:")) == 3
    assert not step.faults.active()


def test_stale_camera_blocks_and_is_logged_once(runtime) -> None:
    step, logs = make_step(runtime, image_s=0.2)
    rgb = frames(3)
    feed(step, T0, rgb)
    assert isinstance(step.run(T0 + MS), ChunkResult)
    # joint_states and the top camera keep coming; the wrist camera stopped at T0
    for i in range(1, 6):
        t = T0 + i * 100 * MS
        feed(step, t, rgb, cams=("top",))
        result = step.run(t + MS)
        if i >= 2:  # wrist age 201 ms > 200 ms
            assert isinstance(result, NoChunk) and result.causes == ("input:camera:wrist:stale",)
            assert "old" in result.message
    assert step.stats.count("stale_observations") == 4
    assert [lv for lv, _ in logs.having("camera 'wrist'", "old")] == ["warning"]
    assert "input:camera:wrist:stale" in step.faults.active()
    t = T0 + 600 * MS
    feed(step, t, rgb)
    assert isinstance(step.run(t + MS), ChunkResult)
    assert logs.having("recovered: input:camera:wrist:stale") == [
        ("info", "recovered: input:camera:wrist:stale")
    ]


def test_stamp_ahead_of_clock_counts_as_stale(runtime) -> None:
    step, logs = make_step(runtime)
    feed(step, T0 + 100 * MS, frames(4))  # 100 ms ahead, tolerance 50 ms
    result = step.run(T0)
    assert isinstance(result, NoChunk)
    assert "input:camera:wrist:future" in result.causes and "input:joint_states:future" in result.causes
    assert step.stats.count("stale_observations") == 1
    assert logs.having("ahead of the node clock")


def test_missing_joint_is_a_warning(runtime) -> None:
    step, logs = make_step(runtime)
    rgb = frames(5)
    for c in CAMERAS:
        step.push_image(c, T0, image(T0, rgb[c]))
    step.push_joint_state(T0, ("j1", "j2"), (1.0, 2.0))
    for _ in range(3):
        result = step.run(T0 + MS)
    assert result.causes == ("input:joint_states:missing_joint",)
    assert [lv for lv, _ in logs.having("lacks joint", "j3")] == ["warning"]


def test_renamed_state_joints(runtime, reference) -> None:
    step, _ = make_step(runtime, state_joints=("arm_1", "arm_2", "arm_3"))
    rgb = frames(6)
    for c in CAMERAS:
        step.push_image(c, T0, image(T0, rgb[c]))
    step.push_joint_state(T0, ("arm_3", "arm_1", "arm_2"), (3.0, 1.0, 2.0))
    result = step.run(T0 + MS)
    want = reference.infer(Observation(images=rgb, state=np.array([1.0, 2.0, 3.0])))
    np.testing.assert_allclose(result.actions, want, rtol=1e-5, atol=1e-6)


def test_malformed_image_rejected_at_push(runtime) -> None:
    step, logs = make_step(runtime)
    rgb = frames(7)
    for _ in range(3):
        bad = image(T0, rgb["wrist"])
        bad.encoding = "yuv999"
        assert step.push_image("wrist", T0, bad) is False
    short = image(T0, rgb["wrist"])
    short.step = W * 3 - 1
    assert step.push_image("wrist", T0, short) is False
    assert step.stats.count("rejected_messages") == 4
    assert set(step.faults.active()) == {"image:wrist:encoding", "image:wrist:step"}
    assert len(logs.having("unknown encoding 'yuv999'")) == 1
    assert len(logs.having("shorter than one row")) == 1
    assert isinstance(step.run(T0 + MS), NoChunk)  # the rejected images were never stored


def test_bad_compressed_image_fails_conversion_once_then_recovers(runtime, reference) -> None:
    step, logs = make_step(runtime)
    rgb = frames(8)
    # a PNG cut short: its header passes the size check at push time, its decoding fails
    truncated = cv2.imencode(".png", np.ascontiguousarray(rgb["top"][..., ::-1]))[1].tobytes()[:60]
    assert step.push_image("top", T0, compressed(T0, "rgb8; png compressed bgr8", truncated))
    step.push_image("wrist", T0, image(T0, rgb["wrist"]))
    step.push_joint_state(T0, ("j1", "j2", "j3"), (1.0, 2.0, 3.0))
    result = step.run(T0 + MS)
    assert isinstance(result, NoChunk) and result.reason == "image"
    assert result.causes == ("image:top:convert",)
    assert step.stats.count("rejected_messages") == 1
    assert step.run(T0 + 2 * MS) == NoChunk("not_new")  # the bad message is not retried
    assert len(logs.having("rejected image", "camera 'top'")) == 1

    t = T0 + 10 * MS
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb["top"][..., ::-1]))
    assert ok
    step.push_image("top", t, compressed(t, "rgb8; png compressed bgr8", png.tobytes()))
    step.push_image("wrist", t, image(t, rgb["wrist"]))  # the next input set (infer_on=all_new)
    step.push_joint_state(t, ("j1", "j2", "j3"), (1.0, 2.0, 3.0))
    result = step.run(t + MS)
    assert isinstance(result, ChunkResult)
    want = reference.infer(Observation(images=rgb, state=np.array([1.0, 2.0, 3.0])))
    np.testing.assert_allclose(result.actions, want, rtol=1e-5, atol=1e-6)
    assert logs.having("recovered: image:top:convert")


def test_nan_output_gives_no_chunk_then_recovers(runtime) -> None:
    step, logs = make_step(runtime)
    rgb = frames(9)
    for i in range(3):
        t = T0 + i * 10 * MS
        feed(step, t, rgb, state=(-1.0, 2.0, 3.0))  # the card's policy returns NaN for state[0] < 0
        result = step.run(t + MS)
        assert isinstance(result, NoChunk) and result.reason == "non_finite"
        assert result.causes == ("output:non_finite",)
    assert step.stats.count("non_finite_outputs") == 3
    assert [lv for lv, _ in logs.having("NaN")] == ["error"]
    t = T0 + 50 * MS
    feed(step, t, rgb)
    result = step.run(t + MS)
    assert isinstance(result, ChunkResult) and result.seq == 0 and np.isfinite(result.actions).all()
    assert logs.having("recovered: output:non_finite")


def test_runtime_error_is_an_inference_error(card: Path, tmp_path: Path) -> None:
    """A real onnxruntime runtime fed an observation its card does not accept (4 state joints)."""
    from support.policy_card import make_card

    wide = load_runtime(make_card(tmp_path / "wide", state_joints=("j1", "j2", "j3", "j4")))
    narrow = load_runtime(card)
    step = PolicyStep(
        narrow,
        make_assembler(wide.card.io, ("j1", "j2", "j3", "j4"), staleness_limits(0.2, 0.1, 0.05)),
        log=(logs := Logs()),
    )
    rgb = frames(11)
    for c in CAMERAS:
        step.push_image(c, T0, image(T0, rgb[c]))
    step.push_joint_state(T0, ("j1", "j2", "j3", "j4"), (1.0, 2.0, 3.0, 4.0))
    result = step.run(T0 + MS)
    assert isinstance(result, NoChunk) and result.reason == "inference"
    assert result.causes == ("inference:error",) and "state has shape" in result.message
    assert step.stats.count("inference_errors") == 1
    assert logs[-1][0] == "error" and "inference failed" in logs[-1][1]


class TruncatingRuntime:
    """A (user) runtime that disagrees with its card: real ONNX Runtime, first 2 actions only."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.card = inner.card

    def infer(self, obs: Observation) -> np.ndarray:
        return self.inner.infer(obs)[:2]


def test_wrong_output_shape_gives_no_chunk(runtime) -> None:
    step, logs = make_step(TruncatingRuntime(runtime))
    feed(step, T0, frames(12))
    result = step.run(T0 + MS)
    assert isinstance(result, NoChunk) and result.reason == "shape"
    assert "(2, 2)" in result.message and "(4, 2)" in result.message
    assert step.stats.count("inference_errors") == 1 and "output:shape" in step.faults.active()
    assert [lv for lv, _ in logs.having("returned actions of shape")] == ["error"]


def test_history_card_stacks_frames(history_card: Path) -> None:
    runtime = load_runtime(history_card)
    step, _ = make_step(runtime)
    old, new = frames(13), frames(14)
    feed(step, T0, old, state=(1.0, 1.0, 1.0))
    assert isinstance(step.run(T0 + MS), ChunkResult)
    t = T0 + 50 * MS  # one card dt later
    feed(step, t, new, state=(2.0, 2.0, 2.0))
    result = step.run(t + MS)
    images = {c: np.stack([old[c], new[c]]) for c in CAMERAS}
    state = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    want = load_runtime(history_card).infer(Observation(images=images, state=state))
    np.testing.assert_allclose(result.actions, want, rtol=1e-5, atol=1e-6)


def test_depth_range_applies_to_the_next_step(runtime) -> None:
    step, _ = make_step(runtime)
    depth = np.full((H, W), 1.0, np.float32)  # 1 m everywhere
    rgb = frames(15)
    results = []
    for i, depth_max_m in enumerate((2.0, 4.0)):
        step.depth_max_m = depth_max_m
        t = T0 + i * 10 * MS
        step.push_image("wrist", t, image(t, depth, encoding="32FC1"))
        step.push_image("top", t, image(t, rgb["top"]))
        step.push_joint_state(t, ("j1", "j2", "j3"), (1.0, 2.0, 3.0))
        results.append(step.run(t + MS))
    assert all(isinstance(r, ChunkResult) for r in results)
    assert not np.allclose(results[0].actions, results[1].actions)


def test_messages_keep_their_stamps(runtime) -> None:
    """The helper messages carry integer-ns stamps exactly (no float rounding of bag time)."""
    t = T0 + 123_456_789
    assert stamp_ns(image(t, frames(0)["top"])) == t and stamp_ns(joints(t, ["a"], [0.0])) == t


def test_policy_package_imports_without_ros() -> None:
    code = (
        "import sys, vla_ros.policy; "
        "bad = [m for m in ('rclpy', 'torch', 'onnxruntime') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("infer_on", ["all_new", "any_new"])
def test_infer_on_all_new_waits_for_a_complete_input_set(runtime, infer_on) -> None:
    step, _ = make_step(runtime, infer_on=infer_on)
    rgb = frames(12)
    feed(step, T0, rgb)
    assert isinstance(step.run(T0 + MS), ChunkResult)
    t = T0 + 10 * MS
    step.push_image("top", t, image(t, rgb["top"]))  # one camera first, as separate topics arrive
    partial = step.run(t + MS)
    if infer_on == "any_new":
        assert isinstance(partial, ChunkResult) and partial.stamp_ns == T0  # oldest part is old
    else:
        assert partial == NoChunk("not_new")
    step.push_image("wrist", t, image(t, rgb["wrist"]))
    step.push_joint_state(t, ("x", "j3", "j2", "j1"), (9.0, 3.0, 2.0, 1.0))  # as feed() sends it
    full = step.run(t + 2 * MS)
    assert isinstance(full, ChunkResult) and full.stamp_ns == t


def test_infer_on_is_checked(runtime) -> None:
    with pytest.raises(ValueError, match="infer_on='sometimes' is not one of"):
        make_step(runtime, infer_on="sometimes")


@pytest.mark.parametrize(("converts", "published"), [(False, "delta"), (True, "absolute")])
def test_chunk_action_mode_says_whether_the_runtime_already_added_the_state(tmp_path, converts, published):
    """A delta card whose runtime adds the state publishes absolute chunks (no double add)."""
    import shutil

    from vla_ros.runtime import load_runtime

    bundled = Path(__file__).resolve().parents[2] / "vla_ros" / "sim" / "bundled" / "sim_reach_act"
    card_dir = shutil.copytree(bundled, tmp_path / "card")
    text = (card_dir / "card.yaml").read_text()
    flag = str(converts).lower()
    old = "postprocess: {delta_to_absolute: false}"
    text = text.replace(old, f"postprocess: {{delta_to_absolute: {flag}}}")
    # an edited card must drop its policy_id line to be accepted (the loader's rule)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("policy_id:"))
    (card_dir / "card.yaml").write_text(text)
    rt = load_runtime(card_dir, backend="onnxruntime")
    assert rt.card.io.action_mode == "delta"
    assert rt.card.postprocess["delta_to_absolute"] is converts
    step, _ = make_step(rt)
    assert step.action_mode == published
