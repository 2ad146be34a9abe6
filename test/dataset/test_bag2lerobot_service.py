"""vla-ros bag2lerobot --episode-service: episodes from recorded service calls, on real rosbag2 files.

The bags are a sim-arm recording (write_sim_bag: one 2 s take, header stamps 1.000..3.000 s, a
camera frame and a joint state stamped at every 0.1 s) copied with rosbags into a new bag that
also holds ``/record_episode/_service_event``, written as ``ros2 bag record --services`` leaves
it: per call a REQUEST_SENT (client, stamped 30 ms before), a REQUEST_RECEIVED (service), a
RESPONSE_SENT and a RESPONSE_RECEIVED, all with the call's client_gid and sequence number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bag2lerobot_helpers import bag_truth, read_data_files

from vla_ros.cli import main
from vla_ros.eval.simbag import write_sim_bag

NS = 1_000_000_000
MS = 1_000_000
TOPIC = "/record_episode/_service_event"
DELIMITER = "=" * 80
#: .srv texts as the packages install them (request --- response)
SRV = {
    "std_srvs/srv/SetBool": "bool data # e.g. for hardware enabling / disabling\n---\n"
    "bool success   # indicate successful run of triggered service\n"
    "string message # informational, e.g. for error messages\n",
    "std_srvs/srv/Trigger": "---\nbool success\nstring message\n",
    "example_interfaces/srv/AddTwoInts": "int64 a\nint64 b\n---\nint64 sum\n",
    "rec_msgs/srv/SetRecording": "std_msgs/Header header\nbool data\n---\nbool success\n",
}
PARAMS = """/**/policy_node:
  ros__parameters:
    cameras: ["front=/camera/front/image_raw"]
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("sim")
    bag = write_sim_bag(tmp / "bag", episodes=1, duration_s=2.0, cameras=("front",))
    params = tmp / "params.yaml"
    params.write_text(PARAMS)
    return {"bag": bag, "params": params, "truth": bag_truth(bag, {"front": "/camera/front/image_raw"})}


def event_store(srv: str) -> Any:
    """A typestore with ``srv``'s event type, laid out as rosidl generates it (written out here)."""
    from rosbags.interfaces import Nodetype
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)  # has service_msgs/msg/ServiceEventInfo
    pkg, _, name = srv.split("/")
    request, response = SRV[srv].split("---\n")
    types = {}
    for part, text in (("Request", request), ("Response", response)):
        types[f"{srv}_{part}"] = next(iter(get_types_from_msg(text, f"{pkg}/msg/{name}_{part}").values()))
    types[f"{srv}_Event"] = (
        [],
        [
            ("info", (Nodetype.NAME, "service_msgs/msg/ServiceEventInfo")),
            ("request", (Nodetype.SEQUENCE, ((Nodetype.NAME, f"{srv}_Request"), 1))),
            ("response", (Nodetype.SEQUENCE, ((Nodetype.NAME, f"{srv}_Response"), 1))),
        ],
    )
    store.register(types)
    return store


def definition(srv: str, layout: str) -> str:
    """The event type's definition as a bag stores it.

    ``rosbag2``: what Jazzy's and Kilted's recorder stores (LocalMessageDefinitionSource: an
    ``SRV:`` section holding the .srv, then ``MSG:`` sections of the types it uses) as the event
    type's definition (MCAP's schema); ``rosbag2-sqlite3``: the same filed under the service's
    name (:func:`file_under_service`);
    ``message``: the generated event message with every type in a ``MSG:`` section (the layout
    of any other message; rosbags cannot generate it for srv types, so it is written out here);
    ``none``: no definition.
    """
    if layout in ("none", "rosbag2-sqlite3"):
        return ""
    request, response = SRV[srv].split("---\n")
    header = "MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n"
    time = "MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n"
    deps = [header, time] if "Header" in SRV[srv] else []
    if layout == "rosbag2":
        return "\n".join(f"{DELIMITER}\n{part}" for part in [f"SRV: {srv}\n{SRV[srv]}", *deps])
    info = (
        "MSG: service_msgs/msg/ServiceEventInfo\nuint8 REQUEST_SENT = 0\nuint8 REQUEST_RECEIVED = 1\n"
        "uint8 RESPONSE_SENT = 2\nuint8 RESPONSE_RECEIVED = 3\nuint8 event_type\n"
        "builtin_interfaces/Time stamp\nchar[16] client_gid\nint64 sequence_number\n"
    )
    top = (
        f"service_msgs/msg/ServiceEventInfo info\n{srv}_Request[<=1] request\n{srv}_Response[<=1] response\n"
    )
    parts = [info, time, f"MSG: {srv}_Request\n{request}", f"MSG: {srv}_Response\n{response}"]
    parts += [header] if deps else []
    return top + "".join(f"{DELIMITER}\n{part}" for part in parts)


