"""Real rclpy nodes warn at start-up about parameter files that do not reach them, and the pure
matching (vla_ros.util.param_files) agrees with what rclpy itself applies."""

from __future__ import annotations

from pathlib import Path

import pytest
from node_rigs import ros_args_context

pytestmark = pytest.mark.ros


def _close(node, ctx) -> None:
    import rclpy

    node.destroy_node()
    rclpy.try_shutdown(context=ctx)


def test_executor_node_warns_for_a_section_of_another_namespace(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    from vla_ros.nodes.executor_node import ExecutorNode

    f = tmp_path / "executor.yaml"
    f.write_text("executor_node:\n  ros__parameters:\n    mode: latest\n")
    ctx = ros_args_context(["--params-file", str(f), "-r", "__ns:=/arm"])
    node = ExecutorNode(context=ctx)
    try:
        assert node.get_parameter("mode").value == "temporal_ensemble"  # rcl ignored the section
        err = capfd.readouterr().err
        line = next(x for x in err.splitlines() if "no section of the parameter file" in x)
        assert line.startswith("[WARN]") and "[arm.executor_node]" in line
        assert f"this node /arm/executor_node: {f} has 'executor_node' (= /executor_node)" in line
        assert "key the section '/arm/executor_node:' or '/**/executor_node:'" in line
    finally:
        _close(node, ctx)


def test_policy_node_warns_for_an_unknown_key_with_suggestions(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    from vla_ros.nodes.params import params_files, warn_params_files
    from vla_ros.nodes.policy_node import PolicyNode
    from vla_ros.policy.params import PARAMS

    f = tmp_path / "policy.yaml"
    f.write_text("/**/policy_node:\n  ros__parameters:\n    rate_hz: 5.0\n    rate_hertz: 5.0\n")
    ctx = ros_args_context(["--params-file", str(f)])
    try:
        with pytest.raises(Exception, match="card"):  # no card: the node refuses to start ...
            PolicyNode(context=ctx)
        err = capfd.readouterr().err  # ... after the warning about the typo
        assert "/policy_node has no parameter 'rate_hertz' (did you mean 'rate_hz'?)" in err
        from rclpy.node import Node

        probe = Node("policy_node", context=ctx, cli_args=["--ros-args", "--params-file", str(f)])
        assert params_files(probe) == [str(f), str(f)]  # global then the node's own arguments
        lines = warn_params_files(probe, PARAMS)
        assert len(lines) == 2 and all("'rate_hertz' (did you mean 'rate_hz'?)" in x for x in lines)
        _close(probe, ctx)
    finally:
        import rclpy

        rclpy.try_shutdown(context=ctx)


def test_executor_executable_refuses_a_hostile_file_before_rcl(
    tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    from vla_ros.nodes.executor_node import main

    f = tmp_path / "big.yaml"
    with f.open("wb") as out:
        out.truncate(2 << 20)
    assert main(["executor_node", "--ros-args", "--params-file", str(f)]) == 1
    err = capfd.readouterr().err.strip()
    assert err == (
        f"[FATAL] [executor_node]: cannot start: parameter file {str(f)!r} is larger than the 1.0 MiB "
        "limit for parameter files; keep large data (URDFs, tables) in their own files or topics, "
        "or set VLA_ROS_PARAMS_MAX_BYTES (it has 2.0 MiB)"
    )


@pytest.mark.parametrize("namespace", ["/", "/arm", "/arm/sub"])
def test_pure_matching_agrees_with_rclpy(tmp_path: Path, namespace: str) -> None:
    """Every key of the pure test table, in one file: rclpy's values equal merged_params'."""
    from rclpy.node import Node

    from vla_ros.util.param_files import fully_qualified_name, merged_params, read_params

    keys = [
        "executor_node",
        "arm/executor_node",
        "/**",
        "/**/executor_node",
        "/*/executor_node",
        "/*",
        "/arm/*",
        "/arm/**",
        "/*/*",
        "/arm/**/executor_node",
        "/arm/sub/executor_node",
    ]
    f = tmp_path / "all.yaml"
    f.write_text(
        "".join(f"'{k}':\n  ros__parameters:\n    k{i}: {i}\n    last: {i}\n" for i, k in enumerate(keys))
    )
    ctx = ros_args_context(["--params-file", str(f), "-r", f"__ns:={namespace}"])
    node = Node("executor_node", context=ctx)
    try:
        got = {name: p.value for name, p in node._parameter_overrides.items()}
        want = merged_params([read_params(f)], fully_qualified_name("executor_node", namespace))
        assert got == want and len(want) >= 4
    finally:
        _close(node, ctx)


def test_executor_node_warns_for_a_command_line_parameter_it_does_not_have(
    capfd: pytest.CaptureFixture,
) -> None:
    from vla_ros.nodes.executor_node import ExecutorNode

    # -p chunk_mode:=latest: rclpy ignores an undeclared override silently; mode stays at its default
    ctx = ros_args_context(
        ["-p", "chunk_mode:=latest", "-p", "limits.j1.lower:=-1.0", "-p", "joint_names:=[j1]"]
    )
    node = ExecutorNode(context=ctx)
    try:
        assert node.get_parameter("mode").value == "temporal_ensemble"
        assert node.get_parameter("limits.j1.lower").value == -1.0  # a map key is known
        lines = [x for x in capfd.readouterr().err.splitlines() if "has no parameter" in x]
        assert len(lines) == 1 and lines[0].startswith("[WARN]")
        assert "/executor_node has no parameter 'chunk_mode' (did you mean 'mode' or " in lines[0]
        assert "limits.j1" not in lines[0] and "joint_names" not in lines[0]
    finally:
        _close(node, ctx)


@pytest.mark.parametrize(
    ("name", "known", "want"),
    [
        ("rate_hertz", ["rate_hz", "period_s", "mode"], ["rate_hz"]),
        ("chunk_mode", ["mode", "rate_hz"], ["mode"]),  # a whole-word match
        ("timeout_s", ["s", "period_s", "rate_hz"], []),  # '_s' alone is no match
        ("max_age_s", ["max_age_ms", "rate_hz"], ["max_age_ms"]),
        ("period_hz", ["rate_hz", "hz"], []),  # nor '_hz'
        ("policy_node", ["executor_node", "sim_node"], []),  # nor '_node'
        ("policy_nod", ["executor_node", "policy_node"], ["policy_node"]),
    ],
)
def test_suggestions_do_not_rest_on_a_generic_shared_word(
    name: str, known: list[str], want: list[str]
) -> None:
    from vla_ros.util.param_files import suggest

    assert suggest(name, known) == want


def test_a_policy_node_given_the_executor_file_is_not_told_executor_node() -> None:
    """`vla-ros eval --params config/executor.yaml`: the policy node's warning names the key to use
    and suggests no other node's section."""
    from vla_ros.util.param_files import mismatch_warning, read_params

    path = Path(__file__).resolve().parents[2] / "config" / "executor.yaml"
    line = mismatch_warning([read_params(path)], "/policy_node")
    assert line is not None and "this node /policy_node" in line
    assert "did you mean" not in line and "key the section '/policy_node:' or '/**/policy_node:'" in line
