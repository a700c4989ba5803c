"""Operator actions of the intermediate server: flags, held queries and provision records.

Every action checks the operator's certificate roles against :data:`ACTION_ROLES` and writes an
audit entry (R6) in the same transaction as the action itself. :class:`OperatorActions` is the
part of :class:`~juki_gateway.gateway.intermediate.service.IntermediateService` the admin endpoint
drives; it relies on the service's engine, clock and provision-record builder.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine
from twisted.internet.interfaces import IReactorTime

from juki_gateway.protocols.intermediate.answer import (
    query_result_body,
    seal_answer,
)
from juki_gateway.protocols.intermediate.decision import (
    Reason,
)
from juki_gateway.protocols.intermediate.errors import (
    ExportNotConfirmed,
    HeldQueryError,
    NotAuthorised,
    SelfConfirmation,
    UnknownFlag,
)
from juki_gateway.protocols.intermediate.flags import (
    Flag,
    FlagAction,
    FlagScope,
    FlagState,
    apply_action,
    request_set,
)
from juki_gateway.protocols.intermediate.items import (
    ANSWER_ITEMS_LAYOUT,
)
from juki_gateway.protocols.intermediate.messages import (
    ImsMessageType,
    QueryStatus,
)
from juki_gateway.protocols.intermediate.permit import Permit, decode_permit
from juki_gateway.registry_store import ims as store
from juki_gateway.registry_store.anchor import AuditKey
from juki_gateway.registry_store.audit import append_audit
from juki_gateway.registry_store.queues import (
    enqueue,
)

TERMINAL = "admin-endpoint"

#: Operator sub-role required per action (brief R7; PKI issue's operator roles).
ACTION_ROLES: dict[str, frozenset[str]] = {
    "flags.request-set": frozenset({"flag-operator"}),
    "flags.request-clear": frozenset({"flag-operator"}),
    "flags.confirm": frozenset({"flag-operator", "reviewer"}),
    "flags.list": frozenset({"flag-operator", "reviewer", "auditor"}),
    "flags.show": frozenset({"flag-operator", "reviewer", "auditor"}),
    "held.list": frozenset({"reviewer", "auditor"}),
    "held.show": frozenset({"reviewer"}),
    "held.release": frozenset({"reviewer"}),
    "held.refuse": frozenset({"reviewer"}),
    "provisions.list": frozenset({"auditor", "reviewer"}),
    "fukuhon.import": frozenset({"flag-operator", "reviewer"}),
    "fukuhon.export": frozenset({"reviewer", "auditor"}),
    "fukuhon.export-request": frozenset({"reviewer"}),
    "fukuhon.export-confirm": frozenset({"reviewer", "flag-operator"}),
}

#: How long a confirmed request to export 副本 with flagged people stays usable (seconds).
EXPORT_REQUEST_TTL = 900.0


@dataclass
class ExportRequest:
    """A reviewer's request to export 副本 with flagged people: usable once, by that reviewer,
    after another operator confirmed it, within :data:`EXPORT_REQUEST_TTL` of the request."""

    request_id: str
    requested_by: str
    requested_at: float
    confirmed_by: str | None = None


@dataclass(frozen=True, slots=True)
class OperatorIdentity:
    """An operator as authenticated by their certificate: name and sub-roles."""

    name: str
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class HeldView:
    """A held query as an operator sees it, with the content that would be sent."""

    held_id: str
    permit_id: str
    requester: str
    atena_no: str
    kouban: int
    items: frozenset[str]
    reason: Reason
    flag_ids: tuple[str, ...]
    state: str
    held_at: dt.datetime
    content: dict[str, str]
    decided_by: str | None


def flag_row(f: Flag) -> dict[str, Any]:
    return {
        "flag_id": f.flag_id,
        "atena_no": f.atena_no,
        "scopes": " ".join(s.to_text() for s in f.scopes),
        "reason_code": f.reason_code,
        "review_date": f.review_date,
        "state": str(f.state),
        "requested_by": f.requested_by,
        "requested_at": f.requested_at,
        "confirmed_by": f.confirmed_by,
        "confirmed_at": f.confirmed_at,
        "clear_requested_by": f.clear_requested_by,
        "clear_requested_at": f.clear_requested_at,
        "cleared_by": f.cleared_by,
        "cleared_at": f.cleared_at,
    }


def flag_from_row(row: Any, members: Sequence[str] = ()) -> Flag:
    scopes = tuple(FlagScope.from_text(t) for t in row.scopes.split())
    return Flag(
        row.flag_id,
        row.atena_no,
        scopes,
        row.reason_code,
        row.review_date,
        FlagState(row.state),
        row.requested_by,
        row.requested_at,
        row.confirmed_by,
        row.confirmed_at,
        row.clear_requested_by,
        row.clear_requested_at,
        row.cleared_by,
        row.cleared_at,
        tuple(members),
    )


class OperatorActions:
    """Flag, held-query and provision-record actions (mixed into the service)."""

    # provided by IntermediateService
    clock: IReactorTime
    _export_requests: dict[str, ExportRequest]
    engine: Engine
    audit_key: AuditKey | None
    delivery_link: str
    _new_id: Callable[[], str]
    now: Callable[[], dt.datetime]
    now14: Callable[[], str]
    refresh_gauges: Callable[[], None]
    _provision: Callable[..., dict[str, Any]]

    # -- operators: authorisation and audit -------------------------------------------------
    def _authorise(self, operator: OperatorIdentity, action: str) -> None:
        allowed = ACTION_ROLES[action]
        if not operator.roles & allowed:
            raise NotAuthorised(
                f"operator {operator.name} ({', '.join(sorted(operator.roles)) or 'no role'}) may "
                f"not {action}: needs one of {', '.join(sorted(allowed))}"
            )

    def _audit(
        self,
        conn: Connection,
        operator: OperatorIdentity,
        subject: str,
        action: str,
        detail: dict[str, object],
    ) -> None:
        append_audit(
            conn,
            now=self.now(),
            operator_id=operator.name,
            terminal_id=TERMINAL,
            subject=subject,
            action=action,
            detail=detail,
            key=self.audit_key,
        )

    # -- flags ----------------------------------------------------------------------------
    def flag_request_set(
        self,
        operator: OperatorIdentity,
        atena_no: str,
        scopes: Sequence[FlagScope],
        reason_code: str,
        review_date: str,
        accompanying: Sequence[str] = (),
    ) -> Flag:
        """Request a flag; it blocks from the moment this returns (before confirmation).

        ``accompanying`` names 併せて支援を求める者: the same flag covers them. The audit entry
        counts the household members (same 世帯番号 in the 副本) left without any flag;
        :meth:`household_unflagged` names them for the operator's warning.
        """
        self._authorise(operator, "flags.request-set")
        flag = request_set(
            f"fl-{self._new_id()}",
            atena_no,
            scopes,
            reason_code,
            review_date,
            operator.name,
            self.now14(),
            accompanying,
        )
        with self.engine.begin() as conn:
            store.add_flag(conn, flag_row(flag), flag.accompanying)
            self._audit(
                conn,
                operator,
                atena_no,
                "flags.request-set",
                {
                    "flag": flag.flag_id,
                    "scopes": flag_row(flag)["scopes"] or "all",
                    "reason": reason_code,
                    "review": review_date,
                    "accompanying": list(flag.accompanying),
                    "household_unflagged": len(self._household_unflagged(conn, flag)),
                },
            )
        self.refresh_gauges()
        return flag

    def _household_unflagged(self, conn: Connection, flag: Flag) -> list[str]:
        covered = store.covered_atenas(conn, except_state=str(FlagState.CLEARED))
        return [a for a in store.household_of(conn, flag.atena_no)
                if a not in covered and a not in flag.subjects]

    def household_unflagged(self, flag: Flag) -> list[str]:
        """Members of the flagged person's household (same 世帯番号 in the 副本) that no
        blocking flag covers: they would still be answered automatically, with the shared
        address and 世帯番号 (the operator is warned)."""
        with self.engine.begin() as conn:
            return self._household_unflagged(conn, flag)

    def _flag_action(
        self, operator: OperatorIdentity, flag_id: str, action: FlagAction, audit_action: str
    ) -> Flag:
        with self.engine.begin() as conn:
            row = store.flag_by_id(conn, flag_id)
            if row is None:
                raise UnknownFlag(f"no flag {flag_id}")
            before = flag_from_row(row, store.flag_members(conn, [flag_id]).get(flag_id, ()))
            after = apply_action(before, action, operator.name, self.now14())
            store.update_flag(conn, flag_id, flag_row(after))
            self._audit(
                conn,
                operator,
                after.atena_no,
                audit_action,
                {"flag": flag_id, "from": str(before.state), "to": str(after.state)},
            )
        self.refresh_gauges()
        return after

    def flag_request_clear(self, operator: OperatorIdentity, flag_id: str) -> Flag:
        """Request a clear; the flag keeps blocking until another operator confirms."""
        self._authorise(operator, "flags.request-clear")
        return self._flag_action(operator, flag_id, FlagAction.REQUEST_CLEAR, "flags.request-clear")

    def flag_confirm(self, operator: OperatorIdentity, flag_id: str) -> Flag:
        """Confirm the pending set or clear (a different operator than the requester)."""
        self._authorise(operator, "flags.confirm")
        return self._flag_action(operator, flag_id, FlagAction.CONFIRM, "flags.confirm")

    def audit_outcome(self, operator: OperatorIdentity, action: str, outcome: str,
                      detail: dict[str, object]) -> None:
        """Audit an operator's request that was refused or failed (``ACTION-refused`` /
        ``ACTION-failed``): every request is an action of the log, not only those carried out
        (R6)."""
        with self.engine.begin() as conn:
            self._audit(conn, operator, "-", f"{action}-{outcome}", detail)

    def flags_list(
        self, operator: OperatorIdentity, *, include_cleared: bool = False
    ) -> list[Flag]:
        """Flags (blocking ones unless ``include_cleared``)."""
        self._authorise(operator, "flags.list")
        with self.engine.begin() as conn:
            rows = store.flag_rows(
                conn, except_state=None if include_cleared else str(FlagState.CLEARED))
            members = store.flag_members(conn, [r.flag_id for r in rows])
            flags = [flag_from_row(r, members.get(r.flag_id, ())) for r in rows]
            self._audit(conn, operator, "flags", "flags.list", {"count": len(flags)})
        return flags

    def flag_show(self, operator: OperatorIdentity, flag_id: str) -> Flag:
        """One flag."""
        self._authorise(operator, "flags.show")
        with self.engine.begin() as conn:
            row = store.flag_by_id(conn, flag_id)
            if row is None:
                raise UnknownFlag(f"no flag {flag_id}")
            self._audit(conn, operator, row.atena_no, "flags.show", {"flag": flag_id})
            members = store.flag_members(conn, [flag_id]).get(flag_id, ())
        return flag_from_row(row, members)

    # -- 副本 export with flagged people: two operators -------------------------------------
    def fukuhon_export_request(self, operator: OperatorIdentity) -> ExportRequest:
        """A reviewer asks to export 副本 *with* flagged people; another operator must confirm."""
        self._authorise(operator, "fukuhon.export-request")
        now = self.clock.seconds()
        for rid, req in list(self._export_requests.items()):
            if now - req.requested_at > EXPORT_REQUEST_TTL:
                del self._export_requests[rid]
        req = ExportRequest(f"fx-{self._new_id()}", operator.name, now)
        self._export_requests[req.request_id] = req
        with self.engine.begin() as conn:
            self._audit(conn, operator, "fukuhon", "fukuhon.export-request",
                        {"request": req.request_id})
        return req

    def fukuhon_export_confirm(self, operator: OperatorIdentity, request_id: str) -> ExportRequest:
        """Confirm another reviewer's request to export 副本 with flagged people."""
        self._authorise(operator, "fukuhon.export-confirm")
        req = self._live_export_request(request_id)
        if req.requested_by == operator.name:
            raise SelfConfirmation(
                f"operator {operator.name} requested export {request_id} and cannot confirm it: "
                "a different operator must")
        if req.confirmed_by is not None:
            raise ExportNotConfirmed(f"export {request_id} was already confirmed")
        req.confirmed_by = operator.name
        with self.engine.begin() as conn:
            self._audit(conn, operator, "fukuhon", "fukuhon.export-confirm",
                        {"request": request_id, "requested_by": req.requested_by})
        return req

    def _live_export_request(self, request_id: str) -> ExportRequest:
        req = self._export_requests.get(request_id)
        if req is None or self.clock.seconds() - req.requested_at > EXPORT_REQUEST_TTL:
            self._export_requests.pop(request_id, None)
            raise ExportNotConfirmed(
                f"no open export request {request_id} (unknown, used, or older than "
                f"{EXPORT_REQUEST_TTL:.0f} s)")
        return req

    def _spend_export_request(self, operator: OperatorIdentity, request_id: str | None) -> str:
        """The confirmed request that lets ``operator`` export flagged people, used up."""
        if not request_id:
            raise ExportNotConfirmed(
                "exporting flagged people needs a request confirmed by a second operator: "
                "'fukuhon request-export', then 'fukuhon confirm-export ID' by another operator")
        req = self._live_export_request(request_id)
        if req.requested_by != operator.name:
            raise ExportNotConfirmed(
                f"export {request_id} was requested by another operator")
        if req.confirmed_by is None:
            raise ExportNotConfirmed(f"export {request_id} is not confirmed yet")
        del self._export_requests[request_id]
        return req.confirmed_by

    # -- held queries ---------------------------------------------------------------------
    def _held_view(self, row: Any) -> HeldView:
        content = ANSWER_ITEMS_LAYOUT.decode(row.content)
        return HeldView(
            row.held_id,
            row.permit_id,
            row.requester,
            row.atena_no,
            row.kouban,
            frozenset(row.items.split()),
            Reason.from_wire(row.reason_code),
            tuple(row.flag_ids.split()),
            row.state,
            row.held_at,
            {k: v for k, v in content.items() if v is not None},
            row.decided_by,
        )

    def held_list(
        self, operator: OperatorIdentity, *, state: str | None = "held"
    ) -> list[HeldView]:
        """Held queries (still waiting by default)."""
        self._authorise(operator, "held.list")
        with self.engine.begin() as conn:
            views = [self._held_view(r) for r in store.held_rows(conn, state=state)]
            self._audit(conn, operator, "held", "held.list", {"count": len(views)})
        return views

    def held_show(self, operator: OperatorIdentity, held_id: str) -> HeldView:
        """One held query with the content that would be sent."""
        self._authorise(operator, "held.show")
        with self.engine.begin() as conn:
            row = store.held_by_id(conn, held_id)
            if row is None:
                raise HeldQueryError(f"no held query {held_id}")
            self._audit(conn, operator, row.atena_no, "held.show", {"held": held_id})
        return self._held_view(row)

    def _decide_held(self, operator: OperatorIdentity, held_id: str, release: bool) -> bytes:
        now = self.now()
        with self.engine.begin() as conn:
            row = store.held_by_id(conn, held_id)
            if row is None:
                raise HeldQueryError(f"no held query {held_id}")
            if row.state != "held":
                raise HeldQueryError(f"held query {held_id} was already {row.state}")
            permit: Permit = decode_permit(row.permit)
            items = frozenset(row.items.split())
            if release:
                sealed = seal_answer(permit, row.content)
                body = query_result_body(permit, QueryStatus.RELEASED, Reason.RELEASED, sealed)
            else:
                body = query_result_body(permit, QueryStatus.WITHHELD, Reason.WITHHELD)
            new_state = "released" if release else "refused"
            store.decide_held(conn, held_id, new_state, operator.name, now)
            store.add_provisions(conn, [
                self._provision(
                    now,
                    permit.requester,
                    row.atena_no,
                    row.kouban,
                    items,
                    "provided" if release else "refused",
                    f"{(Reason.RELEASED if release else Reason.WITHHELD).wire_code:04d} "
                    f"held={held_id} permit={permit.permit_id}",
                    operator.name,
                ),
            ])
            self._audit(
                conn,
                operator,
                row.atena_no,
                "held.release" if release else "held.refuse",
                {"held": held_id, "permit": permit.permit_id},
            )
            # durable: delivered on ipnw's next PING and resent until ipnw acknowledges it
            enqueue(conn, self.delivery_link, ImsMessageType.QUERY_RESULT, body, now)
        self.refresh_gauges()
        return body

    def held_release(self, operator: OperatorIdentity, held_id: str) -> bytes:
        """Release a held query: its reviewed content is sealed, signed and sent."""
        self._authorise(operator, "held.release")
        return self._decide_held(operator, held_id, True)

    def held_refuse(self, operator: OperatorIdentity, held_id: str) -> bytes:
        """Refuse a held query (不開示): the requester gets a status and no data."""
        self._authorise(operator, "held.refuse")
        return self._decide_held(operator, held_id, False)

    # -- provision records -----------------------------------------------------------------
    def provisions(
        self,
        operator: OperatorIdentity,
        *,
        person: str | None = None,
        since: dt.datetime | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Provision records of the intermediate server, newest first."""
        self._authorise(operator, "provisions.list")
        with self.engine.begin() as conn:
            rows = store.provision_rows(conn, person=person, since=since, limit=limit)
            self._audit(
                conn,
                operator,
                person or "provisions",
                "provisions.list",
                {"count": len(rows), "since": str(since) if since else ""},
            )
        return rows
