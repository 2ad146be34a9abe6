"""Episode windows from a service log: the calls of a recording service (``--episode-service``).

A call of ``/record_episode`` is recorded (``ros2 bag record --services /record_episode``, with
the service's introspection on) as up to four service events on
``/record_episode/_service_event`` (:mod:`~vla_ros.dataset.service_types`): REQUEST_SENT (0, the
client's), REQUEST_RECEIVED (1, the service's), RESPONSE_SENT (2), RESPONSE_RECEIVED (3), all
with the call's ``client_gid`` and ``sequence_number``.

- **One call, one boundary.** The calls are read from one side: the service's events
  (REQUEST_RECEIVED, RESPONSE_SENT) when any were recorded, else the clients' (REQUEST_SENT,
  RESPONSE_RECEIVED); within a side, events with the same ``(client_gid, sequence_number)`` are
  one call. The two sides' ``client_gid`` need not agree (they differ under Jazzy's rmw), so a
  call recorded on both sides is never matched across them. Its time is ``info.stamp`` of its
  request event (the service's: when it acted on it); a call with no request event is not used.
  Boundaries are header-stamp times: an episode holds the samples *stamped* inside it.
- **What a call means.** A request with a ``bool data`` field (``std_srvs/srv/SetBool``):
  ``true`` starts an episode, ``false`` ends it. A request without fields
  (``std_srvs/srv/Trigger``, ``std_srvs/srv/Empty``): calls alternate start, end, start, ...
  Other request types are refused. A call answered ``success: false`` (a recorded response
  with a ``success`` field) did not take effect and is not a boundary.
- **Unmatched calls** are reported, never guessed: a start while an episode is open and an end
  while none is are ignored; an episode still open at the end of the log ends at the last
  recorded sample.
"""

from __future__ import annotations

from dataclasses import dataclass

from vla_ros.dataset.align import NS, Window
from vla_ros.dataset.mapping import DatasetError
from vla_ros.dataset.service_types import ServiceEventTypes, service_type
from vla_ros.eval.bag import BagSource, canonical_topic, resolve_topic

EVENT_SUFFIX = "/_service_event"
REQUEST_SENT, REQUEST_RECEIVED, RESPONSE_SENT, RESPONSE_RECEIVED = 0, 1, 2, 3


@dataclass
class Call:
    """One service call: its stamp [ns], its ``data`` (None: no field, or not recorded), whether
    its response said ``success`` (None: no such response recorded)."""

    stamp_ns: int
    data: bool | None = None
    success: bool | None = None
    message: str = ""


def event_topic(service: str, namespace: str = "/") -> str:
    """``record_episode`` -> ``/record_episode/_service_event`` (a full event topic is kept)."""
    name = resolve_topic(service, namespace).rstrip("/")
    return name if name.endswith(EVENT_SUFFIX) else name + EVENT_SUFFIX


def check_service(bag: BagSource, types: ServiceEventTypes, service: str, namespace: str) -> tuple[str, str]:
    """``(event topic, kind)`` of ``--episode-service service``; kind ``'set_bool'`` or ``'toggle'``.

    Raises :class:`DatasetError` naming the service when the bag has no event topic for it (the
    recorded services are listed), it is not a service event type, or its request is neither a
    ``bool data`` nor empty; :class:`~vla_ros.eval.bag.BagError` when it cannot be decoded.
    """
    topic = event_topic(service, namespace)
    service = topic[: -len(EVENT_SUFFIX)]
    info = bag.topics().get(canonical_topic(topic))
    if info is None or service_type(info.msgtype) is None:
        recorded = [
            f"{t.name[: -len(EVENT_SUFFIX)]} ({service_type(t.msgtype)})"
            for t in bag.topics().values()
            if t.name.endswith(EVENT_SUFFIX) and service_type(t.msgtype)
        ]
        what = f"is {info.msgtype}, not a service event type" if info else "is not in the bag"
        raise DatasetError(
            f"--episode-service {service}: {topic} {what}; recorded services: "
            f"{', '.join(recorded) or 'none'}. Record the service's calls with `ros2 bag record "
            "--services <name>` (Jazzy and later) with its introspection on"
        )
    bag.require(topic, [info.msgtype], "episode boundaries", param="--episode-service")
    fields = {name: desc for name, desc in types.request_fields[info.msgtype]}
    fields.pop("structure_needs_at_least_one_member", None)
    if not fields:
        return topic, "toggle"
    if _is_bool(fields.get("data")):
        return topic, "set_bool"
    listing = ", ".join(fields)
    raise DatasetError(
        f"--episode-service {service}: {service_type(info.msgtype)} cannot mark episodes (its request "
        f"has {listing}); use a service whose request is a `bool data` (std_srvs/srv/SetBool: true "
        "starts, false ends) or empty (std_srvs/srv/Trigger: calls alternate start and end)"
    )


