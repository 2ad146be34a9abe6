"""Decoding recorded service events (``<pkg>/srv/<Srv>_Event``) with ``rosbags``.

Service introspection (REP 2012; rcl from Iron, ``ros2 bag record --services`` from Jazzy)
publishes every call of a service on ``<service>/_service_event``. The message type rosidl
generates for a service ``pkg/srv/Srv`` is::

    service_msgs/msg/ServiceEventInfo info      # event_type, stamp, client_gid, sequence_number
    pkg/srv/Srv_Request[<=1] request            # empty unless introspection is at CONTENTS
    pkg/srv/Srv_Response[<=1] response

Bags hold its definition in one of three layouts, all read here:

- **rosbag2's** (Jazzy, Kilted: ``LocalMessageDefinitionSource`` stores the ``.srv`` itself): an
  ``SRV: pkg/srv/Srv`` section with the request and the response separated by ``---``, then
  ``MSG:``/``IDL:`` sections of the types they use. ``ServiceEventInfo`` is not in it; it comes
  from ``rosbags``' Jazzy definitions (the same in Jazzy, Kilted and Rolling). In MCAP this is
  the event type's schema; sqlite3 files it under ``pkg/srv/Srv``, where it is read from here.
- **The generated message's**: the event's fields, then a ``MSG:`` section per type (the layout
  of any other message, which tools such as Foxglove expect; ros2/rosbag2#2365).
- **None** (the recording machine lacked the ``.srv``): ``std_srvs`` SetBool, Trigger and Empty,
  whose definitions are unchanged since Dashing, are known here; other types cannot be read.

``rosbags`` names every message ``pkg/msg/Name``; the request and response types are renamed
back to ``pkg/srv/Srv_Request`` / ``_Response`` so the event's fields resolve.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vla_ros.dataset.mapping import DatasetError

EVENT_INFO = "service_msgs/msg/ServiceEventInfo"
_DELIMITER = "=" * 80
_SECTION = re.compile(r"^(MSG|IDL|SRV): *(\S+)$")
_SRV_MSG = re.compile(r"^([^/]+)/srv/msg/")
#: std_srvs definitions (request --- response) for bags recorded without the .srv
KNOWN_SERVICES = {
    "std_srvs/srv/SetBool": "bool data\n---\nbool success\nstring message\n",
    "std_srvs/srv/Trigger": "---\nbool success\nstring message\n",
    "std_srvs/srv/Empty": "---\n",
}


def service_type(msgtype: str) -> str | None:
    """``pkg/srv/Srv`` for an event type ``pkg/srv/Srv_Event``, else None (not a service event)."""
    parts = msgtype.split("/")
    if len(parts) == 3 and parts[1] == "srv" and parts[2].endswith("_Event") and len(parts[2]) > 6:
        return msgtype[: -len("_Event")]
    return None


class ServiceEventTypes:
    """``BagSource(types=...)``: a ``rosbags`` typestore for each service event type it is asked.

    Returns None for other types (the bag's usual rules apply). Raises :class:`DatasetError`
    naming the type when its definition is absent (and not a known ``std_srvs`` one) or does
    not parse. ``bag``: the bag's path, for sqlite3 definitions filed under the service's name
    (:func:`sqlite_definition`). ``request_fields[msgtype]``: the request's
    ``[(name, field description)]`` as ``rosbags`` describes them.
    """

    def __init__(self, bag: Path | None = None) -> None:
        self.bag = bag
        self.stores: dict[str, Any] = {}
        self.request_fields: dict[str, list[tuple[str, Any]]] = {}

    def __call__(self, msgtype: str, msgdef: Any) -> Any | None:
        srv = service_type(msgtype)
        if srv is None:
            return None
        if msgtype not in self.stores:
            from rosbags.typesys import Stores, get_typestore

            try:
                text = str(msgdef.data or "") or sqlite_definition(self.bag, srv)
                types = event_types(msgtype, text)
                store = get_typestore(Stores.EMPTY)
                base = get_typestore(Stores.ROS2_JAZZY).fielddefs
                store.register({k: base[k] for k in (EVENT_INFO, "builtin_interfaces/msg/Time")})
                store.register({k: v for k, v in types.items() if k not in store.fielddefs})
                store.get_msgdef(msgtype)  # builds the decoder: fails on a field of an undefined type
            except DatasetError:
                raise
            except Exception as exc:  # rosbags' parser and TypesysError on a broken definition
                raise DatasetError(
                    f"service event type {msgtype}: its recorded definition cannot be read "
                    f"({type(exc).__name__}: {exc}); record it again with ros2 bag from Jazzy on"
                ) from None
            self.stores[msgtype] = store
            self.request_fields[msgtype] = list(store.fielddefs[f"{srv}_Request"][1])
        return self.stores[msgtype]


def sqlite_definition(bag: Path | None, srv: str) -> str:
    """The definition rosbag2 filed under the service's own name ``srv`` in a sqlite3 bag's
    ``message_definitions`` table (where ``rosbags``, looking up the event type, does not see
    it); ``''`` when there is none or ``bag`` has no ``.db3`` file."""
    import sqlite3

    if bag is None:
        return ""
    for db in sorted(bag.glob("*.db3")) if bag.is_dir() else [bag]:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                row = con.execute(
                    "SELECT encoded_message_definition FROM message_definitions WHERE topic_type = ?", (srv,)
                ).fetchone()
        except sqlite3.Error:  # not sqlite3, or a bag from before message definitions were stored
            continue
        if row and row[0]:
            return str(row[0])
    return ""


def event_types(msgtype: str, text: str) -> dict[str, Any]:
    """``rosbags`` type descriptions of ``msgtype`` and the types it uses, from a recorded
    definition ``text`` in any of the module's layouts (``''``: none recorded)."""
    from rosbags.interfaces import Nodetype
    from rosbags.typesys import get_types_from_idl, get_types_from_msg

    srv = service_type(msgtype)
    assert srv is not None
    sections = _sections(text)
    srv_text = next((body for kind, name, body in sections if kind == "SRV"), None)
    if srv_text is None and not text.strip():
        srv_text = KNOWN_SERVICES.get(srv)
        if srv_text is None:
            raise DatasetError(
                f"service event type {msgtype}: the bag holds no definition of it and it is not one "
                f"of {sorted(KNOWN_SERVICES)}; record with ros2 bag from Jazzy on, on a machine "
                f"where {srv} is installed (it stores the .srv definition)"
            )
    types: dict[str, Any] = {}
    for kind, name, body in sections:
        if kind == "MSG":
            types.update(get_types_from_msg(body, name))
        elif kind == "IDL":
            types.update(get_types_from_idl(body))
    if srv_text is None:  # the generated message's layout: the event's own fields come first
        types.update(get_types_from_msg(sections[0][2], msgtype))
        return {_srv_name(k): _renamed(v) for k, v in types.items()}
    request, response = _split_srv(srv_text, srv)
    package, _, name = srv.split("/")
    for part, body in (("Request", request), ("Response", response)):
        parsed = get_types_from_msg(body, f"{package}/msg/{name}_{part}")
        types[f"{srv}_{part}"] = next(iter(parsed.values()))
    types[msgtype] = (
        [],
        [
            ("info", (Nodetype.NAME, EVENT_INFO)),
            ("request", (Nodetype.SEQUENCE, ((Nodetype.NAME, f"{srv}_Request"), 1))),
            ("response", (Nodetype.SEQUENCE, ((Nodetype.NAME, f"{srv}_Response"), 1))),
        ],
    )
    return types


def _sections(text: str) -> list[tuple[str, str, str]]:
    """``[(kind, type name, body)]``: the leading body (kind ``''``) and each delimited section."""
    out: list[tuple[str, str, str]] = []
    kind, name, lines = "", "", []
    for line in text.splitlines():
        if line.strip() == _DELIMITER:
            out.append((kind, name, "\n".join(lines)))
            kind, name, lines = "?", "", []
            continue
        match = _SECTION.match(line.strip()) if kind == "?" and not name else None
        if match:
            kind, name = match.groups()
            continue
        lines.append(line)
    out.append((kind, name, "\n".join(lines)))
    return out


def _split_srv(text: str, srv: str) -> tuple[str, str]:
    """A ``.srv`` text -> (request, response) message texts (split at the ``---`` line)."""
    lines = text.splitlines()
    cut = next((i for i, line in enumerate(lines) if line.strip() == "---"), None)
    if cut is None:
        raise DatasetError(f"the recorded definition of {srv} has no '---' line between request and response")
    return "\n".join(lines[:cut]), "\n".join(lines[cut + 1 :])


def _srv_name(name: str) -> str:
    """``pkg/srv/msg/Srv_Request`` (``rosbags``' normal form) -> ``pkg/srv/Srv_Request``."""
    return _SRV_MSG.sub(r"\1/srv/", name)


def _renamed(desc: Any) -> Any:
    """A ``rosbags`` type description with every ``pkg/srv/msg/...`` reference renamed."""
    consts, fields = desc
    return consts, [(fname, _renamed_field(fdesc)) for fname, fdesc in fields]


def _renamed_field(fdesc: Any) -> Any:
    from rosbags.interfaces import Nodetype

    node, arg = fdesc
    if node == Nodetype.NAME:
        return node, _srv_name(arg)
    if node in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        return node, (_renamed_field(arg[0]), arg[1])
    return fdesc
