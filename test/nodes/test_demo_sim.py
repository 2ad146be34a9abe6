"""What the demo needs from sim_node and the policy: a live target in the cameras, the task on
topics (sim/target, sim/fingertip), and injected inference latency that changes nothing else."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data

from vla_ros.contract.observation import Observation
from vla_ros.nodes.demo.latency import SlowedRuntime
from vla_ros.sim.cards import BUNDLED_CARD
from vla_ros.sim.render import DEFAULT_TARGET, render
from vla_ros.sim.robot import SimArmConfig
from vla_ros.sim.task import fingertip


@pytest.mark.ros
def test_the_target_parameter_moves_the_marker_and_the_task_topics(ros) -> None:
    from geometry_msgs.msg import PointStamped
    from sensor_msgs.msg import Image

    from vla_ros.nodes.sim_node import SimNode

    params = [Parameter("cameras", value=["front"]), Parameter("image_width", value=48)]
    params += [Parameter("image_height", value=40), Parameter("camera_rate_hz", value=20.0)]
    node = ros.add_node(SimNode(context=ros.context, parameter_overrides=params))
    rest = np.asarray(SimArmConfig().initial)  # no command: the arm stays at its initial positions
    images = ros.subscribe("/camera/front/image_raw", Image, qos_profile_sensor_data)
    targets = ros.subscribe("/sim/target", PointStamped)
    tips = ros.subscribe("/sim/fingertip", PointStamped)

    def pixels(msg: Image) -> np.ndarray:
        return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)

    (first,) = images.wait_for(1)
    np.testing.assert_array_equal(pixels(first), render(rest, 40, 48, "front", target=DEFAULT_TARGET))
    (point,) = targets.wait_for(1)
    assert (point.point.x, point.point.y, point.header.frame_id) == (*DEFAULT_TARGET, "sim_plane")
    (tip,) = tips.wait_for(1)
    np.testing.assert_allclose([tip.point.x, tip.point.y], fingertip(rest))

    assert node.set_parameters([Parameter("target", value=[-0.3, 0.6])])[0].successful
    expected = render(rest, 40, 48, "front", target=(-0.3, 0.6))
    assert not np.array_equal(expected, pixels(first))
    # (a frame rendered just before the change may still arrive: wait for the new one)
    assert ros.wait_until(lambda: any(np.array_equal(pixels(m), expected) for m in list(images.messages)))
    assert ros.wait_until(lambda: any((p.point.x, p.point.y) == (-0.3, 0.6) for p in list(targets.messages)))
    for bad, why in (([0.1], "two finite numbers"), ([0.1, float("nan")], "two finite numbers")):
        result = node.set_parameters([Parameter("target", value=bad)])[0]
        assert not result.successful and why in result.reason
    assert node.target == (-0.3, 0.6)  # a refused value changes nothing


def test_injected_latency_changes_only_the_time() -> None:
    from vla_ros.runtime import load_runtime

    runtime = load_runtime(BUNDLED_CARD, backend="onnxruntime", threads=1)
    slowed = SlowedRuntime(runtime, 20.0)
    assert slowed.card is runtime.card and slowed.latency_s == 0.02
    rng = np.random.default_rng(0)
    images = {c: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for c in ("front", "wrist")}
    obs = Observation(images=images, state=np.asarray(SimArmConfig().initial), stamp_ns=1)
    np.testing.assert_array_equal(slowed.infer(obs), runtime.infer(obs))
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="injected latency must be a finite number of ms >= 0"):
            SlowedRuntime(runtime, bad)