def service_bag(
    src: Path,
    dst: Path,
    calls: list[tuple[float, Any, bool | None]],
    srv: str = "std_srvs/srv/SetBool",
    layout: str = "rosbag2",
    contents: bool = True,
) -> Path:
    """``src`` copied into ``dst`` plus the events of ``calls``: (stamp s, request data, success).

    Each call is seen by both sides (same client_gid and sequence number): REQUEST_SENT stamped
    30 ms before REQUEST_RECEIVED, responses 1 and 2 ms after; each logged 2 ms after its stamp.
    ``contents=False``: introspection at METADATA (empty request and response sequences).
    """
    store = event_store(srv)
    T = store.types
    gid = np.arange(1, 17, dtype=np.uint8)
    raw = []
    for seq, (t_s, data, success) in enumerate(calls, start=1):
        t = round(t_s * NS)
        request = [_message(T, f"{srv}_Request", data=data, t=t)] if contents else []
        response = [_message(T, f"{srv}_Response", success=success)] if contents else []
        for kind, stamp in ((0, t - 30 * MS), (1, t), (2, t + MS), (3, t + 2 * MS)):
            info = T["service_msgs/msg/ServiceEventInfo"](
                event_type=kind,
                stamp=T["builtin_interfaces/msg/Time"](sec=stamp // NS, nanosec=stamp % NS),
                client_gid=gid,
                sequence_number=seq,
            )
            msg = T[f"{srv}_Event"](
                info=info, request=request if kind < 2 else [], response=response if kind >= 2 else []
            )
            raw.append((stamp + 2 * MS, store.serialize_cdr(msg, f"{srv}_Event")))
    copy_with_events(src, dst, raw, f"{srv}_Event", definition(srv, layout))
    if layout == "rosbag2-sqlite3":
        file_under_service(dst, srv, definition(srv, "rosbag2"))
    return dst


def file_under_service(bag: Path, srv: str, text: str) -> None:
    """File ``text`` in the bag's message_definitions table under the service's name, as
    rosbag2's sqlite3 storage does (SequentialWriter asks for the definition of ``srv``, not of
    ``srv_Event``; the encoding is ``unknown`` when the .srv uses no other type)."""
    import sqlite3

    (db,) = bag.glob("*.db3")
    with sqlite3.connect(db) as con:
        con.execute(
            "INSERT INTO message_definitions (topic_type, encoding, encoded_message_definition, "
            "type_description_hash) VALUES (?, ?, ?, ?)",
            (srv, "ros2msg" if "MSG:" in text else "unknown", text, ""),
        )


def _message(T: Any, msgtype: str, **values: Any) -> Any:
    """A request or response of ``msgtype`` with the given values for the fields it has."""
    fields = T[msgtype].__dataclass_fields__
    args: dict[str, Any] = {}
    for name in fields:
        if name == "header":
            t = values["t"]
            stamp = T["builtin_interfaces/msg/Time"](sec=t // NS, nanosec=t % NS)
            args[name] = T["std_msgs/msg/Header"](stamp=stamp, frame_id="")
        elif name in ("data", "success"):
            args[name] = bool(values[name])
        elif name == "message":
            args[name] = "" if values.get("success", True) else "already recording"
        else:
            args[name] = 0
    return T[msgtype](**args)


def run(
    tmp: Path, sim: dict[str, Any], bag: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    out = tmp / "ds"
    args = ["bag2lerobot", str(bag), "--params", str(sim["params"]), "--out", str(out), "--fps", "10"]
    rc = main([*args, "--json", *extra])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def check_episodes(out: Path, truth: dict[str, Any], firsts_s: list[float], lengths: list[int]) -> None:
    """The dataset holds ``lengths[e]`` frames from stamp ``firsts_s[e]`` on, 0.1 s apart, each the
    bag's joint state at that stamp with the next frame's as the action, and its camera frame."""
    frames = read_data_files(out)
    episode = np.asarray(frames["episode_index"])
    assert [int((episode == e).sum()) for e in range(len(lengths))] == lengths
    assert len(episode) == sum(lengths)
    for e, first in enumerate(firsts_s):
        rows = np.nonzero(episode == e)[0]
        for k, row in enumerate(rows):
            t = round(first * NS) + k * NS // 10
            joints = truth["joints"][t]
            nxt = truth["joints"][t + NS // 10]
            np.testing.assert_array_equal(
                frames["observation.state"][row], np.float32([joints[j] for j in sorted(joints)])
            )
            np.testing.assert_array_equal(frames["action"][row], np.float32([nxt[j] for j in sorted(nxt)]))
            np.testing.assert_array_equal(
                frames["observation.images.front"][row], truth["cameras"]["front"][t]
            )


# true 1.2 s -> false 1.8 s: 1.2..1.8 s on the 10 fps grid is 7 frames, the last without a next state;
# true 2.3 s, never ended: 2.3..3.0 s (the last sample) is 8 frames, 7 kept. Ignored: an end before any
# start (1.1 s), a start while open (1.5 s), a start the service refused (2.0 s, success false).
SET_BOOL_CALLS = [(1.1, False, True), (1.2, True, True), (1.5, True, True), (1.8, False, True)]
SET_BOOL_CALLS += [(2.0, True, False), (2.3, True, True)]
NOTES = [
    "--episode-service /record_episode: an end at 0.100 s without an open episode: ignored",
    "--episode-service /record_episode: a start at 0.500 s while the episode started at 0.200 s is open: "
    "ignored",
    "--episode-service /record_episode: the call at 1.000 s was answered success=false (already recording): "
    "ignored",
    "--episode-service /record_episode: the episode started at 1.300 s has no end: it ends at the last "
    "recorded sample (2.000 s)",
]


@pytest.mark.parametrize(
    ("srv", "layout"),
    [
        ("std_srvs/srv/SetBool", "rosbag2"),
        ("std_srvs/srv/SetBool", "message"),
        ("std_srvs/srv/SetBool", "none"),
        ("rec_msgs/srv/SetRecording", "rosbag2"),
        (
            "rec_msgs/srv/SetRecording",
            "rosbag2-sqlite3",
        ),  # any request with a bool data; its Header from MSG:
    ],
)
def test_set_bool_calls_are_the_episodes(
    tmp_path: Path, sim: dict[str, Any], capsys: pytest.CaptureFixture[str], srv: str, layout: str
) -> None:
    bag = service_bag(sim["bag"], tmp_path / "bag", SET_BOOL_CALLS, srv, layout)
    rc, out, err = run(tmp_path, sim, bag, capsys, "--episode-service", "record_episode")
    assert rc == 0, err
    result = json.loads(out)
    assert [e["first_stamp_ns"] for e in result["episodes"]] == [1_200_000_000, 2_300_000_000]
    assert [e["length"] for e in result["episodes"]] == [6, 7]
    notes = NOTES if "message" in SRV[srv] else [n.replace(" (already recording)", "") for n in NOTES]
    assert [n for n in result["notes"] if "--episode-service" in n] == notes
    assert result["report"] == []
    check_episodes(tmp_path / "ds", sim["truth"], [1.2, 2.3], [6, 7])


def test_trigger_calls_alternate_start_and_end(
    tmp_path: Path, sim: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    calls = [(1.2, None, True), (1.8, None, True), (2.3, None, True), (2.7, None, True)]
    bag = service_bag(sim["bag"], tmp_path / "bag", calls, "std_srvs/srv/Trigger")
    rc, out, err = run(tmp_path, sim, bag, capsys, "--episode-service", "/record_episode")
    assert rc == 0, err
    episodes = json.loads(out)["episodes"]
    assert [(e["first_stamp_ns"], e["length"]) for e in episodes] == [(1_200_000_000, 6), (2_300_000_000, 4)]
    check_episodes(tmp_path / "ds", sim["truth"], [1.2, 2.3], [6, 4])


@pytest.mark.parametrize(
    ("srv", "layout", "calls", "contents", "option", "says"),
    [
        (
            "std_srvs/srv/SetBool",
            "rosbag2",
            [(1.2, True, True)],
            True,
            "/start_recording",
            "--episode-service /start_recording: /start_recording/_service_event is not in the bag; "
            "recorded services: /record_episode (std_srvs/srv/SetBool)",
        ),
        (
            "example_interfaces/srv/AddTwoInts",
            "rosbag2",
            [(1.2, None, True)],
            True,
            "/record_episode",
            "--episode-service /record_episode: example_interfaces/srv/AddTwoInts cannot mark episodes "
            "(its request has a, b)",
        ),
        (
            "example_interfaces/srv/AddTwoInts",
            "none",
            [(1.2, None, True)],
            True,
            "/record_episode",
            "service event type example_interfaces/srv/AddTwoInts_Event: the bag holds no definition of it",
        ),
        (
            "std_srvs/srv/SetBool",
            "rosbag2",
            [(1.2, True, True), (1.8, False, True)],
            False,
            "/record_episode",
            "2 of 2 calls were recorded without their request (service introspection at METADATA)",
        ),
        (
            "std_srvs/srv/SetBool",
            "rosbag2",
            [(1.2, False, True), (1.8, True, False)],
            True,
            "/record_episode",
            "--episode-service /record_episode: no episode starts in the bag (2 calls on "
            "/record_episode/_service_event; a SetBool call with data true starts one)",
        ),
    ],
    ids=["not-recorded", "wrong-type", "no-definition", "metadata-only", "no-start"],
)
def test_bad_service_logs_exit_2_naming_the_service(
    tmp_path: Path,
    sim: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    srv: str,
    layout: str,
    calls: list[tuple[float, Any, bool | None]],
    contents: bool,
    option: str,
    says: str,
) -> None:
    bag = service_bag(sim["bag"], tmp_path / "bag", calls, srv, layout, contents)
    rc, _out, err = run(tmp_path, sim, bag, capsys, "--episode-service", option)
    assert rc == 2, err
    assert says in err
    assert not (tmp_path / "ds").exists()


@pytest.mark.ros
def test_live_service_events_from_both_sides_count_once(
    ros: Any, tmp_path: Path, sim: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Events of a real rclpy SetBool service and client, both introspected at CONTENTS: the
    bytes rosidl serializes, with the client_gid and sequence numbers the rmw gives each side.
    Each call's events are moved in time (their offsets kept) onto the sim recording."""
    from rclpy.qos import QoSProfile
    from rclpy.serialization import serialize_message
    from rclpy.service_introspection import ServiceIntrospectionState
    from std_srvs.srv import SetBool

    def handle(request: Any, response: Any) -> Any:
        response.success, response.message = True, ""
        return response

    server, teleop = ros.make_node("episode_recorder"), ros.make_node("teleop")
    service = server.create_service(SetBool, "record_episode", handle)
    client = teleop.create_client(SetBool, "record_episode")
    qos = QoSProfile(depth=100)
    for node, side in ((server, service), (teleop, client)):
        side.configure_introspection(node.get_clock(), qos, ServiceIntrospectionState.CONTENTS)
    events = ros.subscribe(TOPIC, SetBool.Event, qos)
    assert ros.wait_until(lambda: ros.helper.count_publishers(TOPIC) == 2)
    assert client.wait_for_service(timeout_sec=5.0)
    planned = {1: (1.2, True), 2: (1.8, False), 3: (2.3, True)}  # sequence number -> (stamp s, data)
    for _, data in planned.values():
        future = client.call_async(SetBool.Request(data=data))
        assert ros.wait_until(future.done)
    recorded = events.wait_for(12)  # 4 events per call: sent, received, response sent and received

    def ns(t: Any) -> int:
        return int(t.sec) * NS + int(t.nanosec)

    received = {m.info.sequence_number: ns(m.info.stamp) for m in recorded if m.info.event_type == 1}
    assert sorted(received) == [1, 2, 3]
    raw = []
    for m in recorded:
        t = (
            round(planned[m.info.sequence_number][0] * NS)
            + ns(m.info.stamp)
            - received[m.info.sequence_number]
        )
        m.info.stamp.sec, m.info.stamp.nanosec = divmod(t, NS)
        raw.append((t + 2 * MS, serialize_message(m)))
    srv = "std_srvs/srv/SetBool"
    bag = copy_with_events(sim["bag"], tmp_path / "bag", raw, f"{srv}_Event", definition(srv, "rosbag2"))
    rc, out, err = run(tmp_path, sim, bag, capsys, "--episode-service", "/record_episode")
    assert rc == 0, err
    result = json.loads(out)
    assert [(e["first_stamp_ns"], e["length"]) for e in result["episodes"]] == [
        (1_200_000_000, 6),
        (2_300_000_000, 7),
    ]
    assert [n for n in result["notes"] if "--episode-service" in n] == NOTES[-1:]


def copy_with_events(src: Path, dst: Path, raw: list[tuple[int, bytes]], msgtype: str, msgdef: str) -> Path:
    """``src`` copied into ``dst`` plus ``msgtype`` service events given as ``(log ns, CDR bytes)``
    on TOPIC, whose definition in the bag is ``msgdef``."""
    from rosbags.rosbag2 import Reader, Writer

    with Reader(src) as reader, Writer(dst, version=9) as writer:
        conns = {
            c.id: writer.add_connection(c.topic, c.msgtype, msgdef=c.msgdef.data, rihs01=c.digest)
            for c in reader.connections
        }
        for conn, log, data in reader.messages():
            writer.write(conns[conn.id], log, data)
        event = writer.add_connection(TOPIC, msgtype, msgdef=msgdef, rihs01="RIHS01_" + "0" * 64)
        for log, data in sorted(raw, key=lambda r: r[0]):
            writer.write(event, log, bytes(data))
    return dst
