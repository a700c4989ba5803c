"""A blocking admin-port client for the command line (stdlib ``ssl``, one request at a time).

The CLI runs outside the reactor, so it uses a plain TLS socket: the operator's certificate and
key, the working directory's CA, and the intermediate endpoint's node name as the server name.
Errors the daemon reports come back as :class:`RemoteActionFailed` carrying the daemon's code,
wire code and exit code, so the CLI prints them as one line like any local error.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from juki_gateway.codecs.frame import Frame
from juki_gateway.errors import JukiError
from juki_gateway.gateway.intermediate.admin import ADMIN_CATALOGUE
from juki_gateway.protocols.channel import Broken, FrameChannel, Received
from juki_gateway.protocols.intermediate.admin_messages import AdminMessageType


class AdminUnreachable(JukiError):
    """The admin port could not be reached or refused our certificate."""

    code = "admin_unreachable"
    wire_code = 6607


class RemoteActionFailed(JukiError):
    """The daemon refused an admin action; code and exit code are the daemon's."""

    def __init__(self, code: str, wire_code: int, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]
        self.wire_code = wire_code  # type: ignore[misc]
        self.exit_code = exit_code  # type: ignore[misc]


class AdminClient:
    """Sends admin requests as one operator."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ca: Path,
        cert: Path,
        key: Path,
        server_name: str,
        operator: str,
        timestamp: Callable[[], str],
        timeout: float = 30.0,
        crl: Path | None = None,
    ) -> None:
        self.host, self.port, self.server_name = host, port, server_name
        self.operator = operator
        self._timestamp = timestamp  # injected: the CLI passes the wall clock
        self.timeout = timeout
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if crl is not None:  # a revoked daemon certificate is refused as well
            try:
                ctx.load_verify_locations(cafile=str(crl))
            except (FileNotFoundError, ssl.SSLError) as exc:
                raise AdminUnreachable(f"cannot load the CRL {crl}: {exc}") from None
            ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except (FileNotFoundError, ssl.SSLError) as exc:
            raise AdminUnreachable(f"cannot load operator certificate {cert}: {exc}") from None
        self._ctx = ctx
        self._n = 0

    def call(self, action: str, args: dict[str, Any] | None = None) -> Any:
        """Run one admin action; returns its result or raises :class:`RemoteActionFailed`."""
        self._n += 1
        body = json.dumps({"action": action, "args": args or {}}, ensure_ascii=False).encode()
        # we are the operator, the daemon's admin endpoint is the peer (its node name)
        channel = FrameChannel(
            local=self.operator,
            peer=self.server_name,
            timestamp=self._timestamp,
            catalogue=ADMIN_CATALOGUE,
        )
        frame = channel.send(
            AdminMessageType.ADMIN_REQUEST, body, record_count=len(body), request_no=self._n
        )
        try:
            with (
                socket.create_connection((self.host, self.port), timeout=self.timeout) as raw,
                self._ctx.wrap_socket(raw, server_hostname=self.server_name) as sock,
            ):
                sock.sendall(frame)
                reply = self._read_one(sock, channel)
        except (OSError, ssl.SSLError) as exc:
            raise AdminUnreachable(
                f"admin port {self.host}:{self.port} unreachable or refused us: {exc}"
            ) from None
        payload = json.loads(reply.body.decode("utf-8"))
        if not payload.get("ok"):
            raise RemoteActionFailed(
                payload["code"],
                int(payload["wire_code"]),
                int(payload.get("exit_code", 1)),
                payload["message"],
            )
        return payload["result"]

    @staticmethod
    def _read_one(sock: ssl.SSLSocket, channel: FrameChannel) -> Frame:
        """The first whole frame the daemon sends (its answer)."""
        while True:
            event = channel.next_event()
            if isinstance(event, Received):
                return event.frame
            if isinstance(event, Broken):
                raise event.error
            if event is not None:
                raise AdminUnreachable(f"daemon sent an unreadable frame: {event.error.message}")
            data = sock.recv(65536)
            if not data:
                raise AdminUnreachable("daemon closed the connection without answering")
            channel.receive_data(data)
