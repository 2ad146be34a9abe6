"""``live.joints`` looks on /joint_states for the names policy_node uses: the card's joints renamed
by ``state_joints`` / ``action_joints`` of the policy_node section of ``--params`` (matched to the
node as rcl matches it), else the card's own names. A real exported card (its joints are
``joint_0 ..``, as LeRobot cards' are) and a real run of the doctor's checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from vla_ros.doctor.live import LiveObservation, TopicSample
from vla_ros.doctor.report import DoctorOptions, run_checks
from vla_ros.doctor.result import DoctorContext, Status

PolicyCard = pytest.importorskip("vla_ros.contract.card").PolicyCard
CTX = DoctorContext(env={})


def _observed(names: list[str]) -> LiveObservation:
    js = TopicSample("/joint_states", receive_ns=[1, 2, 3], joint_names=list(names))
    return LiveObservation(2.0, topics={"/joint_states": js})


def _joints(card: Path, params: Path | None, published: list[str], namespace: str = "/"):
    opts = DoctorOptions(card=card, groups=("live",), live_s=1.0, params=params, namespace=namespace)
    by_id = {r.id: r for r in run_checks(CTX, opts, live_obs=_observed(published))}
    return by_id["live.joints"]


def _robot(pc) -> tuple[list[str], list[str]]:
    """The robot's names: ``arm_<card name>`` for every card joint."""
    return [f"arm_{j}" for j in pc.state_joints], [f"arm_{j}" for j in pc.action_joints]


def test_renamed_joints_from_the_params_file_pass(card_copy, tmp_path: Path) -> None:
    card = card_copy("act")
    pc = PolicyCard.load(card)
    assert pc.state_joints[0] == "joint_0"
    state, action = _robot(pc)
    f = tmp_path / "vla.yaml"
    f.write_text(
        "executor_node:\n  ros__parameters:\n    max_chunk_age_s: 0.0\n"
        f"/**/policy_node:\n  ros__parameters:\n    state_joints: {state}\n    action_joints: {action}\n"
    )
    published = list(dict.fromkeys([*state, *action]))
    res = _joints(card, f, published, namespace="/arm")
    assert res.status is Status.PASS, res
    assert res.details["expected"] == published and res.details["missing"] == []
    assert res.details["names_from"] == f"{f} (policy_node)"
    # one robot joint renamed wrongly in the file: that one is missing, and the fix is the file's
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(f.read_text().replace(f"'{state[0]}'", "'arm_typo'").replace(state[0], "arm_typo"))
    res = _joints(card, wrong, published)
    assert res.status is Status.FAIL and res.details["missing"] == ["arm_typo"], res
    assert f"state_joints / action_joints in {wrong} (policy_node)" in res.fix


def test_without_renaming_the_card_names_are_wanted_and_the_fix_is_the_parameters(
    card_copy, tmp_path: Path
) -> None:
    card = card_copy("act")
    pc = PolicyCard.load(card)
    state, action = _robot(pc)
    published = list(dict.fromkeys([*state, *action]))
    # no --params, and a section for another namespace (rcl does not apply it to /policy_node)
    other = tmp_path / "other_ns.yaml"
    other.write_text(f"/left/policy_node:\n  ros__parameters:\n    state_joints: {state}\n")
    for params in (None, other):
        res = _joints(card, params, published)
        card_joints = list(dict.fromkeys([*pc.state_joints, *pc.action_joints]))
        assert res.status is Status.FAIL and res.details["missing"] == card_joints, res
        assert res.details["names_from"] == "the card"
        assert "state_joints / action_joints" in res.fix and "URDF" not in res.fix


def test_renaming_the_node_would_refuse_fails_with_its_reason(card_copy, tmp_path: Path) -> None:
    card = card_copy("act")
    pc = PolicyCard.load(card)
    f = tmp_path / "short.yaml"
    f.write_text("policy_node:\n  ros__parameters:\n    state_joints: [only_one]\n")
    res = _joints(card, f, ["only_one"])
    assert res.status is Status.FAIL
    assert f"parameter state_joints has 1 names ['only_one'] but the card has {len(pc.state_joints)}" in (
        res.message
    )
