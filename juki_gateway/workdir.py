"""Where a working directory's configuration lives, and who may read it; shared by every command.

A working directory (made by ``juki-gateway init``) holds ``gateway.toml``, ``pki/``, ``logs/``
and the default SQLite store. Sub-commands that work on one take ``--config PATH``; the default
is ``$JUKI_GATEWAY_CONFIG``, else ``./juki-data/gateway.toml``.

Everything in it is for the account that runs the gateway only (docs/security.md): every
command and the daemon run under umask 077 (:func:`private_umask`), so the stores and their WAL
files, logs, backups and exports are created 0600 and directories 0700; :func:`restrict_tree`
repairs a directory made before (``juki-gateway init`` runs it and says what it changed).
"""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path
from typing import Any

from juki_gateway.errors import UsageError

CONFIG_ENV = "JUKI_GATEWAY_CONFIG"
DEFAULT_WORKDIR = Path("juki-data")
CONFIG_NAME = "gateway.toml"


#: The file mode creation mask of every command: nothing for the group or others.
PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Create every file and directory from now on for this account only (umask 077)."""
    os.umask(PRIVATE_UMASK)


def restrict_tree(directory: Path) -> list[Path]:
    """Take group and other permissions off ``directory`` and everything in it (directories
    0700 at most, files 0600 at most); return what was changed. Symbolic links are not
    followed."""
    changed: list[Path] = []
    paths = [directory, *sorted(directory.rglob("*"))] if directory.exists() else []
    for path in paths:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            path.chmod(mode & 0o700)
            changed.append(path)
    return changed


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, readable and writable by this account only (0600), whatever
    the process umask and whatever mode an existing file had."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(data)
    finally:
        os.close(fd)


def default_config_path() -> Path:
    """``$JUKI_GATEWAY_CONFIG`` if set, else ``./juki-data/gateway.toml``."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_WORKDIR / CONFIG_NAME


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """Add the common ``--config PATH`` option to a sub-command parser."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"the working directory's {CONFIG_NAME} "
        f"(default: ${CONFIG_ENV}, else {DEFAULT_WORKDIR / CONFIG_NAME})",
    )


def config_path_from(args: argparse.Namespace) -> Path:
    """The configuration path a sub-command was given, or the default."""
    path = getattr(args, "config", None)
    return Path(path) if path is not None else default_config_path()


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning a missing or malformed file into a clear :class:`UsageError`."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(
            f"no configuration at {path}: run 'juki-gateway init' first or pass --config"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
