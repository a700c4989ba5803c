"""The daemon's operational log: JSON lines, with resident identifiers masked by HMAC pseudonyms.

Every event the daemon logs through ``twisted.logger`` becomes one JSON object per line: ``ts``,
``level``, ``event`` (a stable name of what happened, given by the call as ``event=``; a
library's events carry their logger's namespace), ``message``, ``namespace``, then the event's
own fields, the same first three as the handshake log (docs/handshake-log.md, "The daemon
log"). Two filters sit before the file (:func:`daemon_log_observer`): a library's info lines
(Twisted's "Starting factory", port opened/closed, an access line per scrape) are moved below
info; a warning or error repeated with the same event and fields is written once per window
(the longest link backoff, at least a minute), the repeats counted on one line at the window's
end (``repeats``). Before it is written, anything
that could identify a resident is replaced by a pseudonym ``pid:`` + 16 hex digits of
HMAC-SHA256 under a per-working-directory key: the same person always gets the same pseudonym
(so an operator can follow one case through the log), but the log alone does not reveal who.

Resident data stays out of the log by construction, in three ways (docs/security.md, "Logs"):

* log lines about a peer's refused input name the error's code and where (field, offset), never
  its message, which quotes the value (:func:`juki_gateway.errors.loggable`);
* a storage or driver error is logged as its class, the database's error code and an incident id,
  never its text, which quotes the statement's parameters;
* the value of every event field named like a resident-data field of the record layouts (by the
  field's kind: names, addresses, kana, check-digit codes, dates, plus 宛名番号 and 符号) is
  pseudonymised, and, as a last net, any run of exactly 11, 12 or 15 digits in a text (the
  lengths of a 住民票コード, a 個人番号 and a 団体内統合宛名番号; not the fraction digits of a
  number). Timestamps (14 digits), request numbers (16) and ports are left alone.

The audit log (R6, in the store) is the one place that keeps the identifiers in clear; it is not
written through here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from twisted.internet.interfaces import IReactorTime
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogEvent,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
)
from twisted.python import threadable
from zope.interface import implementer

from juki_gateway.errors import error_label
from juki_gateway.registry_store.engine import describe_storage_error, storage_error

KEY_FILE = "log-pseudonym.key"

#: Field kinds of the record layouts whose values are resident data: names and addresses
#: (Japanese text, UTF-16 items of the intermediate server), kana readings, check-digit codes
#: (住民票コード, 個人番号) and dates (birth dates among them).
PERSONAL_KINDS = frozenset({"text", "kana", "utf-16 text", "check-digit code", "date"})
#: Identifiers held in ASCII or digit fields, and names used only in log events.
PERSONAL_NAMES = frozenset({"atena_no", "fugo", "setai_no", "subject_person", "subject", "person"})


def _resident_fields() -> frozenset[str]:
    """Every field name that holds resident data: from the layouts' field kinds, plus the
    identifiers that are ASCII or digits (so their kind alone does not say it)."""
    from juki_gateway.protocols.catalogue import LAYOUTS

    return PERSONAL_NAMES | {f.name for layout in LAYOUTS.values() for f in layout.fields
                             if f.kind.kind_name in PERSONAL_KINDS}


#: Field names whose values are resident data and are always pseudonymised.
RESIDENT_FIELDS: frozenset[str] = _resident_fields()

#: An identifier-length digit run (not the fraction digits of a number: no dot before it).
_DIGIT_RUN = re.compile(r"(?<![0-9.])(?:[0-9]{15}|[0-9]{11,12})(?![0-9])")


class Pseudonymizer:
    """Replaces resident identifiers with keyed, stable pseudonyms."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonym key must be at least 16 bytes")
        self._key = key

    def pseudonym(self, value: str) -> str:
        """The pseudonym of one identifier or personal value."""
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"pid:{digest[:16]}"

    def mask_text(self, text: str) -> str:
        """``text`` with every identifier-length digit run pseudonymised."""
        return _DIGIT_RUN.sub(lambda m: self.pseudonym(m.group(0)), text)

    def mask_value(self, key: str, value: Any) -> Any:
        """A field value made safe to log (recursively for containers)."""
        if value is None:
            return None
        if key in RESIDENT_FIELDS:
            return self.pseudonym(str(value))
        if isinstance(value, str):
            return self.mask_text(value)
        if isinstance(value, bool | float):  # a delay, a ratio: never an identifier
            return value
        if isinstance(value, int):
            text = str(value)
            masked = self.mask_text(text)
            return value if masked == text else masked
        if isinstance(value, Mapping):
            return {str(k): self.mask_value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.mask_value(key, v) for v in value]
        return self.mask_text(repr(value))


