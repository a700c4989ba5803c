"""Conformance cases of the intermediate server (R7, R8, R11), run as ipnw with the tester's key.

The tester connects as the information provision network: ``--cert``/``--key`` are ipnw's, and
the key also signs frames, the permission list and permits, as the network does. The cases
distribute a permission list naming a conformance requester, then ask under it:

* R11: a frame without a valid signature is refused, never acted on; so is a validly signed
  frame stamped ten minutes ago (outside the ±300 s window), with ERROR 6612;
* R8: a permit not signed by the network, a replayed permit id, and a (requester, 項番, items)
  missing from the list are refused with their codes;
* R7: a query about the person of ``--flagged-fugo`` is held, never answered automatically.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from juki_gateway.codecs.frame import Frame
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.protocols.intermediate.answer import decode_query_result
from juki_gateway.protocols.intermediate.crypto import SIGNATURE_LENGTH, public_key_bytes
from juki_gateway.protocols.intermediate.errors import FrameTimeOutsideWindow
from juki_gateway.protocols.intermediate.items import items_to_mask
from juki_gateway.protocols.intermediate.messages import (
    INFO_QUERY_LAYOUT,
    PERMISSION_LIST_RESULT_LAYOUT,
    ImsMessageType,
    QueryStatus,
)
from juki_gateway.protocols.intermediate.permission_list import PermissionEntry, PermissionList
from juki_gateway.protocols.intermediate.permit import Permit
from juki_gateway.protocols.intermediate.signing import sign_frame
from juki_gateway.simulators.client import FrameConnection, open_connection, timestamp
from juki_gateway.simulators.conformance import Case, CaseFailed, CaseSkipped, Suite, register_cases

REQUESTER = "conf-requester"
KOUBAN = 1
ITEMS = frozenset({"shimei", "jusho"})
_REQUESTER_KEY = ec.generate_private_key(ec.SECP256R1())


class _Ipnw:
    """The suite's ipnw side: signing key, connection, permission list once per suite."""

    def __init__(self, s: Suite) -> None:
        self.s = s
        assert s.target.peer.key is not None
        key = load_pem_private_key(s.target.peer.key.read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaseSkipped("the --key is not an EC key: cannot sign as ipnw")
        self.key = key
        self.n = 0

    async def connect(self) -> FrameConnection:
        t = self.s.target
        return await open_connection(self.s.reactor, t.host, t.port, t.peer, t.server_name,
                                     timeout=t.timeout)

    def frame(self, msg_type: int, body: bytes, count: int, *, unsigned: bool = False,
              stamp: str | None = None) -> bytes:
        self.n += 1
        t = self.s.target
        data = sign_frame(self.key, msg_type, t.peer.name, t.server_name, body,
                          record_count=count, request_no=self.n,
                          timestamp=stamp or timestamp(self.s.reactor))
        return data[:-SIGNATURE_LENGTH] + bytes(SIGNATURE_LENGTH) if unsigned else data

    async def send_list(self, conn: FrameConnection) -> None:
        if self.s.permission_list_sent:
            return
        plist = PermissionList(int(self.s.reactor.seconds()), timestamp(self.s.reactor),
                               (PermissionEntry(REQUESTER, KOUBAN, ITEMS),)).signed(self.key)
        data = plist.to_bytes()
        [answer] = await conn.request(self.frame(ImsMessageType.PERMISSION_LIST, data, len(data)))
        if answer.header.msg_type != ImsMessageType.PERMISSION_LIST_RESULT:
            raise CaseFailed("the permission list was not acknowledged")
        res = PERMISSION_LIST_RESULT_LAYOUT.decode(answer.body)
        if str(res["result_code"]) != "0000":
            raise CaseFailed(f"the permission list was refused with {res['result_code']}")
        self.s.permission_list_sent = True

    def permit(self, fugo: str, *, kouban: int = KOUBAN, items: frozenset[str] = ITEMS,
               key: ec.EllipticCurvePrivateKey | None = None, tag: str = "") -> Permit:
        now = dt.datetime.fromtimestamp(self.s.reactor.seconds(), dt.UTC)
        self.n += 1
        return Permit(
            f"conf-{secrets.token_hex(8)}-{self.n}{tag}"[:32], REQUESTER, self.s.target.server_name,
            kouban, items, fugo, (now - dt.timedelta(minutes=1)).strftime("%Y%m%d%H%M%S"),
            (now + dt.timedelta(minutes=10)).strftime("%Y%m%d%H%M%S"),
            public_key_bytes(_REQUESTER_KEY.public_key()),
        ).signed(key or self.key)

    async def ask(self, conn: FrameConnection, permit: Permit, *, unsigned: bool = False,
                  stamp: str | None = None) -> Frame:
        body = INFO_QUERY_LAYOUT.encode({"fugo": permit.fugo, "kouban": f"{permit.kouban:03d}",
                                         "items": items_to_mask(permit.items),
                                         "route": permit.requester, "permit": permit.to_bytes()})
        [answer] = await conn.request(self.frame(ImsMessageType.INFO_QUERY, body, 1,
                                                 unsigned=unsigned, stamp=stamp), 1,
                                     timeout=self.s.target.timeout)
        return answer


def _fugo(s: Suite) -> str:
    return s.target.flagged_fugo or "0" * 32


def _status(answer: Frame) -> tuple[str, str]:
    if answer.header.msg_type != ImsMessageType.QUERY_RESULT:
        return ("ERROR" if answer.header.msg_type == MessageType.ERROR else
                f"0x{answer.header.msg_type:04X}"), ""
    result = decode_query_result(answer.body)
    return result.status.name, result.reason.code


async def _refused_with(s: Suite, make: Any, code: str, what: str) -> str:
    ip = _Ipnw(s)
    conn = await ip.connect()
    await ip.send_list(conn)
    permit = make(ip)
    answer = await ip.ask(conn, permit)
    if make is _replayed:
        answer = await ip.ask(conn, permit)
    await conn.close()
    status, reason = _status(answer)
    if status != QueryStatus.REFUSED.name or reason != code:
        raise CaseFailed(f"{what} came back {status} {reason}, expected REFUSED {code}")
    return f"{what}: REFUSED {reason}"


def _replayed(ip: _Ipnw) -> Permit:
    return ip.permit(_fugo(ip.s))


async def case_unsigned_frame(s: Suite) -> str:
    ip = _Ipnw(s)
    conn = await ip.connect()
    answer = await ip.ask(conn, ip.permit(_fugo(s)), unsigned=True)
    await conn.close()
    if answer.header.msg_type != MessageType.ERROR:
        raise CaseFailed(f"a frame with a zeroed signature was answered with 0x{answer.header.msg_type:04X}")
    return "a frame with an invalid signature got ERROR, not an answer"


async def case_stale_frame(s: Suite) -> str:
    ip = _Ipnw(s)
    conn = await ip.connect()
    then = dt.datetime.fromtimestamp(s.reactor.seconds(), dt.UTC) - dt.timedelta(minutes=10)
    answer = await ip.ask(conn, ip.permit(_fugo(s)), stamp=then.strftime("%Y%m%d%H%M%S"))
    await conn.close()
    if answer.header.msg_type != MessageType.ERROR:
        raise CaseFailed("a frame stamped 10 minutes ago was answered with "
                         f"0x{answer.header.msg_type:04X}")
    code = decode_error(answer.body)[0]
    if code != FrameTimeOutsideWindow.wire_code:
        raise CaseFailed(f"a frame stamped 10 minutes ago got ERROR {code}, expected "
                         f"{FrameTimeOutsideWindow.wire_code}")
    return f"a frame stamped 10 minutes ago got ERROR {code}, not an answer"


async def case_forged_permit(s: Suite) -> str:
    forger = ec.generate_private_key(ec.SECP256R1())
    return await _refused_with(s, lambda ip: ip.permit(_fugo(s), key=forger), "permit_bad_signature",
                               "a permit signed by another key")


async def case_replayed_permit(s: Suite) -> str:
    return await _refused_with(s, _replayed, "permit_replayed", "a permit id used a second time")


async def case_not_on_list(s: Suite) -> str:
    return await _refused_with(
        s, lambda ip: ip.permit(_fugo(s), items=frozenset({"shimei", "seibetsu"})),
        "not_on_permission_list", "items outside the permission list")


async def case_flagged_held(s: Suite) -> str:
    if s.target.flagged_fugo is None:
        raise CaseSkipped("needs --flagged-fugo: the 符号 of a person flagged on the target")
    ip = _Ipnw(s)
    conn = await ip.connect()
    await ip.send_list(conn)
    answer = await ip.ask(conn, ip.permit(s.target.flagged_fugo))
    await conn.close()
    status, reason = _status(answer)
    if status != QueryStatus.HELD.name:
        raise CaseFailed(f"a query about a flagged person came back {status} {reason}, expected HELD")
    return f"held for review ({reason})"


register_cases([
    Case("R11-unsigned-frame", "R11", "I 2 中間サーバ機能8",
         "a frame without a valid signature is never acted on", frozenset({"intermediate"}),
         case_unsigned_frame),
    Case("R11-stale-frame", "R11", "I 2 中間サーバ機能8",
         "a signed frame stamped outside the ±300 s window is never acted on",
         frozenset({"intermediate"}), case_stale_frame),
    Case("R8-forged-permit", "R8", "III(1)6 リスク5",
         "a permit not signed by the network is refused", frozenset({"intermediate"}),
         case_forged_permit),
    Case("R8-replayed-permit", "R8", "III(1)6 リスク5", "a replayed permit id is refused",
         frozenset({"intermediate"}), case_replayed_permit),
    Case("R8-not-on-list", "R8", "III(1)6 リスク7",
         "items outside the permission list are refused", frozenset({"intermediate"}),
         case_not_on_list),
    Case("R7-flagged-held", "R7", "III(1)6 リスク5",
         "a query about a flagged person is held, never answered automatically",
         frozenset({"intermediate"}), case_flagged_held),
])
