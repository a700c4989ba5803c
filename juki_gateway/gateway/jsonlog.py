"""The daemon's operational log: JSON lines, with resident identifiers masked by HMAC pseudonyms.

Every event the daemon logs through ``twisted.logger`` becomes one JSON object per line (``time``,
``level``, ``namespace``, ``message`` and the event's own fields). Before it is written, anything
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
from pathlib import Path
from typing import IO, Any

from twisted.logger import ILogObserver, LogEvent, formatEvent
from zope.interface import implementer

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
    """The JSON object for one log event (masked)."""
    level = event.get("log_level")
    stamp = float(event.get("log_time") or 0.0)
    record: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))
        + f".{int(stamp * 1000) % 1000:03d}Z",
        "level": getattr(level, "name", "info"),
        "namespace": event.get("log_namespace", "?"),
        "message": masker.mask_text(formatEvent(event)),
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
            record["error"] = masker.mask_text(failure.getErrorMessage())
        record["error_type"] = failure.type.__name__ if failure.type else "?"
    return record


@implementer(ILogObserver)
class JsonLinesObserver:
    """Writes every event as one masked JSON line to each of its streams."""

    def __init__(self, streams: list[IO[str]], masker: Pseudonymizer) -> None:
        self._streams = streams
        self._masker = masker

    def __call__(self, event: LogEvent) -> None:
        try:
            line = json.dumps(event_record(event, self._masker), ensure_ascii=False,
                              default=str) + "\n"
        except Exception as exc:  # a log line must never take the daemon down
            line = json.dumps({"level": "error", "namespace": "juki_gateway.jsonlog",
                               "message": f"unloggable event: {type(exc).__name__}"}) + "\n"
        for stream in self._streams:
            stream.write(line)
            stream.flush()
