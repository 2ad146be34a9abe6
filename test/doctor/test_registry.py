"""The doctor's checks are registered once; the CLI report and doctor_node run the same registry."""

from __future__ import annotations

import json

import pytest
from doctor_rig import start_doctor

from vla_ros.doctor import cli
from vla_ros.doctor.facts import Facts
from vla_ros.doctor.registry import GROUP_TITLES, CheckSpec, RegistryError, check, checks, run_registered
from vla_ros.doctor.report import DoctorOptions
from vla_ros.doctor.result import DoctorContext, Status

DOCTOR = "vla_ros doctor: "


def test_every_id_is_unique_well_formed_and_in_report_order() -> None:
    ids = [s.id for s in checks()]
    assert len(ids) == len(set(ids)) == 32
    groups = [i.split(".")[0] for i in ids]
    assert list(dict.fromkeys(groups)) == list(GROUP_TITLES)  # grouped, in the report's order
    assert ids[:5] == ["ros.distro", "ros.paths", "python.rclpy", "python.numpy_cv2", "python.env"]
    assert "card.delay" in ids and "workspace.symlink" in ids
    assert {s.id: s.title for s in checks(["workspace"])}["workspace.symlink"] == "symlink install"


def test_registry_refuses_a_taken_or_malformed_id() -> None:
    with pytest.raises(RegistryError, match=r"'ros\.distro' is registered twice"):
        check("ros.distro", "ROS distro")
    for bad in ("robot.arm", "ros", "ros.Distro", "ros.dis-tro"):
        with pytest.raises(RegistryError, match=r"must be 'group\.name'"):
            check(bad, "x")
    assert "robot.arm" not in {s.id for s in checks()}


def test_a_crashing_check_is_a_fail_naming_it() -> None:
    def boom() -> None:
        raise RuntimeError("probe exploded")

    spec = CheckSpec("ros.boom", "boom", lambda: boom(), lambda f: ())
    r = spec.run(None)
    assert (r.id, r.title, r.status) == ("ros.boom", "boom", Status.FAIL)
    assert "probe exploded" in r.message and "RuntimeError" in r.details["traceback"]


def test_facts_are_gathered_only_when_a_chosen_check_reads_them() -> None:
    facts = Facts(DoctorContext(env={}), DoctorOptions(groups=("ros", "middleware"), gpu=False))
    ids = [r.id for r in run_registered(facts, ("ros", "middleware"))]
    assert ids == [s.id for s in checks(["ros", "middleware"])] and len(ids) == 7
    gathered = set(vars(facts))
    assert not gathered & {
        "python_probe",
        "workspace",
        "torch_probe",
        "trt_probe",
        "card_load",
        "observation",
    }


@pytest.mark.ros
def test_cli_and_doctor_node_report_the_same_registered_ids(ros, card_copy, capsys) -> None:
    from diagnostic_msgs.msg import DiagnosticArray

    card = card_copy("act")
    registered = [s.id for s in checks()]
    assert cli.main(["--json", "--no-gpu", "--card", str(card), "--live", "0.5"]) in (0, 1)
    cli_ids = [c["id"] for c in json.loads(capsys.readouterr().out)["checks"]]
    assert cli_ids == registered

    diags = ros.subscribe("/diagnostics", DiagnosticArray)
    start_doctor(ros, live_s=0.5, card=str(card))
    arr = diags.wait_for(1, timeout=120.0)[0]
    names = [s.name for s in arr.status]
    assert names[0] == DOCTOR + "summary"
    assert [n.removeprefix(DOCTOR) for n in names[1:]] == cli_ids
