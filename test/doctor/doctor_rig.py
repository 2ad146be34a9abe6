"""A real doctor_node for the tests, without the slow parts unless a test asks for them.

:data:`FAST`: no periodic re-runs (``period_s`` 0), no live-graph window (``live_s`` 0), no
GPU/TensorRT probes (``gpu`` false). rclpy is imported only when a node is made, so test modules
that import this still collect without ROS.
"""

from __future__ import annotations

from typing import Any

FAST: dict[str, Any] = {"period_s": 0.0, "live_s": 0.0, "gpu": False}


def doctor_node(ros: Any, **params: Any) -> Any:
    """A ``DoctorNode`` in ``ros``'s context with :data:`FAST`, then ``params``, as overrides.

    Not spun (see :func:`start_doctor`); raises what the node raises for a bad parameter.
    """
    from rclpy.parameter import Parameter

    from vla_ros.nodes.doctor_node import DoctorNode

    overrides = [Parameter(name, value=value) for name, value in {**FAST, **params}.items()]
    return DoctorNode(context=ros.context, parameter_overrides=overrides)


def start_doctor(ros: Any, **params: Any) -> Any:
    """:func:`doctor_node`, spinning in ``ros``'s executor (it runs its checks at once)."""
    return ros.add_node(doctor_node(ros, **params))
