"""The simulated systems of a scenario run, each a real mutual-TLS client with its own certificate.

* :class:`KizonJuki` (既存住基システム, ``kizon-172014``) sends resident events (転入, 転出, 転居,
  出生, 死亡, 職権修正) to the municipal CS as sequenced ``UPDATE_NOTIFY`` frames at the scenario's
  rate, with the moving season's March–April peak; a share are deliberate resends of an already
  acknowledged 更新順番号. It checks R4 from the outside: every number it sent is acknowledged
  (nothing lost) and a resend never advances the acknowledgement (nothing applied twice). During
  an outage of its own link it drops the connection, keeps producing events, and resends
  everything unacknowledged on reconnect.
* :class:`BadPeers` tries what the gateway must refuse: certificates from another CA, expired,
  absent or of a role the endpoint does not accept (R1, R2); malformed frames; searches too broad
  under R3 (氏名 alone, 住所 alone, 生年月日+住所, 氏名 with a one-character 住所). Each refusal is recorded by its code; anything answered is a broken
  invariant.

Both record every exchange into the :class:`~juki_gateway.simulators.summary.RunSummary`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet.task import deferLater

from juki_gateway.codecs.frame import Frame, encode_frame
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.errors import JukiError
from juki_gateway.protocols.catalogue import CATALOGUE
from juki_gateway.protocols.jukinet.layouts import SEARCH_REQUEST, encode_body
from juki_gateway.protocols.jukinet.messages import JukinetMessage
from juki_gateway.protocols.jukinet.records import CHANGE_REASON_BY_NAME, honnin_kakunin_record
from juki_gateway.simulators.client import (
    ExchangeTimeout,
    FrameConnection,
    Identity,
    PeerRefused,
    open_connection,
    timestamp,
)
from juki_gateway.simulators.population import KANAZAWA, Population, Resident
from juki_gateway.simulators.scenario import BadPeers as BadPeersConfig
from juki_gateway.simulators.scenario import KizonJuki as KizonConfig
from juki_gateway.simulators.scenario import Outage
from juki_gateway.simulators.summary import RunSummary

#: event kind → the Japanese 異動事由 label it carries (codes come from the link's own table).
EVENT_LABELS: dict[str, str] = {
    "tennyu": "国内転入", "tenshutsu": "国内転出", "tenkyo": "転居", "shussei": "出生",
    "shibou": "死亡", "shokken_shusei": "職権修正",
}


def type_name(msg_type: int) -> str:
    """A message type's catalogue name (Juki-net or base), else its hex number."""
    try:
        return JukinetMessage(msg_type).name
    except ValueError:
        spec = CATALOGUE.get(msg_type)
        return spec.name if spec is not None else f"0x{msg_type:04X}"


def classify(frame: Frame) -> tuple[str, str | None]:
    """(outcome, refusal code) of one answer frame."""
    mt = frame.header.msg_type
    if mt in (MessageType.ERROR, MessageType.NACK):
        try:
            _code, name, _detail = decode_error(frame.body)
        except JukiError:
            name = "undecodable_error_body"
        return ("nacked" if mt == MessageType.NACK else "refused"), name
    if mt == MessageType.ACK:
        return "acked", None
    return "answered", None


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the daemon's endpoints listen, and the PKI the simulators take certificates from."""

    host: str
    ports: dict[str, int]
    pki: Path
    #: the daemon's working directory (its operator switches: held links), when on this machine
    workdir: Path | None = None
    #: the name of the daemon's hosted 機構 node, whose metrics say what reached 機構
    kiko: str | None = None

    def port(self, name: str) -> int:
        """The port of endpoint ``name``."""
        if name not in self.ports:
            raise JukiError(f"the target has no endpoint {name!r} (known: {sorted(self.ports)})")
        return self.ports[name]


def update_record(person: Resident, kind: str, change_date: str) -> bytes:
    """The UPDATE_NOTIFY body record of one event about ``person``."""
    return honnin_kakunin_record(
        juminhyo_code=person.juminhyo_code, kanji_name=person.kanji_name,
        kana_name=person.kana_name, birth_date=person.birth_date, sex=person.sex,
        lg_code=KANAZAWA, address=person.address, kojin_bango=person.kojin_bango,
        change_reason=CHANGE_REASON_BY_NAME[EVENT_LABELS[kind]], change_date=change_date,
    )