def _is_bool(desc: object) -> bool:
    from rosbags.interfaces import Nodetype

    return isinstance(desc, tuple) and desc[0] == Nodetype.BASE and desc[1][0] == "bool"


def read_calls(bag: BagSource, topic: str) -> list[Call]:
    """The service calls on ``topic`` sorted by stamp (see the module docstring)."""
    # one side only: the service's (REQUEST_RECEIVED + RESPONSE_SENT) when it was recorded, else
    # the clients'. The two sides' client_gid need not agree (they differ on Jazzy's rmw), so a
    # call recorded on both sides is never matched across them: it would count twice.
    sides: dict[str, tuple[dict[tuple[bytes, int], tuple[int, object]], dict[tuple[bytes, int], object]]]
    sides = {"service": ({}, {}), "client": ({}, {})}
    side_of = {
        REQUEST_RECEIVED: ("service", 0),
        RESPONSE_SENT: ("service", 1),
        REQUEST_SENT: ("client", 0),
        RESPONSE_RECEIVED: ("client", 1),
    }
    for _log, _topic, msg in bag.messages([topic]):
        kind = int(msg.info.event_type)
        if kind not in side_of:
            continue
        key = (bytes(bytearray(msg.info.client_gid)), int(msg.info.sequence_number))
        stamp = int(msg.info.stamp.sec) * NS + int(msg.info.stamp.nanosec)
        side, what = side_of[kind]
        if what == 0:
            sides[side][0].setdefault(key, (stamp, msg.request[0] if len(msg.request) else None))
        elif len(msg.response):
            sides[side][1].setdefault(key, msg.response[0])
    requests, responses = sides["service"] if sides["service"][0] else sides["client"]
    calls = []
    for key, (stamp, request) in requests.items():
        call = Call(stamp)
        if request is not None and hasattr(request, "data"):
            call.data = bool(request.data)
        response = responses.get(key)
        if response is not None and hasattr(response, "success"):
            call.success = bool(response.success)
            call.message = str(getattr(response, "message", ""))
        calls.append(call)
    return sorted(calls, key=lambda c: c.stamp_ns)


def service_windows(
    calls: list[Call], kind: str, end_ns: int, service: str, origin_ns: int
) -> tuple[list[Window], list[str]]:
    """Episode windows (header-stamp clock) from ``calls`` and the sentences reporting what was
    ignored or closed at ``end_ns`` (the last recorded sample's stamp). Times in the sentences
    are seconds after ``origin_ns`` (the first recorded sample's stamp). Raises
    :class:`DatasetError` when SetBool calls were recorded without their request contents
    (introspection at METADATA)."""
    report: list[str] = []
    label = f"--episode-service {service}"

    def at(ns: int) -> str:
        return f"{(ns - origin_ns) / NS:.3f} s"

    blind = sum(c.data is None for c in calls)
    if kind == "set_bool" and blind:
        raise DatasetError(
            f"{label}: {blind} of {len(calls)} calls were recorded without their request (service "
            "introspection at METADATA); set the service's introspection to CONTENTS, or split "
            "episodes by --episode-topic, --episodes or --gap-s"
        )
    windows: list[Window] = []
    open_at: int | None = None
    accepted = 0
    for call in calls:
        if call.success is False:
            why = f" ({call.message})" if call.message else ""
            report.append(
                f"{label}: the call at {at(call.stamp_ns)} was answered success=false{why}: ignored"
            )
            continue
        start = bool(call.data) if kind == "set_bool" else accepted % 2 == 0
        accepted += 1
        if open_at is None and start:
            open_at = call.stamp_ns
        elif open_at is not None and not start:
            windows.append(Window(open_at, call.stamp_ns, clock="stamp"))
            open_at = None
        elif open_at is not None:
            report.append(
                f"{label}: a start at {at(call.stamp_ns)} while the episode started at {at(open_at)} "
                "is open: ignored"
            )
        else:
            report.append(f"{label}: an end at {at(call.stamp_ns)} without an open episode: ignored")
    if open_at is not None:
        windows.append(Window(open_at, end_ns, clock="stamp"))
        report.append(
            f"{label}: the episode started at {at(open_at)} has no end: it ends at the last recorded "
            f"sample ({at(end_ns)})"
        )
    return windows, report
