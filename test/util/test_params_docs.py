"""docs/parameters.md and the config/*.yaml headers are what the ParamSpecs generate; the one
table style and the YAML header are right for a known spec."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from vla_ros.util.params import ParamSpec
from vla_ros.util.params_docs import HEADER_BEGIN, HEADER_END, markdown_table, yaml_with_header

ROOT = Path(__file__).resolve().parents[2]

SPECS = (
    ParamSpec("rate_hz", 30.0, "Inference rate", unit="Hz", range=(0.0, 1000.0)),
    ParamSpec("mode", "a", "How | chunks combine", read_only=True, choices=("a", "b")),
    ParamSpec("names", [], "Joints, <name> each", type="string_array", read_only=True),
    ParamSpec("limits.<joint>.lower", None, "Lower limit", type="double", unit="rad", map_keys="names"),
    ParamSpec("lower", [], "Lower limits", type="double_array", deprecated="limits.<joint>.lower"),
)


def _generator():
    spec = importlib.util.spec_from_file_location("gen_params_docs", ROOT / "scripts" / "gen_params_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_params_docs", module)
    spec.loader.exec_module(module)
    return module


def test_generated_parameter_docs_match_the_specs() -> None:
    gen = _generator()
    stale = [str(p.relative_to(ROOT)) for p in gen.drifted()]
    assert not stale, f"{stale} differ from the nodes' ParamSpecs; run `{gen.FIX}` and commit the result"
    assert set(gen.generated()) == {ROOT / "docs" / "parameters.md", *(ROOT / "config").glob("*.yaml")}


def test_every_node_is_documented_with_every_parameter() -> None:
    gen = _generator()
    text = (ROOT / "docs" / "parameters.md").read_text()
    for node, (specs, _) in gen.TABLES.items():
        assert f"\n## {node}\n" in text
        for s in specs:
            assert f"| `{s.name}` |" in text, f"{node} {s.name}"


def test_the_table_style() -> None:
    assert markdown_table(SPECS).splitlines() == [
        "| name | type | default | unit | range | description |",
        "|---|---|---|---|---|---|",
        "| `rate_hz` | double | `30.0` | Hz | [0, 1000] | Inference rate *dynamic* |",
        "| `mode` | string | `a` |  | a \\| b | How \\| chunks combine |",
        "| `names` | string_array | `[]` |  |  | Joints, \\<name\\> each |",
        "| `limits.<joint>.lower` | double | `unset` | rad |  | Lower limit *dynamic* |",
        "| `lower` | double_array | `[]` |  |  | Lower limits **Deprecated**: use `limits.<joint>.lower`. "
        "*dynamic* |",
    ]


def test_the_yaml_header_documents_the_keys_set_and_is_idempotent() -> None:
    text = (
        "# my robot\n\n/**/n:\n  ros__parameters:\n    rate_hz: 10.0  # mine\n"
        "    limits:\n      j1: {lower: -1.0}\n      j2: {lower: -2.0}\n"
    )
    out = yaml_with_header(text, {"n": SPECS})
    assert out == (
        "# my robot\n\n"
        f"{HEADER_BEGIN}\n"
        "# What each key below means (full tables: docs/parameters.md). Read-only parameters are set at\n"
        "# start; dynamic ones also with `ros2 param set` while running.\n"
        "# n (docs/parameters.md#n):\n"
        "#   rate_hz: double, default 30.0, Hz, [0, 1000], dynamic. Inference rate\n"
        "#   limits.<joint>.lower: double, default unset, rad, dynamic. Lower limit\n"
        f"{HEADER_END}\n"
        "/**/n:\n  ros__parameters:\n    rate_hz: 10.0  # mine\n"
        "    limits:\n      j1: {lower: -1.0}\n      j2: {lower: -2.0}\n"
    )
    assert yaml_with_header(out, {"n": SPECS}) == out
    with pytest.raises(KeyError, match="n: parameter 'rate' is not declared"):
        yaml_with_header("/**/n:\n  ros__parameters:\n    rate: 1.0\n", {"n": SPECS})
