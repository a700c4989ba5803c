"""Where a working directory's configuration lives, shared by every sub-command.

A working directory (made by ``juki-gateway init``) holds ``gateway.toml``, ``pki/``, ``logs/``
and the default SQLite store. Sub-commands that work on one take ``--config PATH``; the default
is ``$JUKI_GATEWAY_CONFIG``, else ``./juki-data/gateway.toml``.
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
