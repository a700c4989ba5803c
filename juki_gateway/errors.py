"""The project's error base class and the one place that maps errors to CLI exit codes.

Every error the gateway raises on purpose carries a stable ``code`` (a short identifier such as
``"bad_check_digit"``) and a ``wire_code`` (the 4-digit number sent in error frames), and a
message meant for the person who will read it. Sub-packages subclass :class:`JukiError`.

The command line's exit codes are four (README, ``juki-gateway --help``): 0 success, 1 a runtime
error (including a failed check or case), 2 a usage error (command line, configuration), and
128 + the signal when interrupted: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.
"""

from __future__ import annotations

import errno
import signal
from typing import ClassVar

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM
#: The exit codes as ``juki-gateway --help`` and the README list them.
EXIT_CODES_HELP = """exit status:
  0    success
  1    runtime error (a failed check or case included)
  2    usage error (command line or configuration)
  130  interrupted by SIGINT (Ctrl-C)
  143  stopped by SIGTERM (serve stops cleanly on SIGTERM and exits 0)"""


class JukiError(Exception):
    """Base class of every deliberate error; ``str()`` is the human-readable message."""

    code: ClassVar[str] = "error"
    wire_code: ClassVar[int] = 9999
    exit_code: ClassVar[int] = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(JukiError):
    """The command line or a configuration file asks for something impossible."""

    code = "usage"
    exit_code = EXIT_USAGE


class Interrupted(Exception):
    """A command was stopped by a signal (SIGINT or SIGTERM); it exits 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


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


def error_label(exc: BaseException) -> str:
    """What a log line says of an exception: a project error's code, wire code and place
    (:func:`loggable`), else its class and, for an OS error, its errno
    name. Never its text: a message may quote a record value, an SQL parameter or a path."""
    if isinstance(exc, JukiError):
        return loggable(exc)
    errno_ = getattr(exc, "errno", None) or getattr(getattr(exc, "osError", None), "errno", None)
    name = errno.errorcode.get(errno_, "") if isinstance(errno_, int) else ""
    return f"{type(exc).__name__}{f' ({name})' if name else ''}"


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an error that reached the command line: 2 for a usage error,
    128 + the signal for an interruption, 1 for everything else."""
    if isinstance(exc, Interrupted):
        return exc.exit_code
    if isinstance(exc, JukiError) and exc.exit_code == EXIT_USAGE:
        return EXIT_USAGE
    return EXIT_ERROR
