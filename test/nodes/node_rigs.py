"""Shared rigs of the node tests (real rclpy): a policy_node with its inputs and outputs, a /clock
publisher, and readers of /diagnostics and /rosout.

ROS modules are imported when a rig is made, so test modules that import this still collect
without ROS (they skip through the ``ros`` fixture).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from support.policy_card import CAMERAS, image_msg, joint_msg


def ros_args_context(args: list[str]) -> Any:
    """A fresh rclpy context initialised with the command line ``--ros-args ARGS``
    (``--params-file``, ``-r``, ``-p``), as ``ros2 run``/launch start a node; shut it down after."""
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx, args=["test", "--ros-args", *args])
    return ctx


def rosout_qos() -> Any:
    """QoS reading /rosout with its history for late joiners: a constructor's log lines too."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )


def status_values(status: Any) -> dict[str, str]:
    """A DiagnosticStatus's key/value pairs."""
    return {kv.key: kv.value for kv in status.values}


def latest_status(diag: Any, is_ours: Callable[[str], bool]) -> Any:
    """The newest DiagnosticStatus collected on /diagnostics (``diag``) whose name ``is_ours``, or None."""
    for arr in reversed(list(diag.messages)):
        for status in arr.status:
            if is_ours(status.name):
                return status
    return None


def log_lines(logs: Any, node: Any, text: str, level: int | None = None) -> list[str]:
    """The /rosout lines (``logs``) of ``node`` containing ``text`` (at ``level`` when given)."""
    return [
        m.msg
        for m in list(logs.messages)
        if m.name == node.get_name() and text in m.msg and (level is None or m.level == level)
    ]


