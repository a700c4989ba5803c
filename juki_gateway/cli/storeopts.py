"""The store sub-commands' options: which store (``--db``, else the validated ``[store] url`` of
``--config``, else ``registry.sqlite3`` beside it), its schema check, and wall-clock time.

The command line is the edge of the program, so this is where the real clock is read
(``utc_now``); library functions receive the time as an argument.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from juki_gateway.errors import UsageError
from juki_gateway.registry_store.anchor import CHECKPOINTS_NAME, AuditKey, load_key
from juki_gateway.registry_store.anchor import KEY_NAME as ANCHOR_KEY_NAME
from juki_gateway.registry_store.engine import (
    DEFAULT_SQLITE_NAME,
    StoreError,
    StoreUnavailable,
    checked_store_url,
    config_store_url,
    create_store_engine,
    sqlite_path,
)
from juki_gateway.registry_store.migrate import current_revision, head_revision
from juki_gateway.workdir import add_config_argument, config_path_from

#: The name of the configuration's ``[store] url`` store among its stores.
REGISTRY_STORE = "registry"


class SchemaOutdated(StoreError):
    """The database is empty or older than this program: run ``juki-gateway store migrate``."""

    code = "schema_outdated"


def store_url_from_args(args: argparse.Namespace) -> str:
    """The store a sub-command with ``--db`` and ``--config`` uses: ``--db`` as given, else the
    configuration's store named by ``--store`` (default ``registry``: its ``[store] url``),
    else SQLite beside where the configuration would be."""
    db = getattr(args, "db", None)
    if db:
        return checked_store_url(db)
    name = getattr(args, "store", None) or REGISTRY_STORE
    path = config_path_from(args)
    if path.exists():
        from juki_gateway.gateway.config import load_config

        stores = load_config(path).stores()
        if name not in stores:
            raise UsageError(f"no store {name!r} in {path}: one of {', '.join(stores)}")
        return stores[name]
    if name != REGISTRY_STORE:
        raise UsageError(f"--store {name}: no configuration at {path}")
    return config_store_url(f"sqlite:///{DEFAULT_SQLITE_NAME}", path.parent)


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    """Add the ``--db URL`` option shared by the store sub-commands."""
    parser.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="database URL (sqlite:///PATH or postgresql+psycopg://…); "
        "default: [store] url of the config, else registry.sqlite3 beside it",
    )


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--config``, ``--store``, ``--db`` and ``--audit-key`` options every store
    sub-command takes."""
    add_config_argument(parser)
    parser.add_argument("--store", default=None, metavar="NAME",
                        help="which store of the configuration: 'registry' (default) or a "
                        "Juki-net node's endpoint name")
    add_db_argument(parser)
    add_audit_key_argument(parser)


def utc_now() -> dt.datetime:
    """The wall-clock time as naive UTC (the store's convention); CLI only."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def parse_date(text: str) -> dt.date:
    """argparse type for YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def parse_datetime(text: str) -> dt.datetime:
    """argparse type for YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss] (UTC)."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time (ISO 8601): {text!r}") from None
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def anchor_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """The audit anchor key and checkpoint file: ``--audit-key`` if given, else
    ``audit-anchor.key`` in the configuration's PKI directory (``pki/`` beside it); the
    checkpoints sit beside the key."""
    given = getattr(args, "audit_key", None)
    if given is not None:
        key = Path(given)
    else:
        path = config_path_from(args)
        pki = path.parent / "pki"
        if path.exists():
            from juki_gateway.gateway.config import load_config

            pki = load_config(path).pki_dir
        key = pki / ANCHOR_KEY_NAME
    return key, key.with_name(checkpoints_name(args))


def checkpoints_name(args: argparse.Namespace) -> str:
    """Each store's audit chain has checkpoints of its own: ``audit-checkpoints.jsonl`` for the
    registry, ``audit-checkpoints-<node>.jsonl`` for a node store (``--store``), and for a
    store named only by ``--db`` a name from its URL's digest."""
    db = getattr(args, "db", None)
    name = getattr(args, "store", None) or REGISTRY_STORE
    if db:
        import hashlib

        return CHECKPOINTS_NAME.replace(
            ".jsonl", f"-db-{hashlib.sha256(db.encode()).hexdigest()[:12]}.jsonl")
    if name == REGISTRY_STORE:
        return CHECKPOINTS_NAME
    return CHECKPOINTS_NAME.replace(".jsonl", f"-{name}.jsonl")


