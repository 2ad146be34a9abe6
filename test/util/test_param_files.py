"""Parameter YAML read and matched to fully qualified node names as rcl/rclpy do (no ROS here;
test/nodes/test_param_file_warnings.py checks the same table against real rclpy)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from vla_ros.eval.setup import load_values
from vla_ros.eval.tune import update_params_text
from vla_ros.nodes.bringup import main as bringup_main
from vla_ros.util.param_files import (
    DEFAULT_MAX_BYTES,
    ParamsFile,
    ParamsFileError,
    key_matches,
    merged_params,
    mismatch_warning,
    params_file_args,
    params_files_problem,
    rcl_scalar,
    read_params,
    unknown_key_warnings,
)
from vla_ros.util.params import node_section

#: (section key, fully qualified node name, applies) as rclpy (Kilted) applies them
MATCHES = [
    ("executor_node", "/executor_node", True),
    ("executor_node", "/arm/executor_node", False),  # the case
    ("/executor_node", "/executor_node", True),
    ("arm/executor_node", "/arm/executor_node", True),
    ("/arm/executor_node", "/arm/executor_node", True),
    ("/arm/executor_node", "/x/arm/executor_node", False),
    ("/ARM/executor_node", "/arm/executor_node", False),
    ("/**", "/executor_node", True),
    ("/**", "/x/arm/executor_node", True),
    ("**", "/arm/executor_node", True),
    ("/**/executor_node", "/executor_node", True),
    ("/**/executor_node", "/arm/sub/executor_node", True),
    ("/**/executor_node", "/arm/policy_node", False),
    ("/*/executor_node", "/executor_node", False),
    ("/*/executor_node", "/arm/executor_node", True),
    ("/*/executor_node", "/x/arm/executor_node", False),
    ("/*", "/executor_node", True),
    ("/*", "/arm/executor_node", False),
    ("/arm/*", "/arm/executor_node", True),
    ("/arm/*", "/arm/sub/executor_node", False),
    ("/arm/**", "/arm/executor_node", True),
    ("/arm/**", "/arm/sub/executor_node", True),
    ("/arm/**", "/executor_node", False),
    ("/*/*", "/arm/executor_node", True),
    ("/*/*", "/executor_node", False),
    ("/**/arm/executor_node", "/x/arm/executor_node", True),
    ("/arm/**/executor_node", "/arm/executor_node", True),
    ("/arm/**/executor_node", "/arm/sub/executor_node", True),
    ("/arm/**/executor_node", "/x/arm/executor_node", False),
    ("/a*/executor_node", "/arm/executor_node", False),  # rcl refuses the key
]


@pytest.mark.parametrize(("key", "fqn", "applies"), MATCHES)
def test_section_keys_match_as_rclpy(key: str, fqn: str, applies: bool) -> None:
    assert key_matches(key, fqn) is applies


def _write(tmp_path: Path, text: str | bytes, name: str = "p.yaml") -> Path:
    f = tmp_path / name
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    return f


def test_sections_apply_in_rcl_order_repeated_keys_merge(tmp_path: Path) -> None:
    # rcl keeps one entry per key at its first place; rclpy applies every matching entry in order
    f = _write(
        tmp_path,
        "/arm/n:\n  ros__parameters:\n    a: 1\n    b: 1\n"
        "/**:\n  ros__parameters:\n    a: 2\n"
        "/arm/n:\n  ros__parameters:\n    b: 3\n",
    )
    assert node_section(f, "n", "/arm") == {"a": 2, "b": 3}
    nested = _write(tmp_path, "arm:\n  n:\n    ros__parameters:\n      a: {b: 1, c: [u, v]}\n", "n.yaml")
    assert node_section(nested, "n", "arm") == {"a.b": 1, "a.c": ["u", "v"]}
    assert node_section(nested, "n") == {}
    docs = _write(tmp_path, "n:\n  ros__parameters: {a: 1}\n---\nn:\n  ros__parameters: {a: 2}\n", "d.yaml")
    assert node_section(docs, "n") == {"a": 2}
    # across files: the key's first appearance decides the order
    one = ParamsFile("1", read_params(f).sections)
    second = _write(tmp_path, "/**:\n  ros__parameters: {a: 5}\n", "2.yaml")
    two = ParamsFile("2", read_params(second).sections)
    assert merged_params([one, two], "/arm/n") == {"a": 5, "b": 3}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("010", 8),
        ("0x10", 16),
        ("08", 8.0),
        ("1e3", 1000.0),
        ("1_000", "1_000"),
        ("y", True),
        ("Off", False),
        ("~", "~"),
        ("-.inf", -math.inf),
        ("1e999", "1e999"),
        ("latest", "latest"),
    ],
)
def test_scalars_typed_as_rcl_types_them(text: str, value: object) -> None:
    assert rcl_scalar(text) == value and type(rcl_scalar(text)) is type(value)
    assert rcl_scalar(text, quoted=True) == text


HOSTILE = [
    (
        "billion laughs",
        "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
        r"line 2: YAML alias '\*a' is not allowed in a parameter file",
    ),
    (
        "merge key",
        "n:\n  ros__parameters: &p {a: 1}\nm:\n  ros__parameters: {<<: *p}\n",
        "alias '\\*p' is not allowed",
    ),
    (
        "mixed list",
        "n:\n  ros__parameters:\n    max_jump: [0.5, 1]\n",
        r"line 3: parameter 'max_jump' is a list mixing double and integer values; a ROS 2 list holds one",
    ),
    ("mixed strings", "n:\n  ros__parameters:\n    j: [a, 2]\n", "list mixing integer and string values"),
    ("nested list", "n:\n  ros__parameters:\n    j: [[1]]\n", "'j' is a list holding a nested list"),
    (
        "deep nesting",
        "n:\n  ros__parameters:\n    a: " + "[" * 5000 + "]" * 5000 + "\n",
        "collections nested deeper than 32 levels",
    ),
    ("empty value", "n:\n  ros__parameters:\n    a:\n", "parameter 'a' has no value"),
    ("value before params", "n:\n  mode: latest\n", "section 'n' has no 'ros__parameters'"),
    ("list at top", "- a\n", "must map node names to 'ros__parameters' sections"),
    ("bad key", "/a*/n:\n  ros__parameters: {}\n", "section key '/a\\*/n' has the token 'a\\*'"),
    ("syntax", "n: [1,\n", "is not valid YAML"),
]


@pytest.mark.parametrize(("case", "text", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_yaml_is_one_error_naming_the_file(
    tmp_path: Path, case: str, text: str, message: str
) -> None:
    f = _write(tmp_path, text)
    with pytest.raises(ParamsFileError, match=message) as info:
        read_params(f)
    assert str(f) in str(info.value) and "\n" not in str(info.value)


def test_non_utf8_and_size_limit_checked_before_parsing(tmp_path: Path) -> None:
    latin = _write(tmp_path, b"n:\n  ros__parameters:\n    name: caf\xe9\n")
    with pytest.raises(ParamsFileError, match=r"is not UTF-8 text \(byte 0xe9 at line 3\); save it as UTF-8"):
        read_params(latin)
    big = tmp_path / "big.yaml"
    big.write_text("n:\n  ros__parameters:\n" + "    k: 1\n" * (2 * DEFAULT_MAX_BYTES // 9))  # ~2 MB
    with pytest.raises(ParamsFileError, match=r"larger than the 1.0 MiB limit .* \(it has 2.0 MiB\)"):
        read_params(big)
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as f:  # 40 MB of (sparse) NUL bytes: refused from its size, never read
        f.truncate(40 << 20)
    with pytest.raises(ParamsFileError, match=r"\(it has 40.0 MiB\)"):
        read_params(huge)
    assert read_params(big, max_bytes=4 << 20).sections[0].params == {"k": 1}


def test_mismatch_and_unknown_key_lines(tmp_path: Path) -> None:
    f = _write(tmp_path, "executor_node:\n  ros__parameters:\n    blend_coef: 3\n    mode: latest\n")
    pf = read_params(f)
    assert mismatch_warning([pf], "/executor_node") is None
    assert mismatch_warning([pf], "/arm/executor_node") == (
        f"no section of the parameter file(s) applies to this node /arm/executor_node: {f} has "
        "'executor_node' (= /executor_node); every parameter keeps its default. A key applies only "
        "to the node it names in its namespace: key the section '/arm/executor_node:' or "
        "'/**/executor_node:' (any namespace)"
    )
    typo = read_params(_write(tmp_path, "exector_node:\n  ros__parameters: {}\n", "t.yaml"))
    assert "(did you mean 'exector_node'?)" in (mismatch_warning([typo], "/executor_node") or "")
    known = ["mode", "blend_steps", "ensemble_coefficient", "max_jump"]
    assert unknown_key_warnings([pf], "/executor_node", known) == [
        f"parameter file {f} section 'executor_node': /executor_node has no parameter 'blend_coef' "
        "(did you mean 'blend_steps' or 'ensemble_coefficient'?); it is ignored "
        "(see `ros2 param list /executor_node`)"
    ]
    assert unknown_key_warnings([pf], "/arm/executor_node", known) == []  # the section does not apply
    shared_text = "/**:\n  ros__parameters: {use_sim_time: true, card: x}\n"
    shared = read_params(_write(tmp_path, shared_text, "s.yaml"))
    assert unknown_key_warnings([shared], "/executor_node", known) == []  # catch-alls are shared


def test_params_file_args_and_precheck(tmp_path: Path) -> None:
    argv = ["exe", "--params-file", "no", "--ros-args", "--params-file", "a.yaml", "-p", "x:=1", "--"]
    assert params_file_args([*argv, "--ros-args", "--params-file", "b.yaml"]) == ["a.yaml", "b.yaml"]
    bad = _write(tmp_path, "n:\n  ros__parameters:\n    a: [1, x]\n")
    good = _write(tmp_path, "n:\n  ros__parameters: {a: 1}\n", "g.yaml")
    assert params_files_problem(["x", "--ros-args", "--params-file", str(good)]) is None
    problem = params_files_problem(["x", "--ros-args", "--params-file", str(good), "--params-file", str(bad)])
    assert problem is not None and problem.startswith(f"parameter file {str(bad)!r} [n] line 3")


def test_bringup_hostile_yaml_one_line_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = _write(tmp_path, "/**/policy_node:\n  ros__parameters:\n    a: &x [1]\n    b: *x\n")
    assert bringup_main([str(f)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"vla-ros bringup: parameter file {str(f)!r} line 4")
    assert "Traceback" not in err


def test_eval_applies_sections_for_its_namespace(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = _write(
        tmp_path,
        "/**/policy_node:\n  ros__parameters: {rate_hz: 5.0}\n"
        "executor_node:\n  ros__parameters: {mode: latest}\n"
        "/arm/executor_node:\n  ros__parameters: {blend_steps: 9}\n",
    )
    root = load_values(f)
    assert root.executor["mode"] == "latest" and root.executor["blend_steps"] == 5
    arm = load_values(f, namespace="arm")
    assert arm.executor["mode"] == "temporal_ensemble" and arm.executor["blend_steps"] == 9
    assert arm.policy["rate_hz"] == 5.0
    none = _write(tmp_path, "executor_node:\n  ros__parameters: {mode: latest}\n", "n.yaml")
    with pytest.raises(ParamsFileError, match=r"no section of the parameter file.* /arm/executor_node"):
        load_values(none, namespace="/arm")
    load_values(none)  # root: the executor section applies; the policy node is noted
    assert "applies to this node /policy_node" in capsys.readouterr().err


def test_tune_writes_where_the_node_reads() -> None:
    text = "executor_node:\n  ros__parameters:\n    mode: latest  # m\n"
    new = update_params_text(text, "executor_node", {"mode": "blend"}, namespace="/arm")
    assert new == text + "\n/arm/executor_node:\n  ros__parameters:\n    mode: blend\n"
    both = (
        "/**/executor_node:\n  ros__parameters:\n    mode: latest\n    blend_steps: 3\n"
        "/robot1/executor_node:\n  ros__parameters:\n    blend_steps: 7\n"
    )
    new = update_params_text(both, "executor_node", {"blend_steps": 12}, namespace="/robot2")
    assert new == both.replace("blend_steps: 3", "blend_steps: 12")  # robot1's section untouched
    new = update_params_text(both, "executor_node", {"blend_steps": 12, "mode": "blend"}, namespace="robot1")
    assert new == both.replace("3", "12").replace("7", "12").replace("latest", "blend")
