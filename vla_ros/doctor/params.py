"""The doctor node's parameters: one table of specs (:data:`PARAMS`), without ROS.

``doctor_node`` declares them (:func:`vla_ros.nodes.params.declare_parameters`; all read-only);
``make params-docs`` writes them into docs/parameters.md and the config/*.yaml headers. A new
parameter is one more :class:`ParamSpec` entry here.
"""

from __future__ import annotations

from vla_ros.doctor.registry import GROUP_TITLES
from vla_ros.util.params import ParamSpec

PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "period_s",
        30.0,
        "Seconds between full check runs; 0 = only at start and on ~/run_checks",
        unit="s",
        read_only=True,
        range=(0.0, 86400.0),
    ),
    ParamSpec(
        "live_s",
        2.0,
        "Live-graph sampling window per run; 0 = no live checks",
        unit="s",
        read_only=True,
        range=(0.0, 600.0),
    ),
    ParamSpec(
        "expected_topics",
        [],
        "Topics that must be live, 'NAME[:HZ[:TOL]]' each, e.g. '/camera/image_raw:30'",
        type="string_array",
        read_only=True,
    ),
    ParamSpec(
        "rate_tolerance",
        0.2,
        "Default relative rate tolerance for expected_topics without one",
        read_only=True,
        range=(0.01, 0.99),
    ),
    ParamSpec(
        "card",
        "",
        "Policy card folder (as policy_node's 'card') for the card, engine and joint checks; '' = none",
        read_only=True,
    ),
    ParamSpec(
        "workspace",
        "",
        "colcon workspace to check; '' = the sourced one (where vla_ros is imported from)",
        read_only=True,
    ),
    ParamSpec(
        "control_rate_hz",
        0.0,
        "Executor control rate compared with the policy's fps; 0 = unknown",
        unit="Hz",
        read_only=True,
        range=(0.0, 10000.0),
    ),
    ParamSpec(
        "params_file",
        "",
        "Parameter YAML the executor runs with (its executor_node max_chunk_age_s and time_offset_s "
        "set the execution horizon the inference delay is checked against); '' = executor defaults",
        read_only=True,
    ),
    ParamSpec("gpu", True, "Run the GPU / TensorRT probes (they import torch and tensorrt)", read_only=True),
    ParamSpec(
        "groups",
        [],
        f"Check groups to run; empty = all of {', '.join(GROUP_TITLES)}",
        type="string_array",
        read_only=True,
    ),
)
