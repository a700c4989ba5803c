r"""The intermediate-server side of a run: bango-renkei, ipnw, DV flags, and the 符号 map.

* :func:`obtain_fugos` gets the population its 符号 through the daemon, as the real systems do,
  and the intermediate server never sees a 住民票コード: bango-renkei sends ``FUGO_REQUEST``\s
  (団体内統合宛名番号 only), the intermediate server answers "pending" and queues a
  ``SHORI_TSUBAN_REQUEST`` for ipnw; the simulated ipnw polls (PING), issues a 処理通番 for each
  (``SHORI_TSUBAN_ISSUE``) and acknowledges the deliveries; bango-renkei asks again and learns
  the 処理通番, which the same municipality's 既存住基 (:class:`KizonJuki`, in its one
  numbering) sends with the person's 住民票コード to the CS (``SHORI_TSUBAN_NOTIFY``), on to the
  prefecture and 機構; ipnw takes the pairs from 機構 (``SHORI_TSUBAN_FETCH`` on 機構's endpoint,
  with its own certificate), issues each 符号 with the network's keyed rule
  (:func:`issue_fugo` over :data:`NETWORK_SECRET`) in a ``FUGO_ISSUE_RESPONSE`` carrying the
  処理通番; bango-renkei asks again and gets them. Every scenario with a ``[bango_renkei]``
  table starts this way.
* :func:`prepare_store` (``juki-gateway simulate SCENARIO --prepare``) is the offline shortcut
  for a run with no bango-renkei: it writes the same 符号 ipnw would issue into a stopped
  daemon's store.
* :class:`BangoRenkei` (番号連携システム, ``renkei-172014``) registers the population's 副本 in
  batches over its signed link and counts the per-record reports (R12).
* :class:`Ipnw` (情報提供ネットワークシステム, ``ipnw``) distributes a signed permission list, then
  sends information queries from many requesters under the scenario's 項番, each with a permit
  it signs with the network key. It opens every answer with the requester's key and checks it
  holds exactly the items asked (R8). Queries about flagged residents must come back HELD, never
  answered (R7). Forged permits (signed by another key) and replayed permit ids must be refused.
* :func:`flag_residents` flags residents through the admin port with two operators (request by
  op-alice, confirmation by op-bob), as the two-person rule requires.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from juki_gateway.codecs.frame import encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.errors import JukiError
from juki_gateway.protocols.intermediate.answer import decode_query_result, open_answer
from juki_gateway.protocols.intermediate.crypto import public_key_bytes
from juki_gateway.protocols.intermediate.fugo import issue_fugo
from juki_gateway.protocols.intermediate.fukuhon import encode_fukuhon
from juki_gateway.protocols.intermediate.items import items_to_mask
from juki_gateway.protocols.intermediate.messages import (
    FUGO_ISSUE_RESPONSE_LAYOUT,
    FUGO_REQUEST_LAYOUT,
    FUGO_RESPONSE_LAYOUT,
    FUKUHON_REPORT_LAYOUT,
    INFO_QUERY_LAYOUT,
    PERMISSION_LIST_RESULT_LAYOUT,
    SHORI_TSUBAN_ISSUE_LAYOUT,
    SHORI_TSUBAN_REQUEST_LAYOUT,
    ImsMessageType,
    QueryStatus,
)
from juki_gateway.protocols.intermediate.permission_list import PermissionEntry, PermissionList
from juki_gateway.protocols.intermediate.permit import Permit
from juki_gateway.protocols.intermediate.signing import sign_frame
from juki_gateway.protocols.jukinet.layouts import (
    SHORI_TSUBAN_ACK,
    SHORI_TSUBAN_NOTICE,
    decode_bodies,
    encode_body,
)
from juki_gateway.protocols.jukinet.messages import JukinetMessage
from juki_gateway.simulators.client import FrameConnection, Identity, open_connection, timestamp
from juki_gateway.simulators.drivers import Endpoints, KizonJuki
from juki_gateway.simulators.population import Population, Resident
from juki_gateway.simulators.scenario import BadPeers as BadPeersConfig
from juki_gateway.simulators.scenario import BangoRenkei as RenkeiConfig
from juki_gateway.simulators.scenario import DvProtection
from juki_gateway.simulators.scenario import Ipnw as IpnwConfig
from juki_gateway.simulators.summary import RunSummary

IMS = "ims-172014"
#: The simulated information provision network's secret for issuing 符号 (a test network).
NETWORK_SECRET = b"juki-gateway simulated ipnw fugo secret"
FUGO_PENDING = "6608"
#: the items the simulated requesters may ask for (a code, 通称 and 旧氏 among them)
ASKABLE = ("shimei", "jusho", "seinengappi", "seibetsu", "setai_no", "zokugara", "tsusho", "kyuuji")


def prepare_store(url: str, population: Population, now: dt.datetime) -> int:
    """Give every resident a 符号 in the store at ``url`` (idempotent); returns how many are new."""
    from juki_gateway.registry_store import ims
    from juki_gateway.registry_store.engine import create_store_engine
    from juki_gateway.registry_store.migrate import upgrade

    engine = create_store_engine(url)
    try:
        upgrade(url, engine=engine)
        with engine.begin() as conn:
            known = set(ims.fugo_atena_map(conn).values())
            new = {network_fugo(r): r.atena_no for r in population if r.atena_no not in known}
            ims.add_fugos(conn, new, now.replace(tzinfo=None))
        return len(new)
    finally:
        engine.dispose()


def network_fugo(r: Resident) -> str:
    """The 符号 the simulated ipnw issues to our intermediate server for resident ``r``."""
    return issue_fugo(NETWORK_SECRET, IMS, r.juminhyo_code)


class _Network:
    """The simulated network's side of 符号 acquisition: it issues 処理通番 at the intermediate
    server's request, takes the (住民票コード, 処理通番) pairs 機構 keeps, and delivers each 符号
    with its 処理通番."""

    def __init__(self, reactor: Any, endpoints: Endpoints, ims: _SignedLink,
                 summary: RunSummary) -> None:
        self.reactor = reactor
        self.endpoints = endpoints
        self.ims = ims
        self.summary = summary
        self.organisation_of: dict[str, str] = {}  # 処理通番 -> the organisation that asked
        self.issued: set[str] = set()  # the 符号 issued in this run
        self.taken: list[str] = []  # 処理通番 taken from 機構, not yet acknowledged to it
        self.kiko_name = endpoints.kiko or "kiko"
        self.kiko: FrameConnection | None = None
        self.n = 0

    async def open(self) -> None:
        self.kiko = await open_connection(
            self.reactor, self.endpoints.host, self.endpoints.port(self.kiko_name),
            Identity.from_pki(self.endpoints.pki, "ipnw"), self.kiko_name)

    def _new_tsuban(self) -> str:
        while True:
            tsuban = f"{int.from_bytes(os.urandom(8), 'big') % 10**16:016d}"
            if tsuban not in self.organisation_of:
                return tsuban

    async def serve_requests(self) -> int:
        """Poll the intermediate server (PING), issue a 処理通番 for each request, acknowledge."""
        ims = self.ims
        assert ims.conn is not None
        await ims.request(MessageType.PING, b"", 0)
        await deferLater(self.reactor, 0.2, lambda: None)  # the deliveries follow the PONG
        frames, ims.conn.unsolicited = ims.conn.unsolicited, []
        asks = [f for f in frames if f.msg_type == ImsMessageType.SHORI_TSUBAN_REQUEST]
        if not asks:
            return 0
        records = []
        for f in asks:
            for v in SHORI_TSUBAN_REQUEST_LAYOUT.decode_many(f.body):
                tsuban = self._new_tsuban()
                self.organisation_of[tsuban] = str(v["organisation"])
                records.append(SHORI_TSUBAN_ISSUE_LAYOUT.encode({**v, "shori_tsuban": tsuban}))
        answer, latency = await ims.request(ImsMessageType.SHORI_TSUBAN_ISSUE, b"".join(records),
                                            len(records))
        ok = answer.header.msg_type == MessageType.ACK
        self.summary.record("SHORI_TSUBAN_ISSUE", "acked" if ok else "refused", latency,
                            None if ok else "shori_tsuban_issue")
        ims.n += 1
        ims.conn.send(sign_frame(ims.key, MessageType.ACK, ims.name, IMS, b"", record_count=0,
                                 request_no=ims.n, seq=max(f.header.seq for f in asks),
                                 timestamp=timestamp(self.reactor)))
        return len(asks)

    async def fetch(self) -> int:
        """Take 機構's pairs (acknowledging those taken before), deliver their 符号; how many."""
        assert self.kiko is not None
        self.n += 1
        acks, self.taken = self.taken, []
        body = b"".join(encode_body(SHORI_TSUBAN_ACK, {"shori_tsuban": t}) for t in acks)
        started = self.reactor.seconds()
        [answer] = await self.kiko.request(encode_frame(
            JukinetMessage.SHORI_TSUBAN_FETCH, "ipnw", self.kiko_name, body,
            record_count=len(acks), request_no=self.n, timestamp=timestamp(self.reactor)),
            1, timeout=15.0)
        latency = self.reactor.seconds() - started
        if answer.header.msg_type != JukinetMessage.SHORI_TSUBAN_LIST:
            self.taken = acks + self.taken
            self.summary.record("SHORI_TSUBAN_FETCH", "refused", latency, "shori_tsuban_fetch")
            return 0
        self.summary.record("SHORI_TSUBAN_FETCH", "answered", latency)
        by_org: dict[str, list[bytes]] = {}
        got = []
        for v in decode_bodies(SHORI_TSUBAN_NOTICE, answer.body):
            tsuban, code = str(v["shori_tsuban"]), str(v["juminhyo_code"])
            got.append(tsuban)
            org = self.organisation_of.get(tsuban)
            if org is None:
                continue  # not issued by this network run: nothing to deliver
            fugo = issue_fugo(NETWORK_SECRET, org, code)
            self.issued.add(fugo)
            by_org.setdefault(org, []).append(FUGO_ISSUE_RESPONSE_LAYOUT.encode(
                {"organisation": org, "shori_tsuban": tsuban, "fugo": fugo}))
        for records in by_org.values():
            reply, took = await self.ims.request(ImsMessageType.FUGO_ISSUE_RESPONSE,
                                                 b"".join(records), len(records))
            ok = reply.header.msg_type == MessageType.ACK
            self.summary.record("FUGO_ISSUE_RESPONSE", "acked" if ok else "refused", took,
                                None if ok else "fugo_issue")
        self.taken += got
        return len(got)

    async def close(self) -> None:
        if self.kiko is not None:
            if self.taken:
                await self.fetch()  # acknowledge the last pairs taken: 機構 forgets them
            await self.kiko.close()


