"""The project's error base class and the one place that maps errors to CLI exit codes.

Every error the gateway raises on purpose carries a stable ``code`` (a short identifier such as
``"bad_check_digit"``) and a ``wire_code`` (the 4-digit number sent in error frames), and a
message meant for the person who will read it. Sub-packages subclass :class:`JukiError`.
"""

from __future__ import annotations

from typing import ClassVar


class JukiError(Exception):
    """Base class of every deliberate error; ``str()`` is the human-readable message."""

    code: ClassVar[str] = "error"
    wire_code: ClassVar[int] = 9999
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(JukiError):
    """The command line or a configuration file asks for something impossible."""

    code = "usage"
    exit_code = 2


def loggable(exc: JukiError) -> str:
    """What a log line says of an error a peer's input caused: its code, wire code and where in
    the input (field, offset), never its message. Messages quote the offending value (a name,
    an address, a kana reading): the peer that sent it gets the message in its ERROR frame; the
    log, read by others, gets only where and why (docs/security.md, "Logs")."""
    field = getattr(exc, "field", None)
    offset = getattr(exc, "offset", None)
    where = "".join((f" field {field}" if field else "",
                     f" at offset {offset}" if offset is not None else ""))
    return f"{exc.code} ({exc.wire_code}){where}"


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an error that reached the command line."""
    if isinstance(exc, JukiError):
        return exc.exit_code
    return 70  # EX_SOFTWARE: a bug, not bad input
