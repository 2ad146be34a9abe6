"""vla_ros.policy.from_params (policy_node parameters -> PolicyStep, live changes) and the
policy's diagnostics content (policy.health.step_status / not_loaded_status), on a real card."""

from __future__ import annotations

from pathlib import Path

import pytest

from vla_ros.perception import StalenessLimits
from vla_ros.policy import RateMeter
from vla_ros.policy.from_params import apply_params, runtime_from_params, step_from_params
from vla_ros.policy.health import ERROR, not_loaded_status, step_status
from vla_ros.policy.params import PARAMS

MS = 1_000_000


def _values(card: Path | str, **changes):
    values = {s.name: s.default for s in PARAMS}
    values.update(card=str(card), backend="onnxruntime", **changes)
    return values


def test_an_empty_card_parameter_names_the_node_and_the_fix():
    with pytest.raises(ValueError, match=r"^policy_a: parameter 'card' is empty; set it to a policy card"):
        runtime_from_params(_values(""), "policy_a")


def test_the_step_takes_every_parameter_and_live_changes_merge_the_staleness_limits(card: Path):
    values = _values(
        card,
        image_staleness_s=0.3,
        state_staleness_s=0.2,
        future_tolerance_s=0.01,
        max_image_pixels=1000,
        committed_max_age_s=0.5,
        instruction="pick",
        state_joints=["a", "b", "c"],
    )
    step = step_from_params(runtime_from_params(values), values)
    assert step.assembler.limits == StalenessLimits(image_ns=300 * MS, state_ns=200 * MS, future_ns=10 * MS)
    assert step.assembler.state_joints == ("a", "b", "c")
    assert (step.max_image_pixels, step.tracker.max_age_ns, step.instruction) == (1000, 500 * MS, "pick")
    # one staleness parameter changes: the others are read from the values in force
    current = dict(values)
    apply_params(step, {"state_staleness_s": 0.05, "instruction": "place"}, current.__getitem__)
    assert step.assembler.limits == StalenessLimits(image_ns=300 * MS, state_ns=50 * MS, future_ns=10 * MS)
    assert step.instruction == "place" and step.max_image_pixels == 1000


def test_status_before_the_card_loads_and_while_waiting_for_inputs(card: Path):
    level, message, values = not_loaded_status("/cards/x", None, 2.0)
    assert (level, message, values) == (
        ERROR,
        "policy card not loaded yet",
        [("card", "/cards/x"), ("load_retry_s", "2")],
    )
    step = step_from_params(runtime_from_params(_values(card)), _values(card))
    step.run(10**9)  # nothing arrived yet: waiting (info), not a blocking fault
    level, message, values = step_status(step, backend="onnxruntime", rate=RateMeter(0.0), now_s=1.0)
    keys = [k for k, _ in values]
    assert keys[:3] == ["policy_id", "backend", "chunk_rate_hz"] and dict(values)["chunk_rate_hz"] == "0.00"
    assert level == ERROR and message.startswith("no chunks: waiting")
