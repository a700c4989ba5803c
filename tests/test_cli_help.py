"""Every option and positional argument of every sub-command says what it is for."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from juki_gateway.cli import build_parser


def walk(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    """(command path, action) for every argument of ``parser`` and its sub-commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_option_has_help() -> None:
    """The argparse tree holds no argument without help text (``--help`` and ``--version`` have
    argparse's own)."""
    missing = [f"{path}: {'/'.join(a.option_strings) or a.dest}"
               for path, a in walk(build_parser(), "juki-gateway")
               if not (a.help and a.help.strip()) and a.help != argparse.SUPPRESS]
    assert not missing, "\n".join(missing)


def test_the_walk_reaches_every_sub_command() -> None:
    """The walk is not vacuous: it sees nested sub-commands and their options."""
    seen = {(path, "/".join(a.option_strings)) for path, a in walk(build_parser(), "juki-gateway")}
    assert ("juki-gateway certs sign", "--role") in seen
    assert ("juki-gateway flags request-set", "--operator") in seen
    assert len({p for p, _ in seen}) > 30
