"""policy_node against real rclpy topics, a real ONNX policy card and real ActionChunk messages."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.ros

from node_rigs import PolicyRig, latest_status, status_values  # noqa: E402
from support.policy_card import (  # noqa: E402
    ACTION_JOINTS,
    CAMERAS,
    image_msg,
    joint_msg,
    make_card,
)

H, W = 48, 64


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_card(tmp_path_factory.mktemp("card") / "nan_gate")


@pytest.fixture(scope="module")
def reference(card: Path):
    """A second runtime on the same card: the oracle for what the node must publish."""
    from vla_ros.runtime import load_runtime

    return load_runtime(card, backend="onnxruntime")


def _frames(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {c: rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8) for c in CAMERAS}


@pytest.mark.parametrize("zero_copy", [True, False], ids=["serialized", "message_objects"])
def test_chunk_matches_runtime_and_carries_oldest_stamp(ros, card: Path, reference, zero_copy) -> None:
    from vla_ros.runtime import Observation

    rig = PolicyRig(ros, card, zero_copy_images=zero_copy)
    rgb = _frames(np.random.default_rng(0))
    t = rig.now_ns()
    t_top, t_state = t - 30_000_000, t - 10_000_000
    images = {
        # bgr8 with row padding: the node must undo both
        "wrist": image_msg(t, np.ascontiguousarray(rgb["wrist"][..., ::-1]), encoding="bgr8", pad=5),
        "top": image_msg(t_top, rgb["top"]),
    }
    rig.publish(t_state, images, state=(1.0, 2.0, 3.0))
    (chunk,) = rig.chunks.wait_for(1, timeout=10)

    assert chunk.header.stamp.sec * 1_000_000_000 + chunk.header.stamp.nanosec == t_top
    assert list(chunk.joint_names) == list(ACTION_JOINTS)
    assert (chunk.horizon, chunk.action_dim) == (4, 2)
    assert chunk.action_mode == "absolute"
    assert chunk.policy_id == reference.card.policy_id
    assert chunk.dt.sec == 0 and chunk.dt.nanosec == 50_000_000
    assert chunk.seq == 0
    latency = chunk.inference_latency.sec * 1e9 + chunk.inference_latency.nanosec
    assert latency > 0
    want = reference.infer(Observation(images=rgb, state=np.array([1.0, 2.0, 3.0])))
    got = np.asarray(chunk.actions, dtype=np.float32).reshape(4, 2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    # a second observation gives the next chunk(s); the same observation is not re-published
    rig.publish(
        t_state + 20_000_000,
        {"wrist": image_msg(t + 20_000_000, rgb["wrist"]), "top": image_msg(t_top + 20_000_000, rgb["top"])},
    )
    rig.chunk_stamped(t_top + 20_000_000)
    time.sleep(0.3)
    chunks = list(rig.chunks.messages)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert 2 <= len(chunks) <= 4  # one per new input message at most
    time.sleep(0.3)
    assert len(rig.chunks.messages) == len(chunks)  # inputs stopped: nothing re-published
    st = rig.status_where(lambda s: status_values(s).get("chunks_published") == str(len(chunks)))
    assert st.hardware_id == reference.card.policy_id
    assert float(status_values(st)["latency_p50_ms"]) > 0


def test_stale_camera_publishes_nothing_and_says_why(ros, card: Path) -> None:
    rig = PolicyRig(ros, card, image_staleness_s=0.3)
    rgb = _frames(np.random.default_rng(1))

    def publish(cams) -> None:
        rig.publish_frames({c: rgb[c] for c in cams})
        time.sleep(0.03)

    def until(predicate, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not reached"
            publish(cams)

    cams = CAMERAS  # all inputs flowing: chunks and an OK status
    until(lambda: rig.chunks.messages and (st := rig.last_status()) and st.level == b"\x00")
    assert rig.last_status().message.startswith("ok")

    cams = ("top",)  # the wrist camera stops; top camera and joint_states keep going
    logs_before = len(rig.rosout.messages)
    until(lambda: "input:camera:wrist:stale" in rig.node.faults.active())
    time.sleep(0.1)  # let a chunk published just before the fault arrive
    n = len(rig.chunks.messages)
    for _ in range(10):
        publish(cams)
    assert len(rig.chunks.messages) == n, "a chunk was published from a stale camera"
    st = rig.status_where(lambda s: "camera 'wrist'" in s.message)
    assert st.level == b"\x02" and "old" in st.message
    assert int(status_values(st)["stale_observations"]) > 0
    assert len(rig.logs("camera 'wrist'", "old", since=logs_before)) == 1

    cams = CAMERAS  # the camera comes back: chunks again, one "recovered" line
    until(lambda: len(rig.chunks.messages) > n)
    assert rig.ros.wait_until(
        lambda: len(rig.logs("recovered", "camera:wrist:stale", since=logs_before)) == 1
    )


def test_missing_joint_publishes_nothing(ros, card: Path) -> None:
    rig = PolicyRig(ros, card)
    rgb = _frames(np.random.default_rng(2))
    for _ in range(5):
        rig.publish_frames(rgb, names=("j1", "j2"), state=(1.0, 2.0))
        time.sleep(0.05)
    st = rig.status_where(lambda s: "j3" in s.message)
    assert st.level == b"\x02" and "lacks joint" in st.message
    assert rig.chunks.messages == []
    assert len(rig.logs("lacks joint")) == 1


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda m: setattr(m, "step", m.width * 3 - 1), "shorter than one row"),
        (lambda m: setattr(m, "encoding", "yuv999"), "unknown encoding 'yuv999'"),
        (lambda m: setattr(m, "data", m.data[:-7]), "len(data)="),
    ],
    ids=["short_step", "unknown_encoding", "wrong_length"],
)
def test_malformed_image_rejected_once_node_alive(ros, card: Path, mutate, needle) -> None:
    rig = PolicyRig(ros, card)
    rgb = _frames(np.random.default_rng(3))
    for _ in range(4):
        t = rig.now_ns()
        bad = image_msg(t, rgb["wrist"])
        mutate(bad)
        rig.publish(t, {"wrist": bad, "top": image_msg(t, rgb["top"])})
        time.sleep(0.05)
    assert rig.ros.wait_until(lambda: len(rig.logs(needle)) >= 1)
    time.sleep(0.2)
    assert len(rig.logs(needle)) == 1
    assert rig.chunks.messages == []
    st = rig.status_where(lambda s: int(status_values(s)["rejected_messages"]) >= 4)
    assert "camera 'wrist'" in st.message
    # still alive: a good image gives a chunk
    rig.first_chunk(rgb)


def test_unreadable_serialized_image_rejected_once_node_alive(ros, card: Path) -> None:
    """Bytes that are no Image (a truncated frame, garbage) on a camera topic: one log line."""
    from rclpy.serialization import serialize_message

    rig = PolicyRig(ros, card)
    rgb = _frames(np.random.default_rng(5))
    for i in range(4):
        t = rig.now_ns()
        whole = serialize_message(image_msg(t, rgb["wrist"]))
        # truncated frames, and bytes no deserializer reads (an unknown CDR representation)
        junk = b"\xff\xee" + bytes(range(50 + i))
        rig.cams["wrist"].publish((whole[: 40 + i], whole[:-100], junk)[i % 3])
        rig.publish(t, {"top": image_msg(t, rgb["top"])})
        time.sleep(0.05)
    needle = "cannot read the serialized message"
    assert rig.ros.wait_until(lambda: len(rig.logs(needle)) >= 1)
    time.sleep(0.2)
    assert len(rig.logs(needle)) == 1
    assert "camera 'wrist'" in rig.logs(needle)[0]
    assert rig.chunks.messages == []
    rig.status_where(lambda s: int(status_values(s)["rejected_messages"]) >= 4)
    rig.first_chunk(rgb)


def test_nan_output_publishes_nothing(ros, card: Path) -> None:
    rig = PolicyRig(ros, card)
    rgb = _frames(np.random.default_rng(4))
    for _ in range(3):
        rig.publish_frames(rgb, state=(-1.0, 2.0, 3.0))
        time.sleep(0.05)
    st = rig.status_where(lambda s: int(status_values(s)["non_finite_outputs"]) >= 1)
    assert st.level == b"\x02" and "NaN" in st.message
    assert rig.chunks.messages == []
    assert len(rig.logs("NaN")) == 1
    chunk = rig.first_chunk(rgb, state=(1.0, 2.0, 3.0))
    assert np.isfinite(np.asarray(chunk.actions)).all()


def test_warning_then_error_faults_are_both_logged(ros, card: Path) -> None:
    """A warning-level fault and then an error-level one in the same node: both logged, worker alive."""
    rig = PolicyRig(ros, card)
    rgb = _frames(np.random.default_rng(8))
    for names, state in (((("j1", "j2"), (1.0, 2.0))), (None, (-1.0, 2.0, 3.0))):
        for _ in range(3):
            rig.publish_frames(rgb, names=names, state=state)
            time.sleep(0.05)
    assert rig.ros.wait_until(lambda: len(rig.logs("NaN")) == 1)
    assert len(rig.logs("lacks joint")) == 1
    assert not rig.logs("policy worker error")
    rig.first_chunk(rgb)


def test_compressed_camera_and_renamed_joints(ros, card: Path, reference) -> None:
    from sensor_msgs.msg import CompressedImage

    from vla_ros.runtime import Observation

    rig = PolicyRig(
        ros,
        card,
        cameras=["top=cams/top/image_raw/compressed"],
        state_joints=["arm_1", "arm_2", "arm_3"],
        action_joints=["a1", "a2"],
    )
    rgb = _frames(np.random.default_rng(5))
    t = rig.now_ns()
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb["top"][..., ::-1]))
    assert ok
    comp = CompressedImage(format="rgb8; png compressed bgr8", data=png.tobytes())
    comp.header.stamp.sec, comp.header.stamp.nanosec = divmod(t, 1_000_000_000)
    rig.publish(
        t,
        {"wrist": image_msg(t, rgb["wrist"]), "top": comp},
        names=("arm_3", "arm_1", "arm_2"),
        state=(3.0, 1.0, 2.0),
    )
    (chunk,) = rig.chunks.wait_for(1, timeout=10)
    assert list(chunk.joint_names) == ["a1", "a2"]
    want = reference.infer(Observation(images=rgb, state=np.array([1.0, 2.0, 3.0])))
    np.testing.assert_allclose(np.asarray(chunk.actions).reshape(4, 2), want, rtol=1e-5, atol=1e-6)


def test_history_card_gets_stacked_frames(ros, tmp_path: Path) -> None:
    from vla_ros.runtime import Observation, load_runtime

    card = make_card(tmp_path / "hist", obs_history=2)
    rig = PolicyRig(ros, card)
    rng = np.random.default_rng(6)
    old, new = _frames(rng), _frames(rng)
    t = rig.now_ns()
    t0 = t - 50_000_000  # one card dt (0.05 s) earlier
    rig.first_chunk(old, t0, state=(1.0, 1.0, 1.0))
    rig.publish_frames(new, t, state=(2.0, 2.0, 2.0))
    full = rig.chunk_stamped(t)  # every part new
    images = {c: np.stack([old[c], new[c]]) for c in CAMERAS}
    state = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    want = load_runtime(card).infer(Observation(images=images, state=state))
    np.testing.assert_allclose(np.asarray(full.actions).reshape(4, 2), want, rtol=1e-5, atol=1e-6)


def test_parameters_have_descriptors_and_validation(ros, card: Path) -> None:
    from rclpy.parameter import Parameter

    from vla_ros.nodes.policy_node import PARAMS, PolicyNode

    rig = PolicyRig(ros, card, rate_hz=50.0)
    node = rig.node
    names = [s.name for s in PARAMS]
    for desc in node.describe_parameters(names):
        assert desc.description, desc.name
    (rate,) = node.describe_parameters(["rate_hz"])
    assert rate.floating_point_range[0].to_value == 1000.0 and not rate.read_only
    (card_desc,) = node.describe_parameters(["card"])
    assert card_desc.read_only
    assert not node.set_parameters([Parameter("card", value="/elsewhere")])[0].successful
    assert not node.set_parameters([Parameter("rate_hz", value=-1.0)])[0].successful
    assert node.set_parameters([Parameter("instruction", value="pick")])[0].successful
    # rate mode publishes too
    rgb = _frames(np.random.default_rng(7))
    rig.first_chunk(rgb)

    with pytest.raises(ValueError, match="parameter 'card' is empty"):
        PolicyNode(context=ros.context, node_name="no_card")
    with pytest.raises(ValueError, match=r"camera 'side' is not in the policy card"):
        PolicyNode(
            context=ros.context,
            node_name="bad_cam",
            parameter_overrides=[Parameter("card", value=str(card)), Parameter("cameras", value=["side=/x"])],
        )
    with pytest.raises(ValueError, match=r"state_joints has 2 names"):
        PolicyNode(
            context=ros.context,
            node_name="bad_joints",
            parameter_overrides=[
                Parameter("card", value=str(card)),
                Parameter("state_joints", value=["a", "b"]),
            ],
        )
    with pytest.raises(ValueError, match=r"image_qos='fast' is not one of"):
        PolicyNode(
            context=ros.context,
            node_name="bad_qos",
            parameter_overrides=[Parameter("card", value=str(card)), Parameter("image_qos", value="fast")],
        )


def test_missing_or_corrupt_card_keeps_the_node_alive_and_loads_when_fixed(ros, card: Path, tmp_path: Path):
    """A card that is missing or corrupt at start: ERROR on /diagnostics, no chunk, retry until it loads."""
    import shutil

    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image, JointState

    from vla_ros.msg import ActionChunk
    from vla_ros.nodes.policy_node import PolicyNode

    target = tmp_path / "card"  # not there yet (e.g. still being copied to the robot)
    params = {
        "card": str(target),
        "warmup": 0,
        "load_retry_s": 0.2,
        "diagnostics_period_s": 0.1,
        "image_staleness_s": 5.0,
        "state_staleness_s": 5.0,
    }
    node = ros.add_node(
        PolicyNode(
            context=ros.context,
            node_name="policy_waiting",
            parameter_overrides=[Parameter(k, value=v) for k, v in params.items()],
        )
    )
    diag = ros.subscribe("/diagnostics", DiagnosticArray)
    chunks = ros.subscribe("vla/action_chunk", ActionChunk)

    def last_status():
        return latest_status(diag, lambda name: "policy_waiting" in name)

    assert ros.wait_until(lambda: (st := last_status()) is not None and st.level == b"\x02")
    assert str(target) in last_status().message and node.policy is None

    # a corrupt model file: still alive, still ERROR, now naming the model file
    shutil.copytree(card, target)
    (target / "model.onnx").write_bytes(b"not an onnx model")
    assert ros.wait_until(lambda: "model.onnx" in (last_status().message if last_status() else ""), 5.0)
    assert node.policy is None and ros.context.ok()

    # fixed: it loads, subscribes, and the policy runs
    shutil.copy2(card / "model.onnx", target / "model.onnx")
    assert ros.wait_until(lambda: node.policy is not None, timeout=10.0), last_status().message
    rgb = _frames(np.random.default_rng(3))
    cam_pubs = {c: ros.publisher(topic, Image) for c, topic in node.camera_topics.items()}
    js = ros.publisher("joint_states", JointState)
    for p in (*cam_pubs.values(), js):
        ros.wait_for_subscribers(p)
    t = ros.helper.get_clock().now().nanoseconds
    for c, p in cam_pubs.items():
        p.publish(image_msg(t, rgb[c]))
    js.publish(joint_msg(t, ("j1", "j2", "j3"), (1.0, 2.0, 3.0)))
    chunks.wait_for(1, timeout=10.0)
    assert ros.wait_until(lambda: last_status().level != b"\x02", 5.0)
