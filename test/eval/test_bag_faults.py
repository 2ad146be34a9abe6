"""Bags as rosbag2 really writes them (issue 12, item 7), each a real bag made with ``rosbags``:
split joint states, topics without a leading slash, nothing to evaluate, storage from the magic
bytes, truncated mcap, channels the replay does not need."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from bag_edit import joint_state, rewrite_bag, stamped

from vla_ros.cli import main
from vla_ros.eval.bag import BagError, BagSource
from vla_ros.eval.simbag import write_sim_bag

MS = 1_000_000
ARM = [f"joint_{i}" for i in range(1, 6)]
EVAL = ["--card", "bundled", "--latency", "5", "--json"]


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 1.5 s expert episode (sqlite3)."""
    return write_sim_bag(tmp_path_factory.mktemp("faults") / "small", episodes=1, duration_s=1.5)


def _eval(bag: Path, capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, dict, str]:
    rc = main(["eval", str(bag), *EVAL, *extra])
    out = capsys.readouterr()
    return rc, json.loads(out.out) if out.out.strip() else {}, out.err


def _stamp(msg: object) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


# ---- split joint states ------------------------------------------------------------------------


def test_joint_state_split_over_two_publishers_is_merged_per_joint(
    small_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Arm driver (joint_1..5) every tick, gripper driver (joint_6) every other tick 3 ms later."""
    k = {"n": 0}

    def split(log_ns: int, topic: str, msgtype: str, msg: object):
        if topic != "/joint_states":
            return [(log_ns, topic, msgtype, msg)]
        k["n"] += 1
        out = [(log_ns, topic, msgtype, joint_state(msg, ARM, list(msg.position[:5])))]
        if k["n"] % 2:
            grip = joint_state(msg, ["joint_6"], [float(msg.position[5])], _stamp(msg) + 3 * MS)
            out.append((log_ns + 3 * MS, topic, msgtype, grip))
        return out

    bag = rewrite_bag(small_bag, tmp_path / "split", split)
    rc, whole, _ = _eval(small_bag, capsys)
    assert rc == 0
    rc, m, err = _eval(bag, capsys)
    assert rc == 0, err
    n = k["n"]  # arm messages; (n + 1) // 2 gripper messages, each at its own stamp
    # a row per distinct stamp from the first gripper message on: n arm + (n+1)//2 gripper - 1 early arm row
    assert m["reference"]["samples"] == n + (n + 1) // 2 - 1
    assert m["chunks"]["accepted"] >= whole["chunks"]["accepted"] - 2 > 0
    assert set(m["commands"]["mae_by_joint"]) == {*ARM, "joint_6"}
    assert all(np.isfinite(v) for v in m["commands"]["mae_by_joint"].values())
    # the policy still follows the demonstration (its state now lags by up to one gripper period)
    assert m["commands"]["mae"] < 2 * whole["commands"]["mae"]


# ---- topic names -------------------------------------------------------------------------------


def test_topics_recorded_without_a_leading_slash_match_either_spelling(
    small_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    def strip(log_ns: int, topic: str, msgtype: str, msg: object):
        out = [(log_ns, topic.lstrip("/"), msgtype, msg)]
        if topic == "/joint_states":
            out.append((log_ns, "AAA", msgtype, msg))
        return out

    bag = rewrite_bag(small_bag, tmp_path / "noslash", strip, storage="mcap")
    with BagSource(bag) as src:
        assert set(src.topics()) == {
            "/camera/front/image_raw",
            "/camera/wrist/image_raw",
            "/joint_states",
            "/vla/instruction",
            "/AAA",
        }
        for name in ("AAA", "/AAA", "joint_states", "/joint_states"):
            assert src.require(name, ("sensor_msgs/msg/JointState",), "x", param="y").count == 151
        got = [(t, topic) for t, topic, _ in src.messages(["AAA", "/joint_states"])]
        assert len(got) == 302 and {topic for _, topic in got} == {"/AAA", "/joint_states"}
    rc, base, _ = _eval(small_bag, capsys)
    rc, m, err = _eval(bag, capsys)
    assert rc == 0, err
    assert m["chunks"]["accepted"] == base["chunks"]["accepted"] > 0
    assert m["commands"]["mae"] == pytest.approx(base["commands"]["mae"])
    cams = "-p", "cameras=[front=camera/front/image_raw, wrist=/camera/wrist/image_raw]"
    for ref in ("AAA", "/AAA"):
        rc, r, err = _eval(bag, capsys, "--reference", ref, *cams)
        assert rc == 0, err
        assert r["commands"]["mae"] == pytest.approx(base["commands"]["mae"])


# ---- nothing to evaluate -----------------------------------------------------------------------


def test_eval_and_tune_fail_when_nothing_could_be_evaluated(
    small_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Cameras stamped 0 (a driver that does not stamp): no chunk; eval exits 1, tune writes nothing."""

    def unstamped(log_ns: int, topic: str, msgtype: str, msg: object):
        if topic.startswith("/camera/"):
            msg = dataclasses.replace(msg, header=stamped(msg.header, 0))
        return [(log_ns, topic, msgtype, msg)]

    bag = rewrite_bag(small_bag, tmp_path / "unstamped", unstamped)
    out = tmp_path / "m.json"
    rc, m, err = _eval(bag, capsys, "--out", str(out))
    assert rc == 1
    assert m["policy"]["chunks"] == 0 and m["evaluated"] is False
    assert "nothing could be evaluated: the policy produced no chunk in" in err
    assert f"({'rejected'} x{m['policy']['steps']})" in err  # every step, and why
    assert json.loads(out.read_text())["error"] == m["error"]
    tuned = tmp_path / "tuned.yaml"
    rc = main(["tune", str(bag), "--card", "bundled", "--latency", "5", "--write", str(tuned)])
    assert rc == 1 and not tuned.exists() and not tuned.with_name("tuned.yaml.tmp").exists()
    assert "nothing could be evaluated, nothing written" in capsys.readouterr().err


def test_tune_writes_nothing_when_every_candidate_scores_inf(
    small_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Joint states 2 ms old on arrival, state_timeout 1 ms: chunks compare, no command ever does."""
    tuned = tmp_path / "tuned.yaml"
    args = ["tune", str(small_bag), "--card", "bundled", "--latency", "5", "-e", "state_timeout_s=0.001"]
    rc = main(
        [*args, "--objective", "tracking", "--grid", "mode=latest,blend", "--write", str(tuned), "--json"]
    )
    res = capsys.readouterr()
    assert rc == 1 and not tuned.exists()
    assert [c["score"] for c in json.loads(res.out)["candidates"]] == [float("inf")] * 3
    assert json.loads(res.out)["written"] is None
    assert "every one of the 3 settings scored inf on objective 'tracking'" in res.err


# ---- storage -----------------------------------------------------------------------------------


def _all(path: Path, topics=("/joint_states", "/camera/front/image_raw")) -> list[tuple[int, str, bytes]]:
    with BagSource(path) as bag:
        return [
            (t, topic, np.asarray(msg.position if topic == "/joint_states" else msg.data).tobytes())
            for t, topic, msg in bag.messages(list(topics))
        ]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_storage_from_magic_bytes_without_metadata(small_bag: Path, tmp_path: Path, storage: str) -> None:
    bag = rewrite_bag(small_bag, tmp_path / "b", lambda *m: [m], storage=storage)
    expected = _all(bag)
    (bag / "metadata.yaml").unlink()
    with BagSource(bag) as src:
        assert "metadata.yaml is missing" in src.notes[0] and "ros2 bag reindex" in src.notes[0]
        assert src.topics()["/joint_states"].count == 151
    assert _all(bag) == expected
    lone = next(p for p in bag.iterdir())
    renamed = lone.rename(tmp_path / "recording.bin")  # a storage file alone, any name
    assert _all(renamed) == expected


def test_metadata_naming_another_storage_and_wrong_counts(small_bag: Path, tmp_path: Path) -> None:
    bag = rewrite_bag(small_bag, tmp_path / "b", lambda *m: [m], storage="mcap")
    expected = _all(bag)
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())
    info = meta["rosbag2_bagfile_information"]
    (bag / "b.mcap").rename(bag / "b_0.db3")
    info["storage_identifier"] = "sqlite3"
    info["relative_file_paths"] = ["b_0.db3"]
    info["message_count"] = 0
    for t in info["topics_with_message_count"]:
        t["message_count"] = 0
    (bag / "metadata.yaml").write_text(yaml.safe_dump(meta))
    with BagSource(bag) as src:
        assert src.notes == [
            "metadata.yaml says storage 'sqlite3' but b_0.db3 is mcap by its first bytes; read as mcap"
        ]
        assert src.topics()["/joint_states"].count == 151
    assert _all(bag) == expected


def test_truncated_mcap_gives_the_messages_up_to_the_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A 3 s mcap (2+ chunks of 1 MiB) cut inside its last chunk, and cut right after a chunk."""
    bag = write_sim_bag(tmp_path / "b", episodes=1, duration_s=3.0, storage="mcap")
    topics = ("/joint_states", "/camera/front/image_raw", "/camera/wrist/image_raw", "/vla/instruction")
    full = _all(bag, topics)
    file = bag / "b.mcap"
    data = file.read_bytes()
    file.write_bytes(data[: int(len(data) * 0.75)])
    with BagSource(bag) as src:
        assert "b.mcap is cut short at byte" in src.notes[0] and "mcap recover" in src.notes[0]
        kept = src.topics()["/joint_states"].count
    got = _all(bag, topics)
    assert 100 < len(got) < len(full) and got == full[: len(got)]  # exactly the messages before the cut
    assert 0 < kept < 301
    rc, m, err = _eval(bag, capsys)
    assert rc == 0 and m["chunks"]["accepted"] > 10, err
    assert "bag note: b.mcap is cut short" in err and m["bag_notes"][0].startswith("b.mcap is cut short")
    # cut after the header: nothing complete; the error names the truncation and both fixes
    file.write_bytes(data[:40])
    with pytest.raises(
        BagError, match=r"cut short at byte \d+ of 40 .*no complete message.*ros2 bag reindex.*mcap recover"
    ):
        BagSource(bag)


def test_channels_the_replay_does_not_need_never_stop_it(
    small_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """An unparsable definition, a type nobody defines, undecodable bytes: only on unneeded topics."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    for storage in ("sqlite3", "mcap"):
        dst = tmp_path / storage
        with (
            BagSource(small_bag) as src,
            Writer(dst, version=9, storage_plugin=getattr(StoragePlugin, storage.upper())) as w,
        ):
            types = {n: i.msgtype for n, i in src.topics().items()}
            conns = {n: w.add_connection(n, t, typestore=ts) for n, t in types.items()}
            broken = w.add_connection(
                "/weird", "my_pkg/msg/Foo", msgdef="int32 x\nnot a field !!", rihs01="RIHS01_" + "0" * 64
            )
            garbage = w.add_connection("/diag", "sensor_msgs/msg/JointState", typestore=ts)
            for log_ns, topic, msg in src.messages(list(types)):
                w.write(conns[topic], log_ns, ts.serialize_cdr(msg, types[topic]))
                if topic == "/joint_states":
                    w.write(broken, log_ns, b"\x00\x01\x00\x00\x07\x00\x00\x00")
                    w.write(garbage, log_ns, b"\x00\x01\x00\x00\xff")
            for i in range(3):  # three corrupt messages on a needed topic: skipped and counted
                w.write(conns["/joint_states"], src.start_ns + 500 * MS + i, b"\x00\x01\x00\x00\xff\xff")
        with BagSource(dst) as bag:
            with pytest.raises(
                BagError, match=r"'/weird' \(my_pkg/msg/Foo\) cannot be decoded: its recorded definition"
            ):
                bag.require("/weird", ("my_pkg/msg/Foo",), "x", param="y")
            assert bag.optional("/weird", ("my_pkg/msg/Foo",)) is None
            assert sum(1 for _ in bag.messages(["/diag"])) == 0 and bag.undecodable["/diag"] == 151
        rc, m, err = _eval(dst, capsys)
        assert rc == 0, err
        assert m["chunks"]["accepted"] > 10
        assert any(
            n.startswith("skipped 3 messages on /joint_states: a sensor_msgs/msg/JointState message")
            for n in m["bag_notes"]
        )


def test_zstd_compressed_storage_file(small_bag: Path, tmp_path: Path) -> None:
    """``compression_mode: file``: a .db3.zstd storage file is found by its magic and decompressed."""
    from backports import zstd

    bag = tmp_path / "z"
    shutil.copytree(small_bag, bag)
    db = next(bag.glob("*.db3"))
    Path(f"{db}.zstd").write_bytes(zstd.compress(db.read_bytes()))
    db.unlink()
    (bag / "metadata.yaml").unlink()
    assert _all(bag) == _all(small_bag)


def test_ros1_bag_and_relative_replay_topics(tmp_path: Path) -> None:
    """A ROS 1 .bag reads through the same per-topic definitions; replay topics are made absolute."""
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    from vla_ros.eval.replay import ReplayTopics

    ts = get_typestore(Stores.ROS1_NOETIC)
    T = ts.types
    path = tmp_path / "r1.bag"
    with Writer(path) as w:
        c = w.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ts)
        for i in range(4):
            header = T["std_msgs/msg/Header"](
                seq=i, stamp=T["builtin_interfaces/msg/Time"](sec=1, nanosec=i), frame_id=""
            )
            msg = T["sensor_msgs/msg/JointState"](
                header=header,
                name=["a"],
                position=np.array([i / 2]),
                velocity=np.zeros(0),
                effort=np.zeros(0),
            )
            w.write(c, 10**9 + i, ts.serialize_ros1(msg, c.msgtype))
    with BagSource(path) as bag:
        got = [(t, topic, float(m.position[0]), _stamp(m)) for t, topic, m in bag.messages(["joint_states"])]
    assert got == [(10**9 + i, "/joint_states", i / 2, 10**9 + i) for i in range(4)]
    rel = ReplayTopics(cameras={"front": "camera/front"}, joint_states="joint_states", reference="AAA")
    assert rel.canonical() == ReplayTopics({"front": "/camera/front"}, "/joint_states", None, "/AAA")
