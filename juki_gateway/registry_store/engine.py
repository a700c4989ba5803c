"""Where the store is and how to open it: URL resolution and engine creation for both back ends.

The URL comes from the caller: the daemon's parsed configuration (``[store] url``, made absolute
by :func:`config_store_url` when the file is parsed) or a command's ``--db`` option
(``juki_gateway.cli.storeopts``); this module reads no configuration file. A relative SQLite
path in ``[store] url`` is relative to the config file's directory (like every other path in the
file); a relative ``--db`` path is relative to the current directory, as a command-line path is.

SQLite settings, and why:

* ``journal_mode=WAL``: readers never block the writer and the writer never blocks readers;
* ``synchronous=FULL``: in WAL mode NORMAL may lose the last transactions on power loss (the
  database stays consistent, but a commit already acknowledged to a peer would vanish). Our
  durability contract (R4: nothing acknowledged is ever lost) needs every commit on disk before
  the ack, so FULL it is; group commit amortises the fsync over many messages;
* ``foreign_keys=ON`` and ``busy_timeout``: integrity, and waiting (bounded) instead of failing
  when another process holds the write lock;
* ``wal_autocheckpoint=0`` and a background :class:`~.checkpoint.WalCheckpointer` per file
  (own thread, own connection, woken after each commit): the checkpoint that copies WAL pages
  into the database file no longer runs inside the committing call, so a group-commit batch's
  acks wait only for its own WAL write and fsync (``checkpoint="autocheckpoint"`` keeps
  SQLite's in-commit checkpoint; the benchmark compares both);
* no ``mmap_size``: memory-mapped reads were tried and dropped. The mapped file pages count in
  the daemon's resident set (a 500k consistency check peaked at 1.2 GB instead of ~190 MB),
  a benchmark node once died of SIGBUS (what a mapped file shrinking under a reader does,
  where a read would return an error), and the throughput gain was within noise;
* ``cache_size`` 64 MiB: the default 2 MiB page cache thrashes on the secondary indexes of a
  municipality-sized file (500k residents), which made loads and updates I/O-bound;
* every transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock at once, so two
  writers serialize up front instead of failing with SQLITE_BUSY when a read turns into a write
  (the audit chain's read-head-then-append depends on this). pysqlite's own transaction handling
  is switched off (``isolation_level=None``) so that SAVEPOINTs work as SQLAlchemy expects.
  A connection with the execution option :data:`READ_SNAPSHOT` begins a plain deferred
  transaction instead: a read-only snapshot that never waits for the write lock, so a schema
  check or a backup is not starved by a daemon committing back to back.

PostgreSQL URLs are used as given (``postgresql+psycopg://…``); row locks and
``FOR UPDATE SKIP LOCKED`` give the multi-daemon semantics (see :mod:`.queues`, :mod:`.audit`).
"""

from __future__ import annotations

import sqlite3
import weakref
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from juki_gateway.errors import JukiError, UsageError
from juki_gateway.extras import require
from juki_gateway.registry_store.checkpoint import (
    DEFAULT_MIN_INTERVAL,
    DEFAULT_RESTART_BYTES,
    WalCheckpointer,
)

DEFAULT_SQLITE_NAME = "registry.sqlite3"
SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_SNAPSHOT = "juki_read_snapshot"  # execution option: a read-only transaction (SQLite: BEGIN)
SQLITE_CACHE_KIB = 65_536  # per connection, grows on use: keeps the lookup indexes in memory
SQLITE_PAGE_SIZE = 4096
CheckpointMode = Literal["background", "autocheckpoint"]


class StoreError(JukiError):
    """The registry store cannot do what was asked (the message says why)."""

    code = "store_error"
    wire_code = 9100


class StoreUnavailable(StoreError):
    """The database cannot be opened or reached."""

    code = "store_unavailable"
    wire_code = 9101


def config_store_url(raw: str, config_dir: Path) -> str:
    """A ``[store] url`` written in a config file, with a relative SQLite path made absolute.

    ``sqlite:///registry.sqlite3`` in ``/srv/gw/gateway.toml`` means ``/srv/gw/registry.sqlite3``
    whatever the current directory; absolute paths, ``:memory:`` and PostgreSQL URLs are kept.
    """
    url = _checked_url(raw)
    parsed = make_url(url)
    database = parsed.database
    if (
        parsed.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and not Path(database).is_absolute()
    ):
        parsed = parsed.set(database=str((config_dir / database).resolve()))
        return parsed.render_as_string(hide_password=False)
    return url


def checked_store_url(url: str) -> str:
    """``url`` checked to be an SQLite or PostgreSQL URL (PostgreSQL through psycopg 3)."""
    return _checked_url(url)


