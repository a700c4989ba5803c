"""The intermediate-server side of a run: bango-renkei, ipnw, DV flags, and the 符号 map.

* :func:`prepare_store` gives every resident of the scenario's population a 符号 in the store
  before the daemon starts (the intermediate server reads its 符号 map at start-up; the
  FUGO_REQUEST flow over ipnw is not on the wire yet). ``juki-gateway simulate SCENARIO
  --prepare`` runs it.
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
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from juki_gateway.codecs.messages import MessageType
from juki_gateway.errors import JukiError
from juki_gateway.intermediate.session import LENGTHS, sign_frame
from juki_gateway.protocols.intermediate.answer import decode_query_result, open_answer
from juki_gateway.protocols.intermediate.crypto import public_key_bytes
from juki_gateway.protocols.intermediate.fukuhon import encode_fukuhon
from juki_gateway.protocols.intermediate.items import items_to_mask
from juki_gateway.protocols.intermediate.messages import (
    FUKUHON_REPORT_LAYOUT,
    INFO_QUERY_LAYOUT,
    PERMISSION_LIST_RESULT_LAYOUT,
    ImsMessageType,
    QueryStatus,
)
from juki_gateway.protocols.intermediate.permission_list import PermissionEntry, PermissionList
from juki_gateway.protocols.intermediate.permit import Permit
from juki_gateway.simulators.client import FrameConnection, Identity, open_connection, timestamp
from juki_gateway.simulators.drivers import Endpoints
from juki_gateway.simulators.population import Population, Resident
from juki_gateway.simulators.scenario import BadPeers as BadPeersConfig
from juki_gateway.simulators.scenario import BangoRenkei as RenkeiConfig
from juki_gateway.simulators.scenario import DvProtection
from juki_gateway.simulators.scenario import Ipnw as IpnwConfig
from juki_gateway.simulators.summary import RunSummary

IMS = "ims-172014"
ASKABLE = ("shimei", "jusho", "seinengappi", "seibetsu", "setai_no")
def fugo_for(atena_no: str) -> str:
    """The 符号 the simulated network issued for a 団体内統合宛名番号 (32 ASCII hex digits)."""
    return hashlib.sha256(f"juki-sim-fugo:{atena_no}".encode()).hexdigest()[:32]


def prepare_store(url: str, population: Population, now: dt.datetime) -> int:
    """Give every resident a 符号 in the store at ``url`` (idempotent); returns how many are new."""
    from sqlalchemy import insert, select

    from juki_gateway.registry_store.engine import create_store_engine
    from juki_gateway.registry_store.migrate import upgrade
    from juki_gateway.registry_store.models import FugoMap

    engine = create_store_engine(url)
    try:
        upgrade(url, engine=engine)
        table = FugoMap.__table__
        with engine.begin() as conn:
            known = set(conn.execute(select(table.c.atena_no)).scalars())
            rows = [{"fugo": fugo_for(r.atena_no), "atena_no": r.atena_no,
                     "created_at": now.replace(tzinfo=None)}
                    for r in population if r.atena_no not in known]
            if rows:
                conn.execute(insert(table), rows)
        return len(rows)
    finally:
        engine.dispose()


def fukuhon_items(r: Resident) -> dict[str, str]:
    """The 副本 items of one resident, as the intermediate server keeps them."""
    f = r.foreign
    return {
        "setai_no": r.setai_no, "shimei": r.kanji_name, "seinengappi": r.birth_date,
        "seibetsu": r.sex, "zokugara": r.relationship, "jusho": r.address,
        "jumin_date": r.resident_since, "setainushi": r.householder_name,
        "jumin_kubun": "2" if f else "1", "kokuseki": f.nationality if f else "",
        "zairyu_shikaku": f.residence_status if f else "",
        "zairyu_kikan": f.residence_period if f else "",
        "zairyu_manryo": f.residence_expiry_date if f else "",
        "ho30_45": f.foreign_resident_class if f else "",
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
            Identity.from_pki(self.endpoints.pki, self.name), IMS, lengths=LENGTHS)
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
    from juki_gateway.intermediate.client import AdminClient

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
            items, fugo_for(person.atena_no), (now - dt.timedelta(minutes=1)).strftime("%Y%m%d%H%M%S"),
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


__all__ = ["BangoRenkei", "Ipnw", "MessageType", "flag_residents", "fugo_for", "prepare_store"]
