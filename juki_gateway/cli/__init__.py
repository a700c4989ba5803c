"""The ``juki-gateway`` command line: one sub-command module per capability.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
sub-commands; each sub-command sets ``func(args) -> int``. Errors derived from
:class:`~juki_gateway.errors.JukiError` are printed as one line on stderr, never a traceback.
Exit codes: 0, 1 runtime error, 2 usage, 130/143 on SIGINT/SIGTERM (:mod:`juki_gateway.errors`).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from juki_gateway import __version__
from juki_gateway.errors import (
    EXIT_CODES_HELP,
    EXIT_SIGINT,
    EXIT_USAGE,
    Interrupted,
    JukiError,
    exit_code_for,
)
from juki_gateway.workdir import private_umask

COMMAND_MODULES: tuple[str, ...] = (
    "juki_gateway.cli.codec_cmd",
    "juki_gateway.cli.init",
    "juki_gateway.cli.certs",
    "juki_gateway.cli.serve",
    "juki_gateway.cli.handshakes",
    "juki_gateway.cli.store",
    "juki_gateway.cli.audit",
    "juki_gateway.cli.retention",
    "juki_gateway.cli.maintenance",
    "juki_gateway.cli.links",
    "juki_gateway.cli.simulate",
    "juki_gateway.cli.conformance",
    "juki_gateway.cli.capture",
    "juki_gateway.cli.intermediate",
    "juki_gateway.cli.jukinet",
    "juki_gateway.cli.ops",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="juki-gateway",
        description="Simulated Juki-net and intermediate-server gateway.",
        epilog=EXIT_CODES_HELP + "\n\n--operator ID, where a command takes it, defaults to "
        "$JUKI_GATEWAY_OPERATOR,\nelse the login name.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"juki-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``juki-gateway`` console script."""
    private_umask()  # everything this command creates is for this account only
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a reactor installs its own
    try:
        return int(func(args))
    except JukiError as exc:
        print(f"juki-gateway: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return exit_code_for(exc)
    except Interrupted as exc:
        print(f"juki-gateway: interrupted by {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("juki-gateway: interrupted by SIGINT", file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


if __name__ == "__main__":
    sys.exit(main())
