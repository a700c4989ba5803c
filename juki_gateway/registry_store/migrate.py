"""Run the registry store's Alembic migrations programmatically: ``upgrade(url)``, ``downgrade(url)``.

The migration scripts ship inside the package (``migrations/``), so an installed gateway can
create or upgrade its database with ``juki-gateway store migrate`` and no alembic.ini. Blocking:
called at start-up (a node's store thread, the intermediate server's start) and from the CLI;
one migration runs at a time in a process.
"""

from __future__ import annotations

import threading

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from juki_gateway.registry_store.engine import READ_SNAPSHOT, create_store_engine

SCRIPT_LOCATION = "juki_gateway.registry_store:migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration pointing at the packaged scripts and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


#: Alembic keeps its running environment in module globals: one migration at a time per process
#: (the daemon migrates its node stores on their threads and the intermediate server's store).
_LOCK = threading.Lock()


def _run(url: str, engine: Engine | None, fn: str, revision: str) -> None:
    own = engine is None
    eng = engine if engine is not None else create_store_engine(url)
    try:
        with _LOCK, eng.connect() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            getattr(command, fn)(cfg, revision)
            conn.commit()
    finally:
        if own:
            eng.dispose()


def upgrade(url: str, revision: str = "head", *, engine: Engine | None = None) -> None:
    """Bring the database at ``url`` up to ``revision`` (default: the newest)."""
    _run(url, engine, "upgrade", revision)


def downgrade(url: str, revision: str = "base", *, engine: Engine | None = None) -> None:
    """Take the database at ``url`` down to ``revision`` (default: empty)."""
    _run(url, engine, "downgrade", revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect().execution_options(**{READ_SNAPSHOT: True}) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision the packaged scripts know."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