class SimClock:
    """A /clock publisher thread (a simulator, a bag): ``t_ns`` advances ``step_ns`` every ``period_s``.

    A context manager: the thread runs inside the ``with`` block, and stops (the clock stands
    still) when it ends. Tests may set :attr:`t_ns` (a clock jumping backwards).
    """

    def __init__(self, ros: Any, t_ns: int, *, step_ns: int = 10_000_000, period_s: float = 0.01) -> None:
        from rosgraph_msgs.msg import Clock

        self.Clock = Clock
        self.pub = ros.publisher("/clock", Clock)
        self.t_ns, self.step_ns, self.period_s = t_ns, step_ns, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.t_ns += self.step_ns
            msg = self.Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(self.t_ns, 1_000_000_000)
            self.pub.publish(msg)
            time.sleep(self.period_s)

    def __enter__(self) -> SimClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class PolicyRig:
    """A policy_node under test, publishers for its inputs and collectors for its outputs.

    Defaults for the node: no warm-up, generous staleness limits (a loaded test machine must not
    make inputs stale by accident), diagnostics every 0.1 s; ``params`` override them.
    """

    def __init__(self, ros: Any, card: Path, **params: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rcl_interfaces.msg import Log
        from rclpy.parameter import Parameter
        from sensor_msgs.msg import CompressedImage, Image, JointState

        from vla_ros.msg import ActionChunk
        from vla_ros.nodes.policy_node import PolicyNode

        defaults = {
            "warmup": 0,
            "image_staleness_s": 5.0,
            "state_staleness_s": 5.0,
            "diagnostics_period_s": 0.1,
        }
        params = {**defaults, **params}
        overrides = [Parameter("card", value=str(card))]
        overrides += [Parameter(k, value=v) for k, v in params.items()]
        self.ros = ros
        self.node = ros.add_node(PolicyNode(context=ros.context, parameter_overrides=overrides))
        self.chunks = ros.subscribe("vla/action_chunk", ActionChunk)
        self.diag = ros.subscribe("/diagnostics", DiagnosticArray)
        self.rosout = ros.subscribe("/rosout", Log, qos=100)
        self.cams = {
            name: ros.publisher(topic, CompressedImage if topic.endswith("/compressed") else Image)
            for name, topic in self.node.camera_topics.items()
        }
        self.states = ros.publisher("joint_states", JointState)
        for pub in (*self.cams.values(), self.states):
            ros.wait_for_subscribers(pub)
        self.gray = np.full((24, 32, 3), 100, np.uint8)  # the frame :meth:`feed` publishes

    def now_ns(self) -> int:
        """The node clock's now (ns)."""
        return self.ros.helper.get_clock().now().nanoseconds

    def publish(self, stamp_ns: int, images: dict, state=(1.0, 2.0, 3.0), names=None) -> None:
        """The image messages ``images`` (camera -> message) and a joint state stamped ``stamp_ns``.

        Without ``names`` the state names an extra joint ``x`` first and the card's joints in
        reverse order (``j3 j2 j1``): the node must pick and order them.
        """
        for cam, msg in images.items():
            self.cams[cam].publish(msg)
        self.states.publish(
            joint_msg(stamp_ns, ("x", "j3", "j2", "j1"), (9.0, *state[::-1]))
            if names is None
            else joint_msg(stamp_ns, names, state)
        )

    def publish_frames(self, frames: dict[str, np.ndarray], stamp_ns: int | None = None, **state: Any) -> int:
        """Each camera's rgb frame and the joint state (:meth:`publish`'s ``state``/``names``),
        all stamped ``stamp_ns`` (default: now); returns the stamp."""
        t = self.now_ns() if stamp_ns is None else stamp_ns
        self.publish(t, {cam: image_msg(t, rgb) for cam, rgb in frames.items()}, **state)
        return t

    def first_chunk(self, frames: dict[str, np.ndarray], stamp_ns: int | None = None, **state: Any):
        """:meth:`publish_frames`, then the node's first chunk (it fails after 10 s without one)."""
        self.publish_frames(frames, stamp_ns, **state)
        return self.chunks.wait_for(1, timeout=10)[0]

    def feed(self, stamp_ns: int, names=("j1", "j2", "j3"), positions=(1.0, 2.0, 3.0)) -> None:
        """One stamped input set: a gray frame on every camera, ``positions`` of ``names``."""
        self.publish_frames(dict.fromkeys(CAMERAS, self.gray), stamp_ns, names=names, state=positions)

    def feed_until(
        self, stamp_fn: Callable[[], int], predicate: Callable[[], Any], timeout: float = 15.0, **kw
    ) -> None:
        """:meth:`feed` stamped ``stamp_fn()`` every 50 ms until ``predicate()`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"never reached; last status: {self.last_status()}"
            self.feed(stamp_fn(), **kw)
            time.sleep(0.05)

    def chunk_stamped(self, stamp_ns: int, timeout: float = 10.0):
        """The first chunk computed from the observation stamped ``stamp_ns``.

        Inputs are separate topics: under load the worker may infer between two of them, from a
        partly new observation (as it should); tests then wait for the chunk they mean.
        """

        def find():
            return next((c for c in list(self.chunks.messages) if _stamp(c) == stamp_ns), None)

        assert self.ros.wait_until(lambda: find() is not None, timeout), (
            f"no chunk stamped {stamp_ns}; got {[_stamp(c) for c in self.chunks.messages]}"
        )
        return find()

    def logs(self, *needles: str, since: int = 0) -> list[str]:
        """The node's /rosout lines (from the ``since``-th message on) containing every needle."""
        return [
            m.msg
            for m in list(self.rosout.messages)[since:]
            if m.name.endswith("policy_node") and all(n in m.msg for n in needles)
        ]

    def last_status(self):
        """The node's newest ``policy`` DiagnosticStatus, or None."""
        return latest_status(self.diag, lambda name: name.endswith("policy_node: policy"))

    def status_where(self, predicate, timeout: float = 5.0):
        """The node's newest status once ``predicate`` holds for it (fails after ``timeout`` s)."""
        assert self.ros.wait_until(
            lambda: (st := self.last_status()) is not None and predicate(st), timeout
        ), f"diagnostics never matched; last: {self.last_status()}"
        return self.last_status()

    def status_has(self, text: str) -> bool:
        """The node's newest status message contains ``text``."""
        st = self.last_status()
        return st is not None and text in st.message


def _stamp(chunk) -> int:
    return chunk.header.stamp.sec * 1_000_000_000 + chunk.header.stamp.nanosec