async def obtain_fugos(reactor: Any, endpoints: Endpoints, people: list[Resident],
                       summary: RunSummary, kizon: KizonJuki, *, batch: int = 100,
                       timeout: float = 60.0) -> dict[str, str]:
    """The 符号 of ``people`` through the daemon (see the module docstring); atena_no → 符号."""
    renkei = _SignedLink(reactor, endpoints, "renkei-172014")
    ipnw = _SignedLink(reactor, endpoints, "ipnw")
    await renkei.open()
    await ipnw.open()
    network = _Network(reactor, endpoints, ipnw, summary)
    await network.open()
    pending = {r.atena_no: r for r in people}
    fugos: dict[str, str] = {}
    wrong: list[str] = []
    tsuban_of: dict[str, str] = {}  # 団体内統合宛名番号 -> 処理通番 bango-renkei learnt
    deadline = reactor.seconds() + timeout
    try:
        while pending and reactor.seconds() < deadline:
            waiting = list(pending.values())
            learnt: list[tuple[str, str]] = []
            for start in range(0, len(waiting), batch):
                chunk = waiting[start:start + batch]
                body = b"".join(FUGO_REQUEST_LAYOUT.encode({"atena_no": r.atena_no})
                                for r in chunk)
                answer, latency = await renkei.request(ImsMessageType.FUGO_REQUEST, body, len(chunk))
                if answer.header.msg_type != ImsMessageType.FUGO_RESPONSE:
                    summary.record("FUGO_REQUEST", "refused", latency, "error_frame")
                    continue
                for v in FUGO_RESPONSE_LAYOUT.decode_many(answer.body):
                    atena, code = str(v["atena_no"]), str(v["result_code"])
                    if code == FUGO_PENDING:
                        summary.record("FUGO_REQUEST", "pending", latency / len(chunk))
                        tsuban = str(v["shori_tsuban"] or "")
                        if tsuban and atena not in tsuban_of and atena in pending:
                            # the 宛名 side hands the 処理通番 to 既存住基, which sends the
                            # person's 住民票コード with it to the CS
                            tsuban_of[atena] = tsuban
                            learnt.append((pending[atena].juminhyo_code, tsuban))
                        continue
                    person = pending.pop(atena, None)
                    if code != "0000" or person is None:
                        summary.record("FUGO_REQUEST", "refused", latency / len(chunk), f"fugo:{code}")
                        continue
                    summary.record("FUGO_REQUEST", "issued", latency / len(chunk))
                    fugos[atena] = str(v["fugo"])
                    if fugos[atena] != network_fugo(person):
                        wrong.append(atena)  # not the 符号 the network issues for this person
            if learnt and not await kizon.notify_shori_tsuban(learnt):
                for _code, tsuban in learnt:  # not acknowledged: ask again, send again
                    tsuban_of.pop(next(a for a, t in tsuban_of.items() if t == tsuban), None)
            progressed = bool(learnt)
            if pending:
                progressed = bool(await network.serve_requests()) or progressed
                progressed = bool(await network.fetch()) or progressed
            if pending and not progressed:
                await deferLater(reactor, 0.2, lambda: None)  # the pairs are on their way to 機構
    finally:
        await network.close()
        for link in (renkei, ipnw):
            if link.conn is not None:
                await link.conn.close()
    shared = len(fugos) - len(set(fugos.values()))
    summary.check(
        "every resident got its 符号 through the intermediate server",
        not pending and not wrong and not shared,
        f"{len(fugos)} of {len(people)} 符号 obtained by renkei-172014 ({len(tsuban_of)} by a "
        f"処理通番 of this run: 住民票コード sent by {kizon.name} through {kizon.cs} to 機構, "
        f"{len(network.issued)} 符号 issued by ipnw); {len(wrong)} differ from what ipnw "
        f"issues, {shared} shared by two residents")
    return fugos


