"""Middleware checks with real environment variables, libraries and a fake /sys tree."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from vla_ros.doctor import middleware as m
from vla_ros.doctor.result import DoctorContext, Status


def _iface(root: Path, name: str, flags: int, oper: str = "up") -> None:
    d = root / "sys" / "class" / "net" / name
    d.mkdir(parents=True)
    (d / "flags").write_text(f"{flags:#x}\n")
    (d / "operstate").write_text(oper + "\n")


def test_rmw_found_and_loadable_or_missing() -> None:
    env = dict(os.environ)
    lib = m.find_rmw_library(DoctorContext(env=env, python=sys.executable), "rmw_fastrtps_cpp")
    if lib is None:
        pytest.skip("no rmw_fastrtps_cpp library in this environment")
    env["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"
    ok = m.check_rmw(DoctorContext(env=env, python=sys.executable))
    assert ok.status is Status.PASS, ok
    env.pop("RMW_IMPLEMENTATION")
    assert m.check_rmw(DoctorContext(env=env, python=sys.executable)).status is Status.WARN
    env["RMW_IMPLEMENTATION"] = "rmw_cyclonedds_cpp_typo"
    bad = m.check_rmw(DoctorContext(env=env, python=sys.executable))
    assert bad.status is Status.FAIL and "rmw_fastrtps_cpp" in bad.fix


def test_rmw_library_that_does_not_load(tmp_path: Path) -> None:
    libdir = tmp_path / "lib"
    libdir.mkdir()
    (libdir / "librmw_zenoh_cpp.so").write_bytes(b"not an ELF file")
    env = {"RMW_IMPLEMENTATION": "rmw_zenoh_cpp", "LD_LIBRARY_PATH": str(libdir)}
    res = m.check_rmw(DoctorContext(env=env, python=sys.executable))
    assert res.status is Status.FAIL and "does not load" in res.message


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (None, Status.PASS),
        ("0", Status.PASS),
        ("42", Status.PASS),
        ("230", Status.PASS),
        ("150", Status.WARN),
        ("233", Status.FAIL),
        ("-1", Status.FAIL),
        ("robot", Status.FAIL),
    ],
)
def test_domain_id(value: str | None, status: Status) -> None:
    env = {} if value is None else {"ROS_DOMAIN_ID": value}
    assert m.check_domain(DoctorContext(env=env)).status is status


@pytest.mark.parametrize(
    ("env", "status", "word"),
    [
        ({"ROS_DISTRO": "jazzy"}, Status.PASS, "SUBNET"),
        ({"ROS_DISTRO": "jazzy", "ROS_LOCALHOST_ONLY": "1"}, Status.WARN, "deprecated"),
        (
            {"ROS_DISTRO": "kilted", "ROS_LOCALHOST_ONLY": "1", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"},
            Status.FAIL,
            "conflicts",
        ),
        ({"ROS_DISTRO": "jazzy", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LAN"}, Status.FAIL, "LAN"),
        ({"ROS_DISTRO": "jazzy", "ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"}, Status.WARN, "OFF"),
        (
            {
                "ROS_DISTRO": "jazzy",
                "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                "ROS_STATIC_PEERS": "192.168.1.5;robot.local",
            },
            Status.PASS,
            "static peers",
        ),
        ({"ROS_DISTRO": "humble", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, Status.WARN, "Humble"),
        ({"ROS_DISTRO": "humble", "ROS_LOCALHOST_ONLY": "1"}, Status.PASS, "localhost"),
        ({"ROS_DISTRO": "jazzy", "ROS_STATIC_PEERS": "a;;b"}, Status.WARN, "empty"),
    ],
)
def test_discovery(env: dict, status: Status, word: str) -> None:
    res = m.check_discovery(DoctorContext(env=env))
    assert res.status is status, res
    assert word in res.message


def test_multicast_interfaces(tmp_path: Path) -> None:
    _iface(tmp_path, "lo", m.IFF_UP | m.IFF_LOOPBACK, "unknown")
    _iface(tmp_path, "eth0", m.IFF_UP | m.IFF_MULTICAST, "down")
    ctx = DoctorContext(env={}, root=tmp_path)
    res = m.check_multicast(ctx)
    assert res.status is Status.WARN  # eth0 is down, lo has no multicast
    local = DoctorContext(env={"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}, root=tmp_path)
    assert m.check_multicast(local).status is Status.PASS
    _iface(tmp_path, "wlan0", m.IFF_UP | m.IFF_MULTICAST, "up")
    ok = m.check_multicast(ctx)
    assert ok.status is Status.PASS and ok.details["multicast_capable"] == ["wlan0"]
    assert m.check_multicast(DoctorContext(env={}, root=tmp_path / "none")).status is Status.SKIP


def test_large_data_profile_check(tmp_path) -> None:
    from vla_ros.doctor.middleware import check_large_data
    from vla_ros.doctor.result import DoctorContext, Status

    shipped = Path(__file__).resolve().parents[2] / "config" / "fastdds_large_data.xml"
    unset = check_large_data(DoctorContext(env={"AMENT_PREFIX_PATH": ""}))
    assert unset.status == Status.WARN and "512 KiB" in unset.message
    assert f"FASTDDS_DEFAULT_PROFILES_FILE={shipped}" in unset.fix
    ok = check_large_data(DoctorContext(env={"FASTDDS_DEFAULT_PROFILES_FILE": str(shipped)}))
    assert ok.status == Status.PASS and "32 MiB" in ok.message
    small = tmp_path / "small.xml"
    small.write_text(
        "<dds><profiles><transport_descriptors><transport_descriptor><type>SHM</type>"
        "<segment_size>524288</segment_size></transport_descriptor></transport_descriptors></profiles></dds>"
    )
    too_small = check_large_data(DoctorContext(env={"FASTDDS_DEFAULT_PROFILES_FILE": str(small)}))
    assert too_small.status == Status.WARN and "524,288 B SHM segment" in too_small.message
    missing = check_large_data(DoctorContext(env={"FASTDDS_DEFAULT_PROFILES_FILE": str(tmp_path / "no.xml")}))
    assert missing.status == Status.WARN and "cannot be read" in missing.message
    other = check_large_data(DoctorContext(env={"RMW_IMPLEMENTATION": "rmw_zenoh_cpp"}))
    assert other.status == Status.SKIP and "rmw_zenoh_cpp" in other.message