def load_or_create_key(pki_dir: Path) -> bytes:
    """The working directory's pseudonym key (32 random bytes, created 0600 on first use)."""
    path = pki_dir / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 16:
            return key
    except FileNotFoundError:
        pass
    pki_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


_SKIP = frozenset({"log_logger", "log_source", "log_format", "log_io", "log_trace", "log_text",
                   "log_flattened", "log_observer", "log_time", "log_level", "log_namespace",
                   "log_failure", "log_system", "format", "message", "isError", "why"})


def event_record(event: LogEvent, masker: Pseudonymizer) -> dict[str, Any]:
    """The JSON object for one log event (masked): ``ts``, ``level``, ``event``, ``message``,
    ``namespace``, then the event's fields."""
    level = event.get("log_level")
    stamp = float(event.get("log_time") or 0.0)
    namespace = str(event.get("log_namespace", "?"))
    name = event.get("event")
    record: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))
        + f".{int(stamp * 1000) % 1000:03d}Z",
        "level": getattr(level, "name", "info"),
        "event": name if isinstance(name, str) and name else namespace,
        "message": masker.mask_text(formatEvent(event)),
        "namespace": namespace,
    }
    for key, value in event.items():
        if key in _SKIP or key.startswith("_") or key in record:
            continue
        record[key] = masker.mask_value(key, value)
    failure = event.get("log_failure")
    if failure is not None:
        stored = storage_error(failure.value)
        if stored is not None:  # its text quotes the statement's parameters: never logged
            record["incident"] = incident = secrets.token_hex(4)
            record["error"] = describe_storage_error(stored, incident)
        else:
            record["error"] = error_label(failure.value or Exception())
        record["error_type"] = failure.type.__name__ if failure.type else "?"
    return record


class TextSink(Protocol):
    """Where log lines go: a text file, stderr, a :class:`ReopenableFile`."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


@implementer(ILogObserver)
class JsonLinesObserver:
    """Writes every event as one masked JSON line to each of its streams."""

    def __init__(self, streams: list[TextSink], masker: Pseudonymizer) -> None:
        self._streams = streams
        self._masker = masker

    def __call__(self, event: LogEvent) -> None:
        try:
            line = json.dumps(event_record(event, self._masker), ensure_ascii=False,
                              default=str) + "\n"
        except Exception as exc:  # a log line must never take the daemon down
            line = json.dumps({"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "level": "error", "event": "unloggable_event",
                               "message": f"unloggable event: {type(exc).__name__}",
                               "namespace": "juki_gateway.jsonlog"}) + "\n"
        for stream in self._streams:
            stream.write(line)
            stream.flush()


# -- what reaches the file ----------------------------------------------------------------------

#: The shortest window in which a repeated warning or error is written once.
REPEAT_WINDOW = 60.0
#: Fields that differ between repeats of one condition (a new connection, a new attempt), so
#: they do not tell two conditions apart.
_VOLATILE = frozenset({"conn_id", "conn", "peer_addr", "local_addr", "attempt", "delay", "s",
                       "incident", "log_time", "log_failure", "log_logger", "log_source",
                       "log_observer", "log_trace", "log_flattened", "log_io", "log_text"})


def is_own(event: LogEvent) -> bool:
    """An event of the daemon's own code (not of a library it uses)."""
    return str(event.get("log_namespace", "")).startswith("juki_gateway")