def audit_key_of(args: argparse.Namespace) -> AuditKey | None:
    """The anchor key every command that writes audit entries passes on (None without one:
    the entry is then written unanchored and ``audit verify`` reports it)."""
    key, _checkpoints = anchor_paths(args)
    return load_key(key) if key.exists() else None


def add_audit_key_argument(parser: argparse.ArgumentParser) -> None:
    """``--audit-key PATH``: the audit anchor key (default: pki/audit-anchor.key)."""
    parser.add_argument("--audit-key", type=Path, default=None, metavar="PATH",
                        help=f"the audit anchor key (default: {ANCHOR_KEY_NAME} in the working "
                        "directory's pki/); its checkpoints are kept beside it")


@contextmanager
def open_store(args: argparse.Namespace, *, require_schema: bool = True) -> Iterator[Engine]:
    """The store named by ``--db``/``--config``, checked to be at the current schema."""
    url = store_url_from_args(args)
    path = sqlite_path(url)
    if require_schema and path is not None and not path.exists():
        raise StoreUnavailable(f"no store at {path}: run 'juki-gateway store migrate' first")
    # A short command: SQLite's own checkpoint, no background thread whose final TRUNCATE
    # checkpoint would wait behind a running daemon's commits.
    engine = create_store_engine(url, checkpoint="autocheckpoint")
    try:
        if require_schema:
            try:
                rev = current_revision(engine)
            except OperationalError as exc:
                raise StoreUnavailable(f"cannot open the store: {exc.orig}") from None
            if rev != head_revision():
                raise SchemaOutdated(
                    f"the store is at schema {rev or '(empty)'}, this program needs "
                    f"{head_revision()}: run 'juki-gateway store migrate'"
                )
        yield engine
    except OperationalError as exc:
        raise StoreUnavailable(f"database error: {exc.orig}") from None
    finally:
        engine.dispose()


#: The one ``--operator`` convention of every sub-command: the option, else this variable, else
#: the login name. For the intermediate server's commands it also names the certificate
#: (``pki/NAME.pem``) the command connects with.
OPERATOR_ENV = "JUKI_GATEWAY_OPERATOR"


def add_operator_option(parser: argparse.ArgumentParser,
                        what: str = "operator id recorded in the audit trail") -> None:
    """``--operator ID`` (see :data:`OPERATOR_ENV`)."""
    parser.add_argument("--operator", default=None, metavar="ID",
                        help=f"{what} (default: ${OPERATOR_ENV}, else the login name)")


def add_operator_arguments(parser: argparse.ArgumentParser) -> None:
    """``--reason`` and ``--operator``: who switched something and why, for the audit trail."""
    parser.add_argument("--reason", default="", help="why (shown in /health and the audit trail)")
    add_operator_option(parser)


def operator_of(args: argparse.Namespace) -> str:
    """The ``--operator`` given, else ``$JUKI_GATEWAY_OPERATOR``, else the login name."""
    import getpass
    import os

    given = getattr(args, "operator", None) or os.environ.get(OPERATOR_ENV)
    if given:
        return str(given)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise UsageError(f"no login name to record: pass --operator ID or set ${OPERATOR_ENV}") from None


def audit_switch(args: argparse.Namespace, *, operator: str, now: dt.datetime, subject: str,
                 action: str) -> bool:
    """Append an operator switch (with ``--reason``) to the audit trail (R6).

    Returns False when the store is missing or not migrated: the switch itself is a file in the
    working directory and works without a store, it is then just not audited.
    """
    from juki_gateway.registry_store.audit import append_audit

    try:
        with open_store(args) as engine, engine.begin() as conn:
            append_audit(conn, now=now.replace(tzinfo=None), operator_id=operator,
                         terminal_id="cli", subject=subject, action=action,
                         detail={"reason": args.reason}, key=audit_key_of(args))
    except StoreError:
        return False
    return True


__all__ = ["OPERATOR_ENV", "SchemaOutdated", "UsageError", "add_operator_arguments",
           "add_operator_option", "add_store_arguments",
           "anchor_paths", "audit_key_of", "audit_switch", "open_store", "operator_of", "parse_date", "parse_datetime", "utc_now"]
