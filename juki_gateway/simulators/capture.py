"""Record and replay: the frames a simulator run exchanged, and a re-run against a new build.

``juki-gateway capture SCENARIO --out FILE`` runs a scenario with a :class:`Recorder` attached to
every simulator connection and writes one JSON line per event: a connection opened (who, to
which endpoint) or refused, a frame sent, a frame received. Each frame line holds the raw frame
(base64), its header fields and its decoded records when the message type's layout is known.

``juki-gateway replay FILE`` opens each recorded connection again with the same identity, sends
the recorded frames in order and compares every answer with the recorded one. Fields that
legitimately change between runs (timestamps, signatures, sealed answer boxes) are left out of
the comparison; message type, sequence numbers, record count and the decoded records (query
results by status and reason) must agree. Each difference is reported.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from juki_gateway.codecs.frame import Frame
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.codecs.record import get_codec
from juki_gateway.errors import JukiError
from juki_gateway.protocols.catalogue import CATALOGUE, LINK_MESSAGES
from juki_gateway.protocols.channel import Catalogue, FrameChannel, Received
from juki_gateway.simulators.client import (
    ExchangeTimeout,
    FrameConnection,
    Identity,
    PeerRefused,
    open_connection,
)


class CaptureError(JukiError):
    """A capture file is missing or malformed."""

    code = "capture"
    exit_code = 2


_CATALOGUE: Catalogue | None = None


def _reader() -> FrameChannel:
    """A channel that only reads one recorded byte string: it checks no header identity (a
    recording holds every peer's frames, deliberately misnamed ones included) and no per-type
    record limit, so whatever the simulator sent is recorded field by field."""
    global _CATALOGUE
    if _CATALOGUE is None:
        _CATALOGUE = Catalogue(LINK_MESSAGES, record_limits=False)
    return FrameChannel(local="", peer="", timestamp=lambda: "", catalogue=_CATALOGUE,
                        check_identity=False)


def decode_records(frame: Frame) -> list[dict[str, Any]] | None:
    """The frame's records as JSON-ready dicts, when its type has a known layout."""
    mt = frame.header.msg_type
    try:
        if mt in (MessageType.ERROR, MessageType.NACK):
            code, name, detail = decode_error(frame.body)
            return [{"error_code": code, "error_name": name, "detail": detail}]
        from juki_gateway.protocols.jukinet.messages import BY_TYPE

        spec = BY_TYPE.get(mt)
        if spec is not None and spec.layout is not None:
            from juki_gateway.protocols.jukinet.layouts import decode_bodies

            return [{k: _plain(v) for k, v in r.items()} for r in decode_bodies(spec.layout, frame.body)]
        from juki_gateway.protocols.intermediate.answer import decode_query_result
        from juki_gateway.protocols.intermediate.messages import QUERY_RESULT_LAYOUT, ImsMessageType

        if mt == ImsMessageType.QUERY_RESULT:
            size = QUERY_RESULT_LAYOUT.length
            out = []
            for i in range(0, len(frame.body), size):
                res = decode_query_result(frame.body[i:i + size])
                out.append({"permit_id": res.permit_id, "requester": res.requester,
                            "status": res.status.name, "reason": res.reason.code})
            return out
        ims = CATALOGUE.get(mt)
        if mt in {int(t) for t in ImsMessageType} and ims is not None and ims.body_layout:
            return [{k: _plain(v) for k, v in r.items()
                     if k not in ("permit", "requester_key", "signature", "sealed")}
                    for r in get_codec(ims.body_layout, ims.profile).decode_many(frame.body)]
    except (JukiError, ValueError):
        return None
    return None


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    return v if isinstance(v, str | int | float | bool) or v is None else str(v)


def frame_event(conn: str, direction: str, frame: Frame | None, raw: bytes) -> dict[str, Any]:
    """One JSON line for a frame sent or received."""
    ev: dict[str, Any] = {"event": direction, "conn": conn, "raw": base64.b64encode(raw).decode()}
    if frame is not None:
        h = frame.header
        ev.update({"msg_type": h.msg_type, "seq": h.seq, "request_no": h.request_no,
                   "record_count": h.record_count, "records": decode_records(frame)})
    return ev


@dataclass
class Recorder:
    """Collects events from every simulator connection into a JSON-lines stream."""

    stream: IO[str]
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    events: int = 0

    def write(self, ev: dict[str, Any]) -> None:
        self.stream.write(json.dumps(ev, ensure_ascii=False) + "\n")
        self.events += 1

    def opened(self, ident: Identity, endpoint: str, host: str, port: int) -> str:
        conn = f"c{next(self._ids)}"
        self.write({"event": "open", "conn": conn, "as": ident.name,
                    "cert": str(ident.cert) if ident.cert else None, "endpoint": endpoint})
        return conn

    def refused(self, ident: Identity, endpoint: str, reason: str) -> None:
        self.write({"event": "refused", "conn": f"c{next(self._ids)}", "as": ident.name,
                    "endpoint": endpoint, "reason": reason})

    def sent(self, conn: str, data: bytes) -> None:
        reader = _reader()
        reader.receive_data(data)
        ev = reader.next_event()
        self.write(frame_event(conn, "sent", ev.frame if isinstance(ev, Received) else None, data))

    def received(self, conn: str, frame: Frame, raw: bytes) -> None:
        self.write(frame_event(conn, "received", frame, raw))


# -- replay -----------------------------------------------------------------------------------


def comparable(ev: dict[str, Any]) -> dict[str, Any]:
    """What must agree between a recorded answer and a replayed one."""
    records = ev.get("records")
    if isinstance(records, list):
        records = [{k: v for k, v in r.items() if k not in ("detail", "permit_id")} for r in records]
    return {"msg_type": ev.get("msg_type"), "seq": ev.get("seq"),
            "record_count": ev.get("record_count"), "records": records}


def load_capture(path: Path) -> list[dict[str, Any]]:
    """The events of a capture file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CaptureError(f"no capture file at {path}") from None
    out = []
    for i, line in enumerate(lines, 1):
        try:
            ev = json.loads(line)
        except ValueError:
            raise CaptureError(f"{path}:{i}: not a JSON line") from None
        if not isinstance(ev, dict) or "event" not in ev or "conn" not in ev:
            raise CaptureError(f"{path}:{i}: not a capture event")
        out.append(ev)
    return out


@dataclass
class ReplayReport:
    """What replay found."""

    connections: int = 0
    skipped: list[str] = field(default_factory=list)
    compared: int = 0
    differences: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"replayed {self.connections} connections, compared {self.compared} answers: "
                 f"{len(self.differences)} differ"]
        lines += [f"  DIFF {d}" for d in self.differences]
        lines += [f"  skipped {s}" for s in self.skipped]
        return "\n".join(lines)


async def replay(reactor: Any, events: list[dict[str, Any]], host: str, ports: dict[str, int],
                 pki: Path) -> ReplayReport:
    """Replay every recorded connection (see module docstring)."""
    report = ReplayReport()
    by_conn: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        by_conn.setdefault(ev["conn"], []).append(ev)
    for conn_id, evs in by_conn.items():
        head = evs[0]
        if head["event"] != "open":
            continue
        cert = pki / f"{head['as']}.pem"
        if head.get("cert") and Path(head["cert"]) != cert:
            report.skipped.append(f"{conn_id}: recorded with a throwaway certificate")
            continue
        endpoint = head["endpoint"]
        if endpoint not in ports:
            report.skipped.append(f"{conn_id}: no port for endpoint {endpoint}")
            continue
        report.connections += 1
        try:
            conn: FrameConnection = await open_connection(
                reactor, host, ports[endpoint], Identity.from_pki(pki, head["as"]), endpoint,
                probe=False)
        except (PeerRefused, ExchangeTimeout) as exc:
            report.differences.append(f"{conn_id} ({head['as']} → {endpoint}): refused: {exc.message}")
            continue
        rest = evs[1:]
        i = 0
        while i < len(rest):
            ev = rest[i]
            i += 1
            if ev["event"] != "sent":
                continue
            expected = []
            while i < len(rest) and rest[i]["event"] == "received":
                expected.append(rest[i])
                i += 1
            data = base64.b64decode(ev["raw"])
            try:
                got = await conn.request(data, len(expected), timeout=10.0) if expected else []
                if not expected:
                    conn.send(data)
            except (PeerRefused, ExchangeTimeout) as exc:
                report.differences.append(f"{conn_id} frame {ev.get('request_no')}: {exc.message}")
                break
            for want, frame in zip(expected, got, strict=True):
                report.compared += 1
                now = comparable(frame_event(conn_id, "received", frame, b""))
                if now != comparable(want):
                    report.differences.append(
                        f"{conn_id} ({head['as']} → {endpoint}) request {ev.get('request_no')}: "
                        f"recorded {json.dumps(comparable(want), ensure_ascii=False)}, "
                        f"now {json.dumps(now, ensure_ascii=False)}")
        await conn.close()
    return report