@implementer(ILogObserver)
class DemoteLibraryInfo:
    """Passes events on, a library's info lines demoted to debug (Twisted says "Starting factory
    <… at 0x7f…>", opens and closes ports and writes an access line per HTTP request at info:
    none of it is the daemon's news). Its warnings and errors pass unchanged."""

    def __init__(self, observer: ILogObserver) -> None:
        self._observer = observer

    def __call__(self, event: LogEvent) -> None:
        if event.get("log_level") is LogLevel.info and not is_own(event):
            event = {**event, "log_level": LogLevel.debug}
        self._observer(event)


def _repeat_key(event: LogEvent) -> tuple[Any, ...]:
    failure = event.get("log_failure")
    fields = tuple(sorted((k, repr(v)) for k, v in event.items()
                          if k not in _VOLATILE and not k.startswith("_")))
    return (fields, type(failure.value).__name__ if failure is not None else None)


@dataclass
class _Repeats:
    until: float
    count: int = 0
    last: LogEvent | None = None


@implementer(ILogObserver)
class RepeatLimiter:
    """Writes a warning or error that repeats (same namespace, format and fields but for
    :data:`_VOLATILE` ones) once per ``window`` seconds: the first occurrence at once; the
    repeats within the window are counted, and when the window ends the latest of them is
    written once with ``repeats`` = how many there were (which opens the next window).
    A broken link retrying every second thus writes two lines a window, not sixty."""

    def __init__(self, observer: ILogObserver, clock: IReactorTime, window: float) -> None:
        self._observer = observer
        self._clock = clock
        self._window = window
        self._open: dict[tuple[Any, ...], _Repeats] = {}

    def __call__(self, event: LogEvent) -> None:
        level = event.get("log_level")
        if level is None or level < LogLevel.warn or (
                threadable.ioThread is not None and not threadable.isInIOThread()):
            self._observer(event)  # (off the reactor thread: no timer may be set from there)
            return
        key = _repeat_key(event)
        now = self._clock.seconds()
        seen = self._open.get(key)
        if seen is not None and now < seen.until:
            seen.count += 1
            seen.last = event
            return
        self._open[key] = _Repeats(now + self._window)
        self._clock.callLater(self._window, self._close, key)
        self._observer(event)

    def _close(self, key: tuple[Any, ...]) -> None:
        seen = self._open.pop(key, None)
        if seen is None or seen.last is None:
            return
        self._open[key] = _Repeats(self._clock.seconds() + self._window)
        self._clock.callLater(self._window, self._close, key)
        self._observer({**seen.last, "repeats": seen.count})

    def flush(self) -> None:
        """Write the pending repeat counts now (at shutdown)."""
        for key in list(self._open):
            seen = self._open.pop(key)
            if seen.last is not None:
                self._observer({**seen.last, "repeats": seen.count})


class ReopenableFile:
    """A log file, appended to and created 0600, that :meth:`reopen` closes and opens again by
    name: after logrotate moved it away, SIGHUP makes the daemon write to a new file there."""

    def __init__(self, path: Path) -> None:
        from juki_gateway.gateway.handshake_log import open_private

        self.path = path
        self._open = open_private
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open_private(path)

    def write(self, text: str) -> int:
        return self._fh.write(text)

    def flush(self) -> None:
        self._fh.flush()

    def reopen(self) -> None:
        """Close the file and open ``path`` anew (a new file if it was moved away)."""
        old, self._fh = self._fh, self._open(self.path)
        old.close()

    def close(self) -> None:
        self._fh.close()


def daemon_log_observer(
    streams: list[TextSink], masker: Pseudonymizer, clock: IReactorTime, window: float,
    level: LogLevel = LogLevel.info,
) -> tuple[ILogObserver, RepeatLimiter]:
    """The daemon log's observer chain: library info demoted, ``level`` and above kept,
    repeats limited, JSON lines written; and its limiter (to :meth:`~RepeatLimiter.flush`)."""
    limiter = RepeatLimiter(JsonLinesObserver(streams, masker), clock, window)
    chain = DemoteLibraryInfo(FilteringLogObserver(
        limiter, [LogLevelFilterPredicate(defaultLogLevel=level)]))
    return chain, limiter