def fukuhon_items(r: Resident) -> dict[str, str]:
    """The 副本 items of one resident, as the intermediate server keeps them."""
    f = r.foreign
    return {
        "setai_no": r.setai_no, "shimei": r.kanji_name, "seinengappi": r.birth_date,
        "seibetsu": r.sex, "zokugara": r.relationship, "jusho": r.address,
        "jumin_date": r.resident_since, "setainushi": r.householder_name,
        "jumin_kubun": "2" if f else "1", "kokuseki": f.nationality if f else "",
        # 特別永住者 and 永住者 hold no 在留期間 (and the former no 在留資格): blank items
        "zairyu_shikaku": (f.residence_status or "") if f else "",
        "zairyu_kikan": (f.residence_period or "") if f else "",
        "zairyu_manryo": (f.residence_expiry_date or "") if f else "",
        "ho30_45": f.foreign_resident_class if f else "",
        "tsusho": r.tsusho or "", "kyuuji": r.kyuuji or "",
    }


def _private_key(path: Any) -> ec.EllipticCurvePrivateKey:
    key = load_pem_private_key(path.read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise JukiError(f"{path} does not hold an EC private key")
    return key


class _SignedLink:
    """A signed intermediate-server connection as one node."""

    def __init__(self, reactor: Any, endpoints: Endpoints, name: str) -> None:
        self.reactor = reactor
        self.endpoints = endpoints
        self.name = name
        self.key = _private_key(endpoints.pki / f"{name}.key")
        self.conn: FrameConnection | None = None
        self.n = 0

    async def open(self) -> FrameConnection:
        self.conn = await open_connection(
            self.reactor, self.endpoints.host, self.endpoints.port(IMS),
            Identity.from_pki(self.endpoints.pki, self.name), IMS)
        return self.conn

    def frame(self, msg_type: int, body: bytes, count: int,
              key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
        self.n += 1
        return sign_frame(key or self.key, msg_type, self.name, IMS, body, record_count=count,
                          request_no=self.n, timestamp=timestamp(self.reactor))

    async def request(self, msg_type: int, body: bytes, count: int) -> Any:
        assert self.conn is not None
        started = self.reactor.seconds()
        answers = await self.conn.request(self.frame(msg_type, body, count), 1, timeout=15.0)
        return answers[0], self.reactor.seconds() - started


@dataclass
class BangoRenkei:
    """Registers the population's 副本 in batches (see module docstring)."""

    reactor: Any
    config: RenkeiConfig
    population: Population
    endpoints: Endpoints
    summary: RunSummary
    people: list[Resident] = field(default_factory=list)
    registered: set[str] = field(default_factory=set)

    async def run(self, tick: Callable[[int], None]) -> None:
        """Register every resident of the initial population, ``batch`` records per frame."""
        link = _SignedLink(self.reactor, self.endpoints, "renkei-172014")
        await link.open()
        people = self.people or list(self.population.residents)
        interval = 1.0 / self.config.rate if self.config.rate > 0 else 0.0
        for start in range(0, len(people), self.config.batch):
            batch = people[start:start + self.config.batch]
            body = b"".join(encode_fukuhon(r.atena_no, fukuhon_items(r)) for r in batch)
            answer, latency = await link.request(ImsMessageType.FUKUHON_REGISTER, body, len(batch))
            if answer.header.msg_type != ImsMessageType.FUKUHON_REPORT:
                self.summary.record("FUKUHON_REGISTER", "refused", latency, "error_frame")
                continue
            size = FUKUHON_REPORT_LAYOUT.length
            for i in range(len(answer.body) // size):
                rep = FUKUHON_REPORT_LAYOUT.decode(answer.body[i * size:(i + 1) * size])
                ok = str(rep["result_code"]) == "0000"
                self.summary.record("FUKUHON_REGISTER", "accepted" if ok else "refused",
                                    latency / len(batch), None if ok else f"fukuhon:{rep['result_code']}")
                if ok:
                    self.registered.add(str(rep["atena_no"]))
            tick(len(batch))
            if interval:
                await deferLater(self.reactor, interval, lambda: None)
        assert link.conn is not None
        await link.conn.close()


async def flag_residents(reactor: Any, endpoints: Endpoints, admin_port: int,
                         people: list[Resident], review: str) -> list[str]:
    """Flag ``people`` through the admin port: op-alice requests, op-bob confirms."""
    from juki_gateway.cli.admin_client import AdminClient

    def client(op: str) -> AdminClient:
        return AdminClient(
            endpoints.host, admin_port, ca=endpoints.pki / "ca.pem",
            cert=endpoints.pki / f"{op}.pem", key=endpoints.pki / f"{op}.key", server_name=IMS,
            operator=op, timestamp=lambda: timestamp(reactor))

    def work() -> list[str]:
        alice, bob = client("op-alice"), client("op-bob")
        ids = []
        for r in people:
            flag = alice.call("flags.request-set", {"atena_no": r.atena_no, "scopes": [],
                                                    "reason_code": "01", "review_date": review})
            bob.call("flags.confirm", {"flag_id": flag["flag_id"]})
            ids.append(str(flag["flag_id"]))
        return ids

    result: list[str] = await deferToThread(work)
    return result


@dataclass
class Ipnw:
    """The information provision network (see module docstring)."""

    reactor: Any
    config: IpnwConfig
    dv: DvProtection
    bad: BadPeersConfig
    population: Population
    endpoints: Endpoints
    summary: RunSummary
    registered: set[str]
    flagged: set[str] = field(default_factory=set)
    #: atena_no → 符号 as bango-renkei obtained them (else: what --prepare wrote)
    fugos: dict[str, str] = field(default_factory=dict)
    answered_wrong: list[str] = field(default_factory=list)
    bad_accepted: list[str] = field(default_factory=list)
    queries: int = 0
    _requesters: list[tuple[str, ec.EllipticCurvePrivateKey]] = field(default_factory=list)
    _allowed: dict[tuple[str, int], frozenset[str]] = field(default_factory=dict)
    _used: list[Permit] = field(default_factory=list)

    def _permission_list(self) -> PermissionList:
        rng = self.population.rng
        entries = []
        for i in range(self.config.requesters):
            name = f"req-{i + 1:06d}"
            self._requesters.append((name, ec.generate_private_key(ec.SECP256R1())))
            for kouban in self.config.kouban:
                items = frozenset(rng.sample(ASKABLE, rng.randint(2, len(ASKABLE))))
                self._allowed[(name, kouban)] = items
                entries.append(PermissionEntry(name, kouban, items))
        version = int(self.reactor.seconds())
        return PermissionList(version, timestamp(self.reactor), tuple(entries))

    def _permit(self, link: _SignedLink, requester: tuple[str, ec.EllipticCurvePrivateKey],
                kouban: int, items: frozenset[str], person: Resident,
                key: ec.EllipticCurvePrivateKey) -> Permit:
        now = dt.datetime.fromtimestamp(self.reactor.seconds(), dt.UTC)
        self.queries += 1
        return Permit(
            f"pm-{int(self.reactor.seconds())}-{self.queries:08d}", requester[0], IMS, kouban,
            items, self.fugos.get(person.atena_no) or network_fugo(person), (now - dt.timedelta(minutes=1)).strftime("%Y%m%d%H%M%S"),
            (now + dt.timedelta(minutes=10)).strftime("%Y%m%d%H%M%S"),
            public_key_bytes(requester[1].public_key()),
        ).signed(key)

    async def _ask(self, link: _SignedLink, permit: Permit, label: str) -> Any:
        body = INFO_QUERY_LAYOUT.encode({"fugo": permit.fugo, "kouban": f"{permit.kouban:03d}",
                                         "items": items_to_mask(permit.items),
                                         "route": permit.requester, "permit": permit.to_bytes()})
        answer, latency = await link.request(ImsMessageType.INFO_QUERY, body, 1)
        if answer.header.msg_type != ImsMessageType.QUERY_RESULT:
            self.summary.record(label, "refused", latency, "error_frame")
            return None
        result = decode_query_result(answer.body)
        outcome = {QueryStatus.ANSWERED: "answered", QueryStatus.HELD: "held",
                   QueryStatus.REFUSED: "refused"}.get(result.status, result.status.name.lower())
        self.summary.record(label, outcome, latency,
                            None if outcome in ("answered", "held") else result.reason.code)
        return result

    async def run(self, duration: float, tick: Callable[[int], None]) -> None:
        """Distribute the list, then query at the scenario's rate for ``duration`` seconds."""
        link = _SignedLink(self.reactor, self.endpoints, "ipnw")
        await link.open()
        plist = self._permission_list().signed(link.key)
        answer, latency = await link.request(ImsMessageType.PERMISSION_LIST, plist.to_bytes(),
                                             len(plist.to_bytes()))
        ok = (answer.header.msg_type == ImsMessageType.PERMISSION_LIST_RESULT
              and str(PERMISSION_LIST_RESULT_LAYOUT.decode(answer.body)["result_code"]) == "0000")
        self.summary.record("PERMISSION_LIST", "accepted" if ok else "refused", latency,
                            None if ok else "permission_list")
        rng = self.population.rng
        people = [r for r in self.population.residents if r.atena_no in self.registered]
        flagged = [r for r in people if r.atena_no in self.flagged]
        plain = [r for r in people if r.atena_no not in self.flagged]
        start = self.reactor.seconds()
        interval = 1.0 / self.config.rate if self.config.rate > 0 else duration
        sent = 0
        while people and self.reactor.seconds() - start < duration:
            requester = rng.choice(self._requesters)
            kouban = rng.choice(self.config.kouban)
            allowed = sorted(self._allowed[(requester[0], kouban)])
            items = frozenset(rng.sample(allowed, rng.randint(1, len(allowed))))
            about_flagged = bool(flagged) and rng.random() < self.dv.query_share
            person = rng.choice(flagged if about_flagged else plain or people)
            permit = self._permit(link, requester, kouban, items, person, link.key)
            result = await self._ask(link, permit, "INFO_QUERY" + (" (flagged)" if about_flagged else ""))
            self._used.append(permit)
            if result is not None:
                if result.status == QueryStatus.HELD:
                    self.summary.held_queries += 1
                if result.status == QueryStatus.ANSWERED:
                    if person.atena_no in self.flagged:
                        self.summary.flagged_auto_answers += 1
                    got = open_answer(result, requester[1], IMS)
                    want = {k: v for k, v in fukuhon_items(person).items() if k in items and v}
                    if got != want:
                        self.answered_wrong.append(f"{permit.permit_id}: {sorted(got)} != {sorted(want)}")
            sent += 1
            tick(1)
            wait = start + sent * interval - self.reactor.seconds()
            if wait > 0:
                await deferLater(self.reactor, wait, lambda: None)
        await self._bad_permits(link, people, tick)
        assert link.conn is not None
        await link.conn.close()

    async def _bad_permits(self, link: _SignedLink, people: list[Resident],
                           tick: Callable[[int], None]) -> None:
        rng = self.population.rng
        if not people or not self._requesters:
            return
        forger = ec.generate_private_key(ec.SECP256R1())
        for _ in range(self.bad.forged_permits):
            requester = rng.choice(self._requesters)
            kouban = self.config.kouban[0]
            items = self._allowed[(requester[0], kouban)]
            permit = self._permit(link, requester, kouban, items, rng.choice(people), forger)
            result = await self._ask(link, permit, "INFO_QUERY (forged permit)")
            if result is not None and result.status != QueryStatus.REFUSED:
                self.bad_accepted.append(f"forged permit {permit.permit_id} was {result.status.name}")
            tick(1)
        for i in range(self.bad.replayed_permits):
            if not self._used:
                break
            permit = self._used[i % len(self._used)]
            result = await self._ask(link, permit, "INFO_QUERY (replayed permit)")
            if result is not None and result.status != QueryStatus.REFUSED:
                self.bad_accepted.append(f"replayed permit {permit.permit_id} was {result.status.name}")
            tick(1)

    def finish(self) -> None:
        """Check R7 and R8 from what came back."""
        self.summary.check(
            "no automatic answer about a flagged person (R7)",
            self.summary.flagged_auto_answers == 0,
            f"{self.summary.flagged_auto_answers} automatic answers about {len(self.flagged)} "
            f"flagged residents; {self.summary.held_queries} queries held for review")
        self.summary.check(
            "answers hold exactly the items asked (R8)", not self.answered_wrong,
            "; ".join(self.answered_wrong[:3]) or "every answer opened with the requester's key "
            "and matched the 副本 item for item")
        if self.bad.forged_permits or self.bad.replayed_permits:
            self.summary.check(
                "forged and replayed permits refused (R8)", not self.bad_accepted,
                "; ".join(self.bad_accepted[:3]) or
                f"{self.bad.forged_permits} forged, {self.bad.replayed_permits} replayed: all refused")


__all__ = ["BangoRenkei", "Ipnw", "MessageType", "flag_residents", "network_fugo",
           "obtain_fugos", "prepare_store"]
