"""The intermediate server's domain service: the pure core over the registry store.

:class:`IntermediateService` answers information queries (the pure decision of
:mod:`juki_gateway.protocols.intermediate.decision`, then the 副本, sealing and a provision
record), keeps the permission list, 符号 and 副本, runs the flag two-person rule and the held
queries for operators, and writes an audit entry for every operator action.

Blocking database calls: queries are processed in batches (all the frames of one TCP read) in
ONE short transaction on the reactor thread — the reads are indexed point lookups and the writes
(spent permit ids, provision records, held queries) are committed together before any answer
leaves, so an answer is never sent without its provision record (group commit). Operator actions
are single short transactions. Fail-closed: a flag read that fails holds the query; a failed
commit sends no answer at all.

Spent permit ids (replay, R8) are kept in the store with their permit's expiry; the server
loads only those not yet expired at start and forgets each from memory once its permit has
expired (plus :data:`~juki_gateway.protocols.intermediate.permit.SPENT_ID_GRACE`), so a restart
reopens no replay and memory holds only what can still be replayed. The retention job deletes
the expired rows (:func:`juki_gateway.registry_store.retention.run_retention`).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509 import load_pem_x509_certificate
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Engine
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from juki_gateway.codecs.errors import CodecError
from juki_gateway.codecs.layouts import ATENA_NO_WIDTH
from juki_gateway.errors import JukiError
from juki_gateway.gateway.intermediate.operators import (
    ACTION_ROLES,
    TERMINAL,
    ExportRequest,
    HeldView,
    OperatorActions,
    OperatorIdentity,
    flag_from_row,
)
from juki_gateway.protocols.intermediate import crypto
from juki_gateway.protocols.intermediate.answer import (
    query_result_body,
    seal_answer,
)
from juki_gateway.protocols.intermediate.decision import (
    DecisionContext,
    InfoQuery,
    Outcome,
    Reason,
    decide_query,
)
from juki_gateway.protocols.intermediate.errors import (
    FukuhonRecordError,
    FukuhonUnknownAtena,
    IntermediateError,
    MalformedMessage,
)
from juki_gateway.protocols.intermediate.flags import (
    Flag,
    FlagState,
)
from juki_gateway.protocols.intermediate.fugo import (
    FugoPending,
    UnexpectedFugo,
)
from juki_gateway.protocols.intermediate.fukuhon import (
    FUKUHON_RECORD_LENGTH,
    decode_fukuhon,
    encode_fukuhon,
)
from juki_gateway.protocols.intermediate.items import (
    ANSWER_ITEMS_LAYOUT,
    mask_record,
    mask_to_items,
)
from juki_gateway.protocols.intermediate.messages import (
    FUGO_ISSUE_RESPONSE_LAYOUT,
    FUGO_REQUEST_LAYOUT,
    FUGO_RESPONSE_LAYOUT,
    INFO_QUERY_LAYOUT,
    SHORI_TSUBAN_ISSUE_LAYOUT,
    SHORI_TSUBAN_REQUEST_LAYOUT,
    ImsMessageType,
    QueryStatus,
)
from juki_gateway.protocols.intermediate.permission_list import (
    PermissionList,
    PermissionListHolder,
    decode_permission_list,
)
from juki_gateway.protocols.intermediate.permit import SPENT_ID_GRACE, decode_permit
from juki_gateway.registry_store import ims as store
from juki_gateway.registry_store.anchor import KEY_NAME as ANCHOR_KEY_NAME
from juki_gateway.registry_store.anchor import AuditKey, load_key
from juki_gateway.registry_store.audit import append_audit
from juki_gateway.registry_store.engine import describe_storage_error, storage_error
from juki_gateway.registry_store.queues import (
    OutboxItem,
    claim_due,
    enqueue,
    mark_sent_up_to,
    pending_count,
)

FUKUHON_KOBAN = "*"  # the store keys 副本 by (atena_no, koban); one record covers every 項番


class StoreFailure(IntermediateError):
    """The store could not commit a batch: no answer of that batch was sent."""

    code = "ims_store_failure"
    wire_code = 6605


log = Logger(namespace="juki_gateway.intermediate")


@dataclass(frozen=True, slots=True)
class ImsKeys:
    """Keys loaded once: our signing key and the network's verification key."""

    signing_key: ec.EllipticCurvePrivateKey
    network_key: ec.EllipticCurvePublicKey
    #: the audit anchor key (``pki/audit-anchor.key``); None leaves audit heads unanchored
    audit: AuditKey | None = None

    @classmethod
    def from_pki(cls, pki: Path, own: str = "ims-172014", network: str = "ipnw") -> ImsKeys:
        """Load ``<own>.key``, the public key of ``<network>.pem`` and the audit anchor key
        (required: operator actions are audited with it) from a PKI directory."""
        key = load_pem_private_key((pki / f"{own}.key").read_bytes(), None)
        cert = load_pem_x509_certificate((pki / f"{network}.pem").read_bytes())
        pub = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            pub, ec.EllipticCurvePublicKey
        ):
            raise JukiError("intermediate-server keys must be EC P-256")
        return cls(key, pub, load_key(pki / ANCHOR_KEY_NAME))  # no key: start-up says how