def _checked_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"not a database URL: {url!r}") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UsageError(
            f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def storage_error(exc: BaseException | None) -> BaseException | None:
    """The database or driver error behind ``exc`` (itself, or in its cause chain), if any."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    kinds: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error)
    try:
        import psycopg

        kinds = (*kinds, psycopg.Error)
    except ImportError:  # the 'postgres' extra is not installed: no psycopg error to find
        pass
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kinds):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def describe_storage_error(exc: BaseException, incident: str) -> str:
    """A storage error as it may be logged or told: its class, the database's own error code
    (SQLSTATE, or SQLite's extended result code) and an incident id. Never its text, which
    quotes the statement and its parameters (resident data)."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlstate", None)
    name = getattr(orig, "sqlite_errorname", None)
    label = f"SQLSTATE {code}" if code else f"SQLite {name}" if name else None
    return f"{type(exc).__name__}{f' ({label})' if label else ''}, incident {incident}"


def is_postgres(engine: Engine) -> bool:
    """True when the engine talks to PostgreSQL (row locks, SKIP LOCKED available)."""
    return engine.dialect.name == "postgresql"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL, or None for other back ends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_store_engine(
    url: str, *, pool_size: int = 8, echo: bool = False,
    checkpoint: CheckpointMode = "background",
    wal_restart_bytes: int = DEFAULT_RESTART_BYTES,
    wal_min_interval: float = DEFAULT_MIN_INTERVAL,
    cache_kib: int = SQLITE_CACHE_KIB,
) -> Engine:
    """An engine configured for the store's durability and locking rules (see module docstring).

    For a SQLite file, ``checkpoint="background"`` (the default) moves WAL checkpoints to a
    :class:`~.checkpoint.WalCheckpointer` thread, started with the first connection and stopped
    (after a final checkpoint) by ``engine.dispose()``; ``"autocheckpoint"`` keeps SQLite's own
    checkpoint inside the committing call. ``wal_min_interval`` (seconds between PASSIVE
    checkpoints) and ``wal_restart_bytes`` (bound on the WAL) tune the checkpointer (see
    :mod:`.checkpoint`). ``cache_kib`` is SQLite's page cache per connection (grows on use):
    a bulk writer whose batches dirty more pages than it holds spills them into the WAL before
    COMMIT (see :mod:`.bench`).
    """
    url = _checked_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if checkpoint not in ("background", "autocheckpoint"):
            raise UsageError(f"unknown checkpoint mode {checkpoint!r}")
        path = sqlite_path(url)
        if path is not None and not path.parent.exists():
            raise StoreUnavailable(f"directory {path.parent} for the SQLite store does not exist")
        checkpointer = (
            WalCheckpointer(path, restart_bytes=wal_restart_bytes,
                            min_interval=wal_min_interval,
                            busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
            if path is not None and checkpoint == "background" else None
        )
        engine = create_engine(
            url,
            echo=echo,
            poolclass=NullPool if path is None else None,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False,
                          "factory": _NotifyingConnection},
        )
        _configure_sqlite(engine, checkpointer, cache_kib)
        return engine
    require("psycopg")  # the driver is an extra: one line naming it, not a traceback
    return create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def wal_checkpointer(engine: Engine) -> WalCheckpointer | None:
    """The background checkpointer of a SQLite file engine (None for other engines/modes)."""
    return _CHECKPOINTERS.get(engine)


_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, WalCheckpointer] = weakref.WeakKeyDictionary()


class _NotifyingConnection(sqlite3.Connection):
    """A pysqlite connection that tells the checkpointer after each COMMIT returned."""

    on_commit: Any = None

    def commit(self) -> None:
        super().commit()
        if self.on_commit is not None:
            self.on_commit()


def _configure_sqlite(
    engine: Engine, checkpointer: WalCheckpointer | None, cache_kib: int = SQLITE_CACHE_KIB
) -> None:
    if checkpointer is not None:
        _CHECKPOINTERS[engine] = checkpointer
        # Stop the thread (final checkpoint) on dispose(), or when the engine is collected.
        weakref.finalize(engine, checkpointer.request_stop)
        event.listen(engine, "engine_disposed", lambda _engine: checkpointer.stop())

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # only a new, empty file takes it
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA cache_size=-{cache_kib}")
        if checkpointer is not None:
            cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.execute(f"PRAGMA journal_size_limit={checkpointer.restart_bytes}")
            if isinstance(dbapi_conn, _NotifyingConnection):
                dbapi_conn.on_commit = checkpointer.notify
            checkpointer.start()
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if checkpointer is not None:
            checkpointer.writer_gate()
        if conn.get_execution_options().get(READ_SNAPSHOT):
            conn.exec_driver_sql("BEGIN")  # deferred: a WAL snapshot, no write lock
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
