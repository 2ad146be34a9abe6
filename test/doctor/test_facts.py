"""Facts are gathered by functions that return data; judgements judge the facts they are given."""

from __future__ import annotations

from pathlib import Path

from vla_ros.doctor import gpu, middleware, ros_env, workspace
from vla_ros.doctor.result import DoctorContext, Status


def test_ros_facts_and_the_judgements_of_them(tmp_path: Path) -> None:
    prefix = tmp_path / "ws" / "install"
    prefix.mkdir(parents=True)
    env = {
        "ROS_DISTRO": "jazzy",
        "ROS_VERSION": "2",
        "AMENT_PREFIX_PATH": f"{prefix}:/opt/ros/humble",
        "PATH": "/opt/ros/humble/bin:/usr/bin",
    }
    facts = ros_env.ros_facts(DoctorContext(env=env))
    assert (facts.distro, facts.version) == ("jazzy", "2")
    assert facts.ament_prefixes == [str(prefix), "/opt/ros/humble"]
    assert facts.foreign_entries == {
        "AMENT_PREFIX_PATH": ["/opt/ros/humble"],
        "PATH": ["/opt/ros/humble/bin"],
    }
    assert facts.distros_seen == {"humble": ["AMENT_PREFIX_PATH", "PATH"]}
    paths = ros_env.check_paths(DoctorContext(env=env), facts)
    assert paths.status is Status.FAIL and "/opt/ros/humble in AMENT_PREFIX_PATH" in paths.message
    # the judgement reads the facts it is given, not the environment again
    foxy = ros_env.RosFacts("foxy", "2", [], {}, {}, {}, {})
    judged = ros_env.check_distro(DoctorContext(env={"ROS_DISTRO": "jazzy"}), foxy)
    assert judged.status is Status.FAIL and "ROS_DISTRO=foxy" in judged.message


def test_middleware_facts_and_the_judgements_of_them(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "librmw_cyclonedds_cpp.so").write_bytes(b"not an ELF file")
    ctx = DoctorContext(env={"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp", "LD_LIBRARY_PATH": str(lib)})
    rmw = middleware.rmw_facts(ctx, load=True)
    assert (rmw.setting, rmw.name, rmw.library) == (
        "rmw_cyclonedds_cpp",
        "rmw_cyclonedds_cpp",
        lib / rmw.library.name,
    )
    assert "rmw_cyclonedds_cpp" in rmw.installed and rmw.load_error  # the loader refused the file
    res = middleware.check_rmw(ctx, True, rmw)
    assert res.status is Status.FAIL and "librmw_cyclonedds_cpp.so does not load" in res.message
    net = tmp_path / "sys" / "class" / "net" / "eth0"
    net.mkdir(parents=True)
    (net / "flags").write_text("0x1003\n")  # up, broadcast, multicast (IFF_MULTICAST 0x1000)
    (net / "operstate").write_text("up\n")
    ifaces = middleware.network_interfaces(DoctorContext(env={}, root=tmp_path))
    assert ifaces == {
        "eth0": {"flags": "0x1003", "up": True, "operstate": "up", "loopback": False, "multicast": True}
    }
    ok = middleware.check_multicast(DoctorContext(env={}), ifaces)
    assert ok.status is Status.PASS and ok.message == "multicast on eth0"
    ifaces["eth0"]["multicast"] = False  # judged from the facts given, not read again
    no_multicast = middleware.check_multicast(DoctorContext(env={}, root=tmp_path), ifaces)
    assert (
        no_multicast.status is Status.WARN
        and "no interface is up and multicast-capable" in no_multicast.message
    )


def test_gpu_and_workspace_judgements_take_their_facts() -> None:
    ctx = DoctorContext(env={}, root=Path("/nonexistent"))
    with_driver = gpu.check_cuda(ctx, None, None, "2.5.0", None, driver_present=True)
    assert with_driver.status is Status.SKIP and with_driver.details["driver_present"] is True
    without = gpu.check_cuda(ctx, None, None, "2.5.0", None, driver_present=False)
    assert without.status is Status.WARN and "no NVIDIA GPU" in without.message
    index = workspace.check_ament_index(ctx, None, [])
    assert index.status is Status.FAIL and "not in the ament index" in index.message
    shadow = workspace.check_underlay(ctx, None, None, [Path("/a"), Path("/b")])
    assert shadow.status is Status.WARN and "2 prefixes provide vla_ros" in shadow.message