@dataclass
class KizonJuki:
    """The existing resident-register system driving the municipal CS (see module docstring)."""

    reactor: Any
    config: KizonConfig
    population: Population
    endpoints: Endpoints
    summary: RunSummary
    outages: tuple[Outage, ...] = ()
    name: str = "kizon-172014"
    cs: str = "cs-172014"
    sent: dict[int, bytes] = field(default_factory=dict)
    acked_upto: int = 0
    duplicates_sent: int = 0
    duplicate_advanced: int = 0
    events: int = 0
    _conn: FrameConnection | None = None
    _next_seq: int = 1
    _base: int | None = None

    @property
    def link(self) -> str:
        """This simulator's own link name (what an outage table names to cut it)."""
        return f"{self.name}->{self.cs}"

    def _frame(self, seq: int, body: bytes, *, recovery: int = 0) -> bytes:
        """The frame of local number ``seq``: on the wire it follows what the CS already has."""
        base = self._base or 0
        return encode_frame(JukinetMessage.UPDATE_NOTIFY, self.name, self.cs, body,
                            record_count=1, seq=base + seq,
                            recovery_seq=base + recovery if recovery else 0,
                            timestamp=timestamp(self.reactor))

    async def _learn_base(self, conn: FrameConnection, body: bytes) -> None:
        """Send the first event as number 1: a CS that already holds numbers from this sender
        (an earlier run) acknowledges its last one without applying it; we continue after it."""
        self._base = 0
        [answer] = await conn.request(self._frame(1, body))
        outcome, code = classify(answer)
        if outcome == "acked" and answer.header.seq > 1:
            self._base = answer.header.seq
            self.summary.notes.append(
                f"{self.cs} already held numbers 1..{self._base} from {self.name}; "
                f"this run continues at {self._base + 1}")
            return
        self.summary.record("UPDATE_NOTIFY", outcome, None, code)
        if outcome == "acked":
            self.acked_upto = 1

    def _draw_event(self) -> tuple[str, Resident]:
        rng = self.population.rng
        kinds = list(self.config.mix)
        kind = rng.choices(kinds, weights=[self.config.mix[k] for k in kinds])[0]
        if kind == "shussei":
            person = self.population.newborn(rng.choice(self.population.residents))
            self.population.residents.append(person)
        elif kind == "tennyu":
            person = self.population.add_household()[0]
        elif kind == "tenkyo":
            person = self.population.relocated(rng.choice(self.population.residents))
        else:
            person = rng.choice(self.population.residents)
        return kind, person

    def _in_outage(self, t: float) -> bool:
        return any(o.link == self.link and o.at <= t < o.at + o.duration for o in self.outages)

    async def _connect(self, below: int) -> FrameConnection:
        ident = Identity.from_pki(self.endpoints.pki, self.name)
        conn = await open_connection(self.reactor, self.endpoints.host,
                                     self.endpoints.port(self.cs), ident, self.cs)
        if self._base is None and 1 in self.sent:
            await self._learn_base(conn, self.sent[1])
        # R4: after a reconnect, everything unacknowledged is resent in order
        for seq in sorted(s for s in self.sent if self.acked_upto < s < below):
            await self._exchange(conn, seq, self.sent[seq], recovery=seq, resend=True)
        return conn

    async def _exchange(self, conn: FrameConnection, seq: int, body: bytes, *, recovery: int = 0,
                        resend: bool = False, duplicate: bool = False) -> None:
        started = self.reactor.seconds()
        [answer] = await conn.request(self._frame(seq, body, recovery=recovery))
        latency = self.reactor.seconds() - started
        outcome, code = classify(answer)
        label = "UPDATE_NOTIFY" + (" (duplicate)" if duplicate else " (resend)" if resend else "")
        self.summary.record(label, outcome, latency, code)
        if outcome == "acked":
            local = answer.header.seq - (self._base or 0)
            if duplicate and local > self.acked_upto:
                self.duplicate_advanced += 1
            self.acked_upto = max(self.acked_upto, local)

    async def run(self, duration: float, tick: Callable[[int], None]) -> None:
        """Send events for ``duration`` seconds at the scenario's effective rate."""
        rate = self.config.effective_rate()
        if rate <= 0:
            return
        interval = 1.0 / rate
        start = self.reactor.seconds()
        change_date = self.population.as_of.strftime("%Y%m%d")
        rng = self.population.rng
        while (now := self.reactor.seconds()) - start < duration:
            t = now - start
            if self._in_outage(t):
                if self._conn is not None:
                    await self._conn.close()
                    self._conn = None
                    self.summary.notes.append(f"{self.link} cut at {t:.1f}s")
            kind, person = self._draw_event()
            seq = self._next_seq
            self._next_seq += 1
            self.sent[seq] = update_record(person, kind, change_date)
            self.events += 1
            tick(1)
            if not self._in_outage(t):
                try:
                    if self._conn is None:
                        self._conn = await self._connect(below=seq)
                    if self.acked_upto < seq:
                        await self._exchange(self._conn, seq, self.sent[seq])
                    if self.config.duplicates and rng.random() < self.config.duplicates:
                        dup = rng.randint(1, max(1, self.acked_upto))
                        if dup in self.sent:
                            self.duplicates_sent += 1
                            await self._exchange(self._conn, dup, self.sent[dup], duplicate=True)
                except (PeerRefused, ExchangeTimeout) as exc:
                    self.summary.record("UPDATE_NOTIFY", "connection_lost", None, exc.code)
                    self._conn = None
            wait = start + self.events * interval - self.reactor.seconds()
            if wait > 0:
                await deferLater(self.reactor, wait, lambda: None)
        # drain: one last chance to deliver what the outage held back
        if self.acked_upto < self._next_seq - 1:
            try:
                if self._conn is None:
                    self._conn = await self._connect(below=self._next_seq)
            except (PeerRefused, ExchangeTimeout) as exc:
                self.summary.record("UPDATE_NOTIFY", "connection_lost", None, exc.code)

    async def close(self) -> None:
        """Close the connection and check R4's invariants."""
        if self._conn is not None:
            await self._conn.close()
        last = self._next_seq - 1
        self.summary.check(
            "nothing lost (R4)", self.acked_upto == last,
            f"{self.acked_upto} of {last} update notifications acknowledged by {self.cs}")
        self.summary.check(
            "nothing duplicated (R4)", self.duplicate_advanced == 0,
            f"{self.duplicates_sent} deliberate resends of acknowledged numbers, "
            f"{self.duplicate_advanced} of them applied again")


