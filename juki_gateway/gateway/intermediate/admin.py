"""The admin endpoint's session: operator requests over mutual TLS, one JSON body per frame.

Operators connect to the admin port with their ``op-…`` certificate; the TLS layer admits only
the ``operator`` role of our organisation, and the certificate's operator sub-roles
(flag-operator, reviewer, auditor) decide what each may do (:data:`.service.ACTION_ROLES`).
A request is an ``ADMIN_REQUEST`` frame whose byte body is UTF-8 JSON ``{"action": …,
"args": {…}}``; the answer is an ``ADMIN_RESPONSE`` frame with ``{"ok": true, "result": …}`` or
``{"ok": false, "code": …, "wire_code": …, "message": …}``. Every action is an audit entry,
written by the service in the same transaction as the action.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from juki_gateway.codecs.frame import Frame
from juki_gateway.errors import JukiError
from juki_gateway.gateway.intermediate.operators import (
    EXPORT_REQUEST_TTL,
    ExportRequest,
    HeldView,
    OperatorIdentity,
)
from juki_gateway.gateway.intermediate.service import IntermediateService
from juki_gateway.gateway.intermediate.worker import Run, StoreBackedApp, run_here
from juki_gateway.protocols.catalogue import CATALOGUE
from juki_gateway.protocols.channel import Catalogue, FrameChannel, Refused
from juki_gateway.protocols.intermediate.admin_messages import AdminMessageType
from juki_gateway.protocols.intermediate.errors import IntermediateError, MalformedMessage
from juki_gateway.protocols.intermediate.flags import Flag, FlagScope

#: What the admin port decodes: the whole catalogue, the admin types (byte bodies) included.
ADMIN_CATALOGUE = Catalogue(CATALOGUE)


log = Logger(namespace="juki_gateway.intermediate.admin")


class AdminActionFailed(IntermediateError):
    """An admin action failed on its arguments or inside the server (see the incident id)."""

    code = "admin_action_failed"
    wire_code = 6611
    exit_code = 1


class AdminRequestInvalid(IntermediateError):
    """An admin request is not valid JSON or names no known action or a bad argument."""

    code = "admin_request_invalid"
    wire_code = 6606
    exit_code = 2


def flag_json(f: Flag) -> dict[str, Any]:
    """A flag as JSON."""
    d = asdict(f)
    d["state"] = str(f.state)
    d["scopes"] = [s.to_text() for s in f.scopes] or ["all"]
    d["blocking"] = f.blocking
    return d


def held_json(h: HeldView, *, content: bool) -> dict[str, Any]:
    """A held query as JSON (with the content that would be sent when asked for)."""
    d: dict[str, Any] = {
        "held_id": h.held_id,
        "permit_id": h.permit_id,
        "requester": h.requester,
        "atena_no": h.atena_no,
        "kouban": h.kouban,
        "items": sorted(h.items),
        "reason": h.reason.code,
        "flag_ids": list(h.flag_ids),
        "state": h.state,
        "held_at": h.held_at.isoformat(),
        "decided_by": h.decided_by,
    }
    if content:
        d["content"] = h.content
    return d


def _str(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise AdminRequestInvalid(f"argument {name!r} is required (text)")
    return value


def _actions(
    ims: IntermediateService,
) -> dict[str, Callable[[OperatorIdentity, dict[str, Any]], Any]]:
    def request_set(op: OperatorIdentity, a: dict[str, Any]) -> Any:
        scopes = [FlagScope.from_text(s) for s in a.get("scopes", []) if s != "all"]
        accompanying = a.get("accompanying", [])
        if not isinstance(accompanying, list) or not all(isinstance(x, str) for x in accompanying):
            raise AdminRequestInvalid("argument 'accompanying' must be a list of 宛名番号 (text)")
        flag = ims.flag_request_set(
            op, _str(a, "atena_no"), scopes, _str(a, "reason_code"), _str(a, "review_date"),
            accompanying,
        )
        out = flag_json(flag)
        unflagged = ims.household_unflagged(flag)
        out["household_unflagged"] = unflagged
        if unflagged:
            out["warning"] = (
                f"{len(unflagged)} member(s) of this household (same 世帯番号) are not covered by "
                "any flag and are still answered automatically, with the shared address and "
                "世帯番号; name them with --accompanying if they asked for protection too")
        return out

    def export(op: OperatorIdentity, a: dict[str, Any]) -> Any:
        result = ims.export_fukuhon(op, include_flagged=bool(a.get("include_flagged")),
                                    request_id=a.get("request_id") or None)
        return {"data": base64.b64encode(result.data).decode("ascii"),
                "records": result.records, "flagged_left_out": result.flagged_left_out}

    def export_request_json(req: ExportRequest) -> dict[str, Any]:
        return {"request_id": req.request_id, "requested_by": req.requested_by,
                "confirmed_by": req.confirmed_by, "valid_for_s": EXPORT_REQUEST_TTL}

    def since(a: dict[str, Any]) -> dt.datetime | None:
        text = a.get("since")
        if not text:
            return None
        try:
            return dt.datetime.fromisoformat(str(text)).replace(tzinfo=None)
        except ValueError:
            raise AdminRequestInvalid(f"--since {text!r} is not an ISO date or time") from None

    return {
        "flags.request-set": request_set,
        "flags.request-clear": lambda op, a: flag_json(
            ims.flag_request_clear(op, _str(a, "flag_id"))
        ),
        "flags.confirm": lambda op, a: flag_json(ims.flag_confirm(op, _str(a, "flag_id"))),
        "flags.list": lambda op, a: [
            flag_json(f) for f in ims.flags_list(op, include_cleared=bool(a.get("all")))
        ],
        "flags.show": lambda op, a: flag_json(ims.flag_show(op, _str(a, "flag_id"))),
        "held.list": lambda op, a: [
            held_json(h, content=False)
            for h in ims.held_list(op, state=None if a.get("all") else "held")
        ],
        "held.show": lambda op, a: held_json(ims.held_show(op, _str(a, "held_id")), content=True),
        "held.release": lambda op, a: (ims.held_release(op, _str(a, "held_id")), "released")[1],
        "held.refuse": lambda op, a: (ims.held_refuse(op, _str(a, "held_id")), "refused")[1],
        "provisions.list": lambda op, a: [
            {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}
            for row in ims.provisions(op, person=a.get("person") or None, since=since(a))
        ],
        "fukuhon.import": lambda op, a: [
            {
                "index": i,
                "atena_no": atena,
                "result_code": e.wire_code if e else 0,
                "error": e.code if e else None,
                "detail": e.message if e else "ok",
            }
            for i, atena, e in ims.import_fukuhon(base64.b64decode(_str(a, "data")), op)
        ],
        "fukuhon.export": export,
        "fukuhon.export-request": lambda op, a: export_request_json(
            ims.fukuhon_export_request(op)),
        "fukuhon.export-confirm": lambda op, a: export_request_json(
            ims.fukuhon_export_confirm(op, _str(a, "request_id"))),
    }


class AdminSession(StoreBackedApp):
    """One operator's connection to the admin port: each request is carried out on the
    server's store thread (``run``), and answered in order."""

    def __init__(
        self, server: Callable[[], IntermediateService], node: str, operator: OperatorIdentity,
        peer_name: str, run: Run = run_here, opening: Deferred[Any] | None = None,
    ) -> None:
        self.server = server  # the intermediate server (the host opens it on its store thread)
        self.node = node
        self.operator = operator
        self.peer_name = peer_name
        self._run = run
        self._opening = opening
        self.channel = FrameChannel(
            local=node, peer=peer_name, timestamp=lambda: server().now14(),
            catalogue=ADMIN_CATALOGUE,
        )
        self._actions: dict[str, Callable[[OperatorIdentity, dict[str, Any]], Any]] | None = None

    def _reply(self, payload: dict[str, Any], request_no: int) -> bytes:
        body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
        return self.channel.send(
            AdminMessageType.ADMIN_RESPONSE, body, record_count=len(body), request_no=request_no
        )

    # -- the channel's handler ------------------------------------------------------------
    def frame(self, frame: Frame) -> list[bytes]:
        """An admin request: its ADMIN_RESPONSE, once carried out."""
        req = frame.header.request_no
        self.answer_later(lambda: self._handle(frame), lambda payload: [self._reply(payload, req)])
        return []

    def refused(self, event: Refused) -> list[bytes]:
        """A refused frame is answered as a failed request (JSON), not with an ERROR frame."""
        self.answer_now([self._reply(_error(event.error), event.header.request_no)])
        return []

    def _handle(self, frame: Frame) -> dict[str, Any]:
        """On the store thread: the request's outcome, as the JSON payload of its answer.

        Every request gets an answer and an audit entry: carried out (the action's own entry),
        refused (``ACTION-refused``, with the error code) or failed on hostile arguments or a
        bug (``ACTION-failed``, with an incident id; the answer says ``admin_action_failed``
        and the log has the incident, never a traceback in the answer)."""
        name = "admin.request"
        try:
            if frame.msg_type != AdminMessageType.ADMIN_REQUEST:
                raise AdminRequestInvalid(
                    f"message type {frame.msg_type:#06x} is not an admin request"
                )
            try:
                request = json.loads(frame.body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise AdminRequestInvalid(f"admin request is not UTF-8 JSON: {exc}") from None
            if not isinstance(request, dict):
                raise AdminRequestInvalid("admin request must be a JSON object")
            if self._actions is None:
                self._actions = _actions(self.server())
            action = self._actions.get(str(request.get("action")))
            args = request.get("args") or {}
            if action is None or not isinstance(args, dict):
                raise AdminRequestInvalid(f"unknown admin action {request.get('action')!r}")
            name = str(request["action"])
            result = action(self.operator, args)
        except (JukiError, MalformedMessage) as exc:
            self._audit(name, "refused", {"reason": exc.code})
            return _error(exc)
        except Exception:  # hostile arguments or a bug: answered, audited, logged by incident
            incident = secrets.token_hex(4)
            log.failure("admin action {action} by {operator} failed, incident {incident}", event="admin_action_failed",
                        action=name, operator=self.operator.name, incident=incident)
            self._audit(name, "failed", {"incident": incident})
            return _error(AdminActionFailed(f"{name} failed (incident {incident})"))
        return {"ok": True, "result": result}

    def _audit(self, action: str, outcome: str, detail: dict[str, object]) -> None:
        try:
            self.server().audit_outcome(self.operator, action, outcome, detail)
        except Exception:  # the answer still goes out; the log says the audit entry is missing
            log.failure("audit entry of {action}-{outcome} not written", event="audit_write_failed", action=action,
                        outcome=outcome)


def _error(exc: JukiError) -> dict[str, Any]:
    return {
        "ok": False,
        "code": exc.code,
        "wire_code": exc.wire_code,
        "message": exc.message,
        "exit_code": exc.exit_code,
    }
