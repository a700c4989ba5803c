"""The handshake log: one JSON object per TLS handshake attempt, in ``logs/handshakes.jsonl``.

Written by both sides: the endpoints (server side) for every inbound attempt, and outbound links
(client side, ``endpoint`` = ``LOCAL->PEER``) for theirs. Field names are fixed by
:data:`FIELDS` and documented in ``docs/handshake-log.md``; the first three (``ts``, ``level``,
``event``) are those of every line of the daemon log (:mod:`~juki_gateway.gateway.jsonlog`). No resident identifier is ever
written here: only addresses, TLS parameters and certificate metadata.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from juki_gateway.gateway.tls import HandshakeState, PeerCertificate

FIELDS: tuple[str, ...] = (
    "ts", "level", "event", "conn_id", "endpoint", "local_addr", "peer_addr", "established", "version", "cipher",
    "group", "server_name", "subject", "issuer", "serial", "sha256", "not_before", "not_after",
    "peer_role", "peer_org", "validation_status", "alert", "duration_ms",
)


_last_second: list[Any] = [None, ""]


def iso_ts(seconds: float) -> str:
    """An epoch time as ISO 8601 UTC with milliseconds."""
    whole = int(seconds)
    ms = int((seconds - whole) * 1000)
    if _last_second[0] != whole:  # handshakes come in bursts: format each second once
        _last_second[0] = whole
        _last_second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_last_second[1]}.{ms:03d}Z"


def make_record(
    *,
    now: float,
    state: HandshakeState,
    endpoint: str,
    local_addr: str,
    peer_addr: str,
    established: bool,
    status: str,
    version: str | None = None,
    cipher: str | None = None,
    group: str | None = None,
    server_name: str | None = None,
) -> dict[str, Any]:
    """One handshake-log record with every field of :data:`FIELDS`."""
    peer: PeerCertificate | None = state.peer
    ident = peer.identity if peer is not None else None
    return {
        "ts": iso_ts(now),
        "level": "info" if established else "warn",
        "event": "tls_session_revoked" if status == "revoked_during_session" else "tls_handshake",
        "conn_id": state.conn_id,
        "endpoint": endpoint,
        "local_addr": local_addr,
        "peer_addr": peer_addr,
        "established": established,
        "version": version,
        "cipher": cipher,
        "group": group,
        "server_name": server_name,
        "subject": peer.subject if peer else None,
        "issuer": peer.issuer if peer else None,
        "serial": peer.serial if peer else None,
        "sha256": peer.sha256 if peer else None,
        "not_before": peer.not_before if peer else None,
        "not_after": peer.not_after if peer else None,
        "peer_role": ident.role if ident else None,
        "peer_org": ident.org if ident else None,
        "validation_status": status,
        "alert": state.alert,
        "duration_ms": round((now - state.started) * 1000.0, 3),
    }


#: How long a written record may wait in the buffer before it reaches the file.
FLUSH_DELAY = 0.2

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class HandshakeLog:
    """Appends records to a JSONL file, one line per handshake attempt.

    Without a ``clock`` every record is flushed as it is written. With one (an
    ``IReactorTime``), records are buffered and flushed ``flush_delay`` seconds after the first
    unflushed one, so a burst of handshakes costs one ``write`` system call; :meth:`flush`
    and :meth:`close` (at shutdown) write out what is pending at once.
    """

    def __init__(
        self, path: Path, clock: IReactorTime | None = None, flush_delay: float = FLUSH_DELAY
    ) -> None:
        self.path = path
        self._clock = clock
        self._flush_delay = flush_delay
        self._fh: IO[str] | None = None
        self._pending: IDelayedCall | None = None

    def open(self) -> None:
        """Open (creating the directory) for appending, readable by the owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open_private(self.path, buffering=1 << 16)

    def reopen(self) -> None:
        """Write out what is buffered and close the file; the next record opens ``path`` anew
        (after logrotate moved the old file away, SIGHUP)."""
        self.close()

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (flushed now, or within ``flush_delay`` with a clock)."""
        if self._fh is None:
            self.open()
        assert self._fh is not None
        self._fh.write(_encode(record) + "\n")
        if self._clock is None:
            self._fh.flush()
        elif self._pending is None:
            self._pending = self._clock.callLater(self._flush_delay, self.flush)

    def flush(self) -> None:
        """Write every buffered record to the file now."""
        if self._pending is not None:
            if self._pending.active():
                self._pending.cancel()
            self._pending = None
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        """Flush and close the file."""
        self.flush()
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def open_private(path: Path, buffering: int = -1) -> IO[str]:
    """``path`` opened for appending text, created 0600 (the daemon's logs are its own)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8", buffering=buffering)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of a handshake log; unparsable lines are skipped."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                yield rec


def filter_records(
    records: Iterable[dict[str, Any]], *, failed: bool = False, since: str | None = None
) -> list[dict[str, Any]]:
    """Records, optionally only failed ones and only those at or after ``since`` (ISO prefix)."""
    out = []
    for rec in records:
        if failed and rec.get("validation_status") == "ok":
            continue
        if since is not None and str(rec.get("ts", "")) < since:
            continue
        out.append(rec)
    return out


TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ts", "TS"), ("conn_id", "CONN"), ("endpoint", "ENDPOINT"), ("peer_addr", "PEER"),
    ("version", "VERSION"), ("peer_role", "ROLE"), ("peer_org", "ORG"),
    ("validation_status", "STATUS"), ("subject", "SUBJECT"), ("duration_ms", "MS"),
)


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters (a certificate subject may hold any, an
    escape sequence included) are shown as ``\\xNN`` / ``\\uNNNN`` escapes, not sent."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def format_table(records: list[dict[str, Any]]) -> str:
    """Records as an aligned text table (every cell made :func:`printable`)."""
    rows = [[h for _, h in TABLE_COLUMNS]]
    for rec in records:
        rows.append(["-" if rec.get(k) is None else printable(str(rec.get(k)))
                     for k, _ in TABLE_COLUMNS])
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