@dataclass
class BadPeers:
    """Misbehaving peers (see module docstring)."""

    reactor: Any
    config: BadPeersConfig
    population: Population
    endpoints: Endpoints
    summary: RunSummary
    answered_bad: list[str] = field(default_factory=list)
    _tmp: Path | None = None

    def _bad_identities(self) -> list[tuple[str, Identity, str]]:
        """(kind, identity, endpoint) for each wrong-certificate attempt."""
        from juki_gateway.certs.identity import PeerIdentity
        from juki_gateway.certs.pki import CertificateAuthority, write_pair

        pki = self.endpoints.pki
        self._tmp = Path(tempfile.mkdtemp(prefix="juki-bad-peers-"))
        now = dt.datetime.fromtimestamp(self.reactor.seconds(), dt.UTC)
        ca = CertificateAuthority.load(pki)
        kizon = PeerIdentity("kizon-172014", "kizon-juki", "172014")
        cert, key = ca.issue(kizon, now, not_before=now - dt.timedelta(days=10),
                             not_after=now - dt.timedelta(days=1), write=False)
        write_pair(self._tmp, "kizon-expired", cert, key)
        other = CertificateAuthority.create(self._tmp / "other-ca", now, common_name="rogue CA")
        cert, key = other.issue(kizon, now, write=False)
        write_pair(self._tmp, "kizon-otherca", cert, key)
        ca_pem = pki / "ca.pem"
        return [
            ("expired_certificate", Identity("kizon-172014", self._tmp / "kizon-expired.pem",
                                             self._tmp / "kizon-expired.key", ca_pem), "cs-172014"),
            ("unknown_ca", Identity("kizon-172014", self._tmp / "kizon-otherca.pem",
                                    self._tmp / "kizon-otherca.key", ca_pem), "cs-172014"),
            ("no_certificate", Identity("kizon-172014", None, None, ca_pem), "cs-172014"),
            ("role_not_allowed", Identity.from_pki(pki, "ipnw"), "cs-172014"),
            ("other_prefecture", Identity.from_pki(pki, "cs-162019"), "pref-17"),
        ]

    async def _wrong_certificates(self, tick: Callable[[int], None]) -> None:
        attempts = self._bad_identities()
        for i in range(self.config.wrong_certificates):
            kind, ident, ep = attempts[i % len(attempts)]
            started = self.reactor.seconds()
            try:
                conn = await open_connection(self.reactor, self.endpoints.host,
                                             self.endpoints.port(ep), ident, ep, timeout=5.0)
            except (PeerRefused, ExchangeTimeout):
                self.summary.record(f"HANDSHAKE ({kind})", "refused",
                                    self.reactor.seconds() - started, f"tls:{kind}")
            else:
                self.answered_bad.append(f"{kind} certificate was answered by {ep}")
                self.summary.record(f"HANDSHAKE ({kind})", "accepted")
                await conn.close()
            tick(1)

    def _malformed(self, i: int) -> tuple[str, bytes, bool]:
        """(kind, bytes, fatal) of the i-th malformed frame."""
        ts = timestamp(self.reactor)
        good = encode_frame(MessageType.PING, "kizon-172014", "cs-172014", timestamp=ts)
        kinds = [
            ("unknown_message_type", encode_frame(0x7E7E, "kizon-172014", "cs-172014",
                                                  timestamp=ts), False),
            # a request, not a sequenced notification: the existing system's own numbering
            # (KizonJuki runs beside us under the same identity) stays untouched
            ("body_length_mismatch", encode_frame(JukinetMessage.SEARCH_REQUEST, "kizon-172014",
                                                  "cs-172014", b"\x00" * 10, record_count=1,
                                                  request_no=i + 1, timestamp=ts), False),
            ("bad_magic", b"XXXX" + good[4:], True),
        ]
        return kinds[i % len(kinds)]

    async def _malformed_frames(self, tick: Callable[[int], None]) -> None:
        ident = Identity.from_pki(self.endpoints.pki, "kizon-172014")
        conn: FrameConnection | None = None
        for i in range(self.config.malformed_frames):
            kind, data, fatal = self._malformed(i)
            if conn is None or conn.is_closed:
                conn = await open_connection(self.reactor, self.endpoints.host,
                                             self.endpoints.port("cs-172014"), ident,
                                             "cs-172014")
            started = self.reactor.seconds()
            try:
                [answer] = await conn.request(data, 1, timeout=5.0)
            except (PeerRefused, ExchangeTimeout) as exc:
                self.summary.record(f"MALFORMED ({kind})", "no_answer", None, exc.code)
                conn = None
            else:
                outcome, code = classify(answer)
                self.summary.record(f"MALFORMED ({kind})", outcome,
                                    self.reactor.seconds() - started, code)
                if outcome not in ("refused", "nacked"):
                    self.answered_bad.append(f"malformed frame ({kind}) was {outcome}")
                if fatal:
                    await conn.close()
                    conn = None
            tick(1)
        if conn is not None:
            await conn.close()

    async def _broad_searches(self, tick: Callable[[int], None]) -> None:
        # a CS of the same prefecture (金沢市 → 野々市市 172031 is in the dev PKI) asks pref-17
        ident = Identity.from_pki(self.endpoints.pki, "cs-172031")
        conn = await open_connection(self.reactor, self.endpoints.host,
                                     self.endpoints.port("pref-17"), ident, "pref-17")
        rng = self.population.rng
        for i in range(self.config.broad_searches):
            person = rng.choice(self.population.residents)
            # R3's refusal classes in turn: 氏名 alone, 住所 alone, 生年月日+住所 (no 氏名), and
            # 氏名 with a 住所 of one character (names no 市区町村); 性別 added to each
            name, birth, address = (
                (person.kanji_name, "", ""),
                ("", "", person.address),
                ("", person.birth_date, person.address),
                (person.kanji_name, "", person.address[:1]),
            )[i % 4]
            body = encode_body(SEARCH_REQUEST, {
                "juminhyo_code": "", "kojin_bango": "", "name": name, "birth_date": birth,
                "address": address, "sex": person.sex,
            })
            frame = encode_frame(JukinetMessage.SEARCH_REQUEST, "cs-172031", "pref-17", body,
                                 record_count=1, request_no=i + 1,
                                 timestamp=timestamp(self.reactor))
            started = self.reactor.seconds()
            [answer] = await conn.request(frame, 1, timeout=5.0)
            outcome, code = classify(answer)
            self.summary.record("SEARCH_REQUEST (too broad)", outcome,
                                self.reactor.seconds() - started, code)
            if answer.header.msg_type == JukinetMessage.SEARCH_RESPONSE:
                self.answered_bad.append("a search too broad under R3 was answered")
            tick(1)
        await conn.close()

    async def run(self, tick: Callable[[int], None]) -> None:
        """Every kind of misbehaviour the scenario asks for, one after the other."""
        if self.config.wrong_certificates:
            await self._wrong_certificates(tick)
        if self.config.malformed_frames:
            await self._malformed_frames(tick)
        if self.config.broad_searches:
            await self._broad_searches(tick)

    def finish(self) -> None:
        """Check that nothing bad was answered; remove the throwaway certificates."""
        import shutil

        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self.summary.check(
            "misbehaving peers get nothing (R1, R2, R3)", not self.answered_bad,
            "; ".join(self.answered_bad) or f"{self.summary.total} attempts, all refused")
