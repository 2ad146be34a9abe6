"""The ROS-free parameter specs and YAML reading that eval/tune share with the nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from vla_ros.executor.params import SPECS as EXECUTOR_SPECS
from vla_ros.policy.params import PARAMS as POLICY_SPECS
from vla_ros.util.params import ParamsFileError, ParamSpec, node_section, read_params_file, resolve

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_type_names_and_coercion() -> None:
    rate = ParamSpec("rate_hz", 0.0, "rate", range=(0.0, 10.0))
    assert rate.type_name == "double" and not rate.is_array
    assert rate.coerce(2) == 2.0 and isinstance(rate.coerce(2), float)  # YAML 2 for 2.0
    with pytest.raises(ValueError, match=r"rate_hz=11.0 must be in \[0, 10\]"):
        rate.coerce(11)
    with pytest.raises(ValueError, match="rate_hz='fast' is a str; it must be a double"):
        rate.coerce("fast")
    names = ParamSpec("joints", [], "joints", type="string_array")
    assert names.is_array and names.coerce(None) == [] and names.coerce(("a", "b")) == ["a", "b"]
    with pytest.raises(ValueError, match="joints='a' must be a list"):
        names.coerce("a")
    with pytest.raises(ValueError, match=r"joints=3 is a int; it must be a string"):
        names.coerce(["a", 3])
    flag = ParamSpec("dry_run", False, "flag")
    with pytest.raises(ValueError, match="it must be a bool"):
        flag.coerce(1)
    mode = ParamSpec("mode", "a", "mode", choices=("a", "b"))
    with pytest.raises(ValueError, match=r"mode='c' is not one of \['a', 'b'\]"):
        mode.coerce("c")


def test_spec_definition_errors() -> None:
    with pytest.raises(ValueError, match="empty-list default needs type="):
        ParamSpec("x", [], "x")
    with pytest.raises(ValueError, match="range needs an int or double"):
        ParamSpec("x", "s", "x", range=(0, 1))
    with pytest.raises(ValueError, match="type 'float' is not one of"):
        ParamSpec("x", 1.0, "x", type="float")


def test_shipped_yaml_resolves_against_the_node_specs() -> None:
    """config/vla.yaml read offline gives every policy/executor parameter a valid value."""
    policy = resolve(POLICY_SPECS, node_section(CONFIG / "vla.yaml", "policy_node"), source="vla.yaml")
    executor = resolve(EXECUTOR_SPECS, node_section(CONFIG / "vla.yaml", "executor_node"), source="vla.yaml")
    assert policy["backend"] == "onnxruntime" and policy["cameras"] == []
    assert executor["mode"] == "temporal_ensemble" and executor["max_jump"] == [0.5]
    assert set(policy) == {s.name for s in POLICY_SPECS}


def test_resolve_names_unknown_keys_and_bad_values() -> None:
    with pytest.raises(
        ValueError,
        match=r"x.yaml: unknown parameter\(s\) 'ensemble_coeficient' "
        r"\(did you mean 'ensemble_coefficient'\?\)",
    ):
        resolve(EXECUTOR_SPECS, {"ensemble_coeficient": 0.1}, source="x.yaml")
    with pytest.raises(ValueError, match=r"x.yaml: parameter mode='smooth' is not one of"):
        resolve(EXECUTOR_SPECS, {"mode": "smooth"}, source="x.yaml")
    assert resolve(EXECUTOR_SPECS, {"use_sim_time": True}, source="x")["mode"] == "temporal_ensemble"


def test_sections_merge_in_order_and_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        "/**/executor_node:\n  ros__parameters:\n    mode: latest\n    blend_steps: 3\n"
        "/robot1/executor_node:\n  ros__parameters:\n    blend_steps: 7\n"
        "policy_node:\n  ros__parameters: {}\n"
    )
    # as rcl applies them: /robot1/executor_node reaches only the node in /robot1
    assert node_section(f, "executor_node") == {"mode": "latest", "blend_steps": 3}
    assert node_section(f, "executor_node", "/robot1") == {"mode": "latest", "blend_steps": 7}
    assert node_section(f, "executor_node", "robot2") == {"mode": "latest", "blend_steps": 3}
    assert node_section(f, "policy_node") == {} and node_section(f, "sim_node") == {}
    with pytest.raises(ParamsFileError, match=r"does not exist; pass a YAML such as config/vla\.yaml"):
        read_params_file(tmp_path / "missing.yaml")
    f.write_text("executor_node:\n  mode: latest\n")
    with pytest.raises(ParamsFileError, match="section 'executor_node' has no 'ros__parameters'"):
        read_params_file(f)
    f.write_text("a: [1,\n")
    with pytest.raises(ParamsFileError, match="is not valid YAML"):
        read_params_file(f)