@dataclass(frozen=True, slots=True)
class FukuhonExport:
    """What ``fukuhon export`` produced: the records, and how many flagged people it left out."""

    data: bytes
    records: int
    flagged_left_out: int


class ImsMetrics:
    """Flag and held-query counts (never person identifiers) and query outcomes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.flags = Gauge(
            "juki_gateway_ims_flags",
            "Auto-response-block flags by state",
            ["state"],
            registry=self.registry,
        )
        self.held = Gauge(
            "juki_gateway_ims_held_queries", "Held queries by state", ["state"],
            registry=self.registry,
        )
        self.queries = Counter(
            "juki_gateway_ims_queries",
            "Information queries by outcome",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in Outcome:  # every outcome has a series from the start (0 until counted)
            self.queries.labels(str(outcome))


@dataclass
class _Batch:
    used: list[dict[str, Any]] = field(default_factory=list)
    provisions: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[Outcome, int] = field(default_factory=dict)


class IntermediateService(OperatorActions):
    """The intermediate server for one organisation (provider id) over one store engine."""

    def __init__(
        self,
        engine: Engine,
        keys: ImsKeys,
        provider_id: str,
        clock: IReactorTime,
        *,
        metrics: ImsMetrics | None = None,
        id_factory: Callable[[], str] | None = None,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.audit_key = keys.audit
        self.provider_id = provider_id
        self.clock = clock
        self.metrics = metrics if metrics is not None else ImsMetrics()
        self._new_id = id_factory or (lambda: os.urandom(8).hex())
        self._holder = PermissionListHolder(keys.network_key)
        #: spent permit ids not yet forgotten -> their permit's expiry (naive UTC), and the
        #: same as a heap, soonest expiry first, to forget them once it has passed
        self._used: dict[str, dt.datetime] = {}
        self._expiries: list[tuple[dt.datetime, str]] = []
        self._fugo: dict[str, str] = {}
        self._atena_fugo: dict[str, str] = {}
        self._counts = {o: 0 for o in Outcome}
        self._seq = itertools.count(1)
        #: the store outbox link of what waits for ipnw (released/不開示 results, 符号 requests)
        self.delivery_link = f"{provider_id}>ipnw"
        #: open 符号 requests (kept in the store too): 団体内統合宛名番号 -> 依頼番号, 依頼番号 ->
        #: 団体内統合宛名番号, 依頼番号 -> 処理通番 and 処理通番 -> 依頼番号 once the network issued it
        self._request_of_atena: dict[str, str] = {}
        self._atena_of_request: dict[str, str] = {}
        self._tsuban_of_request: dict[str, str] = {}
        self._request_of_tsuban: dict[str, str] = {}
        #: open requests to export 副本 with flagged people (kept in memory: a restart drops
        #: them, which only means asking again)
        self._export_requests: dict[str, ExportRequest] = {}

    # -- start-up -------------------------------------------------------------------------
    def start(self) -> None:
        """Load the kept permission list, the spent permits not yet expired and the 符号 map."""
        with self.engine.connect() as conn:
            kept = store.latest_permission_list(conn)
            if kept is not None:
                self._holder.current = decode_permission_list(kept)
            self._used = store.used_permits(conn, self.now() - SPENT_ID_GRACE)
            self._expiries = [(at, pid) for pid, at in self._used.items()]
            heapq.heapify(self._expiries)
            self._fugo = store.fugo_atena_map(conn)
            self._atena_fugo = {a: f for f, a in self._fugo.items()}
            for request_id, atena, tsuban in store.fugo_requests(conn):
                self._remember_request(request_id, atena, tsuban)
        self.refresh_gauges()

    def now(self) -> dt.datetime:
        """The injected clock's time as naive UTC."""
        return dt.datetime.fromtimestamp(self.clock.seconds(), dt.UTC).replace(tzinfo=None)

    def now14(self) -> str:
        """The injected clock's time as a 14-digit UTC timestamp."""
        return self.now().strftime("%Y%m%d%H%M%S")

    def forget_expired_permits(self, now: dt.datetime) -> int:
        """Drop from memory the spent permit ids whose permit expired more than
        :data:`SPENT_ID_GRACE` before ``now``; how many. Safe: a query with such a permit is
        refused as expired before the replay check (the store keeps them until the retention
        job purges them)."""
        cut = now - SPENT_ID_GRACE
        heap, used, n = self._expiries, self._used, 0
        while heap and heap[0][0] < cut:
            _, pid = heapq.heappop(heap)
            if pid in used and used[pid] < cut:
                del used[pid]
                n += 1
        return n

    @property
    def spent_permit_count(self) -> int:
        """How many spent permit ids the server remembers (their permits not yet expired)."""
        return len(self._used)

    @property
    def permission_list(self) -> PermissionList | None:
        """The kept permission list version, if any."""
        return self._holder.current

    # -- permission list ------------------------------------------------------------------
    def offer_permission_list(self, data: bytes) -> PermissionList:
        """Keep a distributed list if validly signed and newer (persisted); else raise why not."""
        previous = self._holder.current
        accepted = self._holder.offer(data)
        try:
            with self.engine.begin() as conn:
                store.keep_permission_list(conn, accepted.version, accepted.issued, data,
                                           self.now())
        except Exception:
            self._holder.current = previous
            raise
        return accepted

    # -- 符号 and 副本 ---------------------------------------------------------------------
    def register_fugo(self, atena_no: str, fugo: str) -> None:
        """Record the 符号 ipnw issued for a 団体内統合宛名番号 (idempotent for the same pair)."""
        if self._fugo.get(fugo) == atena_no:
            return
        with self.engine.begin() as conn:
            store.add_fugo(conn, fugo, atena_no, self.now())
        self._fugo[fugo] = atena_no
        self._atena_fugo[atena_no] = fugo

    def _remember_request(self, request_id: str, atena: str, tsuban: str | None) -> None:
        self._request_of_atena[atena] = request_id
        self._atena_of_request[request_id] = atena
        if tsuban:
            self._tsuban_of_request[request_id] = tsuban
            self._request_of_tsuban[tsuban] = request_id

    def fugo_requests(self, body: bytes) -> bytes:
        """Answer bango-renkei's ``fugo-request`` records; for an unknown one ask ipnw for a
        処理通番.

        One ``fugo-response`` record per request: the 符号 (result 0000), or
        :class:`~juki_gateway.protocols.intermediate.fugo.FugoPending` (ask again) with the
        処理通番 once the network issued it (empty before). The first request of a
        団体内統合宛名番号 queues a ``SHORI_TSUBAN_REQUEST`` for ipnw under a new 依頼番号.
        """
        out = []
        for values in FUGO_REQUEST_LAYOUT.decode_many(body):
            atena = values["atena_no"]
            fugo, tsuban, result = self.fugo_of(atena) or "", "", 0
            if not fugo:
                request_id = self._request_of_atena.get(atena)
                if request_id is None:
                    request_id = self._new_request_id()
                    request = SHORI_TSUBAN_REQUEST_LAYOUT.encode(
                        {"organisation": self.provider_id, "request_id": request_id})
                    now = self.now()
                    with self.engine.begin() as conn:
                        store.add_fugo_request(conn, request_id, atena, now)
                        enqueue(conn, self.delivery_link, ImsMessageType.SHORI_TSUBAN_REQUEST,
                                request, now)
                    self._remember_request(request_id, atena, None)
                tsuban = self._tsuban_of_request.get(request_id, "")
                result = FugoPending.wire_code
            out.append(
                FUGO_RESPONSE_LAYOUT.encode(
                    {"atena_no": atena, "fugo": fugo, "shori_tsuban": tsuban,
                     "result_code": f"{result:04d}"}
                )
            )
        return b"".join(out)

    def _new_request_id(self) -> str:
        while True:
            request_id = os.urandom(8).hex()
            if request_id not in self._atena_of_request:
                return request_id

    def shori_tsuban_issued(self, body: bytes) -> int:
        """Record the 処理通番 ipnw issued for 符号 requests (``shori-tsuban-issue`` records,
        idempotent for the same pair); how many records. An unknown 依頼番号, another
        organisation or a second 処理通番 for one request is refused
        (:class:`~juki_gateway.protocols.intermediate.fugo.UnexpectedFugo`), nothing kept."""
        rows = SHORI_TSUBAN_ISSUE_LAYOUT.decode_many(body)
        new: dict[str, str] = {}
        for values in rows:
            org, request_id, tsuban = (values["organisation"], values["request_id"],
                                       values["shori_tsuban"])
            if org != self.provider_id or request_id not in self._atena_of_request:
                raise UnexpectedFugo(f"ipnw sent a 処理通番 for {org}/{request_id} that was "
                                     "not requested")
            known = self._tsuban_of_request.get(request_id) or new.get(request_id)
            owner = self._request_of_tsuban.get(tsuban)
            if (known is not None and known != tsuban) or owner not in (None, request_id):
                raise UnexpectedFugo(f"ipnw sent a second 処理通番 for {request_id}, or one "
                                     "already given to another request")
            if known is None:
                new[request_id] = tsuban
        if new:
            with self.engine.begin() as conn:
                for request_id, tsuban in new.items():
                    store.set_shori_tsuban(conn, request_id, tsuban)
            for request_id, tsuban in new.items():
                self._remember_request(request_id, self._atena_of_request[request_id], tsuban)
        return len(rows)

    def fugo_issued(self, body: bytes) -> int:
        """Record the 符号 ipnw issued (``fugo-issue-response`` records: the 符号 of a
        処理通番); how many records. A 処理通番 this server did not get, or another
        organisation, is refused (:class:`UnexpectedFugo`); a repeat is taken again."""
        rows = FUGO_ISSUE_RESPONSE_LAYOUT.decode_many(body)
        found: list[tuple[str, str]] = []
        for values in rows:
            org, tsuban = values["organisation"], values["shori_tsuban"]
            request_id = self._request_of_tsuban.get(tsuban)
            if org != self.provider_id or request_id is None:
                raise UnexpectedFugo(f"ipnw sent a 符号 for {org} under 処理通番 {tsuban} that "
                                     "was not requested")
            found.append((self._atena_of_request[request_id], values["fugo"]))
        for atena, fugo in found:
            self.register_fugo(atena, fugo)
        return len(rows)

    def claim_deliveries(self, worker: str) -> list[OutboxItem]:
        """What waits for ipnw, leased to one connection (resent later unless acknowledged)."""
        with self.engine.begin() as conn:
            return claim_due(conn, self.delivery_link, worker, self.now())

    def acknowledge_deliveries(self, seq: int) -> int:
        """ipnw acknowledged every delivery up to 更新順番号 ``seq``; how many were settled."""
        with self.engine.begin() as conn:
            return mark_sent_up_to(conn, self.delivery_link, seq, self.now())

    def pending_deliveries(self) -> int:
        """How many deliveries to ipnw wait for an acknowledgement."""
        with self.engine.begin() as conn:
            return pending_count(conn, self.delivery_link)

    def fugo_of(self, atena_no: str) -> str | None:
        """The 符号 of a 団体内統合宛名番号, if one was issued."""
        return self._atena_fugo.get(atena_no)

    def import_fukuhon(
        self, body: bytes, operator: OperatorIdentity | None = None
    ) -> list[tuple[int, str, JukiError | None]]:
        """Format-check (the codec, intermediate profile) and store 副本 records one by one
        (R12); one result per record: None, or the error that refused that record."""
        if operator is not None:
            self._authorise(operator, "fukuhon.import")
        size = FUKUHON_RECORD_LENGTH
        if len(body) % size:
            raise MalformedMessage(
                f"副本 import of {len(body)} bytes is not whole records of {size}"
            )
        known = self._atena_fugo
        results: list[tuple[int, str, JukiError | None]] = []
        rows: list[dict[str, Any]] = []
        for index in range(len(body) // size):
            chunk = body[index * size : (index + 1) * size]
            atena = chunk[:ATENA_NO_WIDTH].decode("ascii", "replace")
            try:
                atena, items = decode_fukuhon(chunk)
                if atena not in known:
                    raise FukuhonUnknownAtena(f"団体内統合宛名番号 {atena} has no 符号")
            except (CodecError, FukuhonRecordError) as exc:
                results.append((index, atena, exc))
                continue
            rows.append({"atena_no": atena, "record": ANSWER_ITEMS_LAYOUT.encode(items),
                         "setai_no": items.get("setai_no") or None})
            results.append((index, atena, None))
        now = self.now()
        with self.engine.begin() as conn:
            store.replace_fukuhon(conn, {r["atena_no"]: r["record"] for r in rows},
                                  FUKUHON_KOBAN, now, {r["atena_no"]: r["setai_no"] for r in rows})
            if operator is not None:
                append_audit(
                    conn,
                    now=now,
                    operator_id=operator.name,
                    terminal_id=TERMINAL,
                    subject="fukuhon",
                    action="fukuhon.import",
                    detail={"records": len(results), "accepted": len(rows)},
                    key=self.audit_key,
                )
        return results

    def export_fukuhon(
        self,
        operator: OperatorIdentity | None = None,
        *,
        include_flagged: bool = False,
        request_id: str | None = None,
    ) -> FukuhonExport:
        """Every 副本 record, in 団体内統合宛名番号 order, for reconciliation with the original.

        People covered by a blocking flag (flagged or accompanying) are left out, unless
        ``include_flagged`` and ``request_id`` names this reviewer's export request confirmed
        by a second operator (:meth:`fukuhon_export_request`); the request is then used up.
        """
        confirmed_by: str | None = None
        if operator is not None:
            self._authorise(operator, "fukuhon.export")
            if include_flagged:
                self._authorise(operator, "fukuhon.export-request")
                confirmed_by = self._spend_export_request(operator, request_id)
        with self.engine.begin() as conn:
            covered = (set() if include_flagged else
                       store.covered_atenas(conn, except_state=str(FlagState.CLEARED)))
            out = []
            left_out = 0
            for atena_no, record in store.all_fukuhon(conn):
                if atena_no in covered:
                    left_out += 1
                    continue
                items = ANSWER_ITEMS_LAYOUT.decode(record)
                out.append(encode_fukuhon(atena_no, {k: v for k, v in items.items() if v}))
            if operator is not None:
                append_audit(
                    conn,
                    now=self.now(),
                    operator_id=operator.name,
                    terminal_id=TERMINAL,
                    subject="fukuhon",
                    action="fukuhon.export",
                    detail={"records": len(out), "flagged_left_out": left_out,
                            "include_flagged": include_flagged, "request": request_id,
                            "confirmed_by": confirmed_by},
                    key=self.audit_key,
                )
        return FukuhonExport(b"".join(out), len(out), left_out)

    # -- information queries --------------------------------------------------------------
    def handle_queries(self, bodies: Sequence[bytes]) -> list[bytes]:
        """Decide, answer and record a batch of ``info-query`` bodies; one result body each.

        Flags and 副本 of the batch's people are read in one query each; the batch's writes
        are committed before this returns. If the commit fails, raises :class:`StoreFailure`
        and no result of the batch may be sent. A body that does not decode gets a
        :class:`MalformedMessage` raised before anything is written.
        """
        now = self.now()
        now14 = now.strftime("%Y%m%d%H%M%S")
        queries = []
        for i, body in enumerate(bodies):
            try:
                queries.append(self._decode_query(body))
            except (CodecError, IntermediateError) as exc:
                code = exc.code
                raise MalformedMessage(
                    f"query {i} of the batch does not follow the info-query layout ({code})"
                ) from None
        self.forget_expired_permits(now)
        batch = _Batch()
        results: list[bytes] = []
        atenas = [a for a in (self._fugo.get(q.fugo) for q in queries) if a is not None]
        try:
            with self.engine.begin() as conn:
                flag_error: Exception | None = None
                flags: dict[str, list[Flag]] = {}
                try:
                    with conn.begin_nested():  # a failed read rolls back to here only
                        flags = {a: [flag_from_row(r) for r in rows]
                                 for a, rows in store.flags_of(conn, atenas).items()}
                except Exception as exc:  # fail-closed: the decision holds every query
                    flag_error = exc

                def flags_for(atena: str) -> Sequence[Flag]:
                    if flag_error is not None:
                        raise flag_error
                    return flags.get(atena, [])

                ctx = DecisionContext(
                    network_key=self.keys.network_key,
                    provider_id=self.provider_id,
                    now=now14,
                    permit_used=self._used.__contains__,
                    permission_list=self._holder.current,
                    atena_for_fugo=self._fugo.get,
                    flags_for_atena=flags_for,
                )
                fukuhon = store.fukuhon_of(conn, atenas, FUKUHON_KOBAN)
                recipients: dict[bytes, ec.EllipticCurvePublicKey] = {}
                for query in queries:
                    results.append(self._one_query(ctx, query, fukuhon, recipients, now, batch))
                if batch.used:
                    store.spend_permits(conn, batch.used)
                if batch.provisions:
                    store.add_provisions(conn, batch.provisions)
                if batch.held:
                    store.add_held(conn, batch.held)
        except JukiError:
            raise
        except Exception as exc:
            # Fail-closed: nothing of this batch is sent; its permit ids stay spent. The error's
            # text quotes the statement's parameters (residents): only its class and code are
            # told, under an incident id that the log line of the failure carries too.
            incident = os.urandom(4).hex()
            stored = storage_error(exc) or exc
            log.failure("store failure, batch of {n} not answered, incident {incident}", event="ims_store_failure",
                        n=len(bodies), incident=incident)
            raise StoreFailure(
                f"store failure, batch of {len(bodies)} not answered: "
                f"{describe_storage_error(stored, incident)}"
            ) from None
        for outcome, count in batch.outcomes.items():
            self.metrics.queries.labels(str(outcome)).inc(count)
        if batch.held:
            self.refresh_gauges()
        return results

    @staticmethod
    def _decode_query(body: bytes) -> InfoQuery:
        values = INFO_QUERY_LAYOUT.decode(body)
        return InfoQuery(
            fugo=values["fugo"],
            kouban=int(values["kouban"]),
            items=mask_to_items(values["items"]),
            route=values["route"],
            permit=decode_permit(values["permit"]),
        )

    def _one_query(
        self,
        ctx: DecisionContext,
        query: InfoQuery,
        fukuhon: dict[str, bytes],
        recipients: dict[bytes, ec.EllipticCurvePublicKey],
        now: dt.datetime,
        batch: _Batch,
    ) -> bytes:
        permit = query.permit
        decision = decide_query(query, ctx)
        if decision.consumes_permit:
            expires_at = permit.expires_at
            self._used[permit.permit_id] = expires_at
            heapq.heappush(self._expiries, (expires_at, permit.permit_id))
            batch.used.append(
                {"permit_id": permit.permit_id, "used_at": now, "expires_at": expires_at}
            )
        reason = decision.reason
        sealed: bytes | None = None
        record: bytes | None = None
        if decision.atena_no is not None and reason.outcome is not Outcome.REFUSED:
            record = fukuhon.get(decision.atena_no)
            if record is None:
                reason = Reason.NO_FUKUHON
        recipient = recipients.get(permit.requester_key)
        if recipient is None and reason.outcome is not Outcome.REFUSED:
            try:  # the key answers are sealed to (also for a later release of a held query)
                recipient = crypto.load_public_key(permit.requester_key)
                recipients[permit.requester_key] = recipient
            except IntermediateError:
                reason = Reason.BAD_REQUESTER_KEY
        if reason is Reason.ANSWERED:
            assert record is not None and recipient is not None
            sealed = seal_answer(permit, mask_record(record, query.items), recipient)
            status = QueryStatus.ANSWERED
        elif reason.outcome is Outcome.HELD:
            assert record is not None and decision.atena_no is not None
            status = QueryStatus.HELD
            batch.held.append(
                {
                    "held_id": f"h{next(self._seq)}-{self._new_id()}",
                    "permit_id": permit.permit_id,
                    "requester": permit.requester,
                    "atena_no": decision.atena_no,
                    "kouban": query.kouban,
                    "items": " ".join(sorted(query.items)),
                    "reason_code": reason.wire_code,
                    "flag_ids": " ".join(decision.flag_ids),
                    "permit": permit.to_bytes(),
                    "content": mask_record(record, query.items),
                    "state": "held",
                    "held_at": now,
                }
            )
        else:
            status = QueryStatus.REFUSED
        self._counts[reason.outcome] += 1
        batch.outcomes[reason.outcome] = batch.outcomes.get(reason.outcome, 0) + 1
        batch.provisions.append(
            self._provision(
                now,
                permit.requester,
                decision.atena_no,
                query.kouban,
                query.items,
                {Outcome.ANSWERED: "provided", Outcome.HELD: "held", Outcome.REFUSED: "refused"}[
                    reason.outcome
                ],
                f"{reason.wire_code:04d} {reason.code} permit={permit.permit_id}",
                None,
            )
        )
        return query_result_body(permit, status, reason, sealed)

    def _provision(
        self,
        now: dt.datetime,
        requester: str,
        atena_no: str | None,
        kouban: int,
        items: Iterable[str],
        outcome: str,
        detail: str,
        operator: str | None,
    ) -> dict[str, Any]:
        return {
            "occurred_at": now,
            "kind": "intermediate",
            "provider": self.provider_id,
            "recipient": requester,
            "operator_id": operator,
            "subject": atena_no or "-",
            "items": f"{kouban}:{','.join(sorted(items))}",
            "outcome": outcome,
            "detail": detail,
        }

    def record_malformed(self, requester: str, error: JukiError) -> None:
        """A refused provision record for queries refused as malformed (R5): who sent them and
        the code; nothing of them is trusted enough to name a person."""
        with self.engine.begin() as conn:
            store.add_provisions(conn, [self._provision(
                self.now(), requester, None, 0, (), "refused",
                f"{error.wire_code:04d} {error.code}", None)])

    # -- metrics --------------------------------------------------------------------------
    def refresh_gauges(self) -> None:
        """Recount flags and held queries by state (counts only, never identifiers)."""
        try:
            with self.engine.connect() as conn:
                flags, held = store.counts_by_state(conn)
        except Exception:
            return  # metrics never break the service
        for s in FlagState:
            self.metrics.flags.labels(str(s)).set(flags.get(str(s), 0))
        for h in ("held", "released", "refused"):
            self.metrics.held.labels(h).set(held.get(h, 0))


__all__ = [
    "ACTION_ROLES",
    "HeldView",
    "ImsKeys",
    "ImsMetrics",
    "IntermediateService",
    "OperatorIdentity",
    "StoreFailure",
]
