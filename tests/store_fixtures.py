"""Fixtures giving every store test a fresh, migrated database on SQLite AND on PostgreSQL.

PostgreSQL comes from ``JUKI_TEST_PG_URL`` (CI sets it after starting the machine's cluster),
else from a private throwaway cluster started for this test session (see
``tests/pgcluster.py``). Either way the session works in its own, newly
created database, and each test in its own schema (``search_path``), so parallel runs by other
people on the same server never collide. With ``CI=true`` a missing PostgreSQL fails the
PostgreSQL tests instead of skipping them.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.migrate import upgrade
from tests.pgcluster import PgClusterUnavailable, start_temp_cluster

PG_ENV = "JUKI_TEST_PG_URL"
_schema_counter = itertools.count(1)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """URL of a database created for this test session on a real PostgreSQL server."""
    cluster = None
    server_url = os.environ.get(PG_ENV)
    if not server_url:
        try:
            cluster = start_temp_cluster(fsync=False)
        except PgClusterUnavailable as exc:
            if _in_ci():
                pytest.fail(f"PostgreSQL is required in CI: {exc}")
            pytest.skip(f"no PostgreSQL: {exc} (set {PG_ENV})")
        server_url = cluster.url
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"juki_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        if cluster is not None:
            cluster.stop()
        if _in_ci():
            pytest.fail(f"PostgreSQL at {PG_ENV} is not usable: {exc}")
        pytest.skip(f"PostgreSQL not usable: {exc}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)
        admin.dispose()
        if cluster is not None:
            cluster.stop()


def _drop_database(admin: Engine, name: str) -> None:
    """Drop the session's database, ending this role's own leftover sessions first.

    ``DROP ... WITH (FORCE)`` would also try to signal an autovacuum worker busy in the
    database, which a non-superuser role (CI's) may not do. A plain ``DROP DATABASE`` stops
    autovacuum itself; only this role's sessions (leaked by a failed test) are terminated, and
    the drop is retried for a few seconds while they go away.
    """
    last: Exception | None = None
    for _attempt in range(20):
        try:
            with admin.connect() as conn:
                conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND usename = current_user AND pid <> pg_backend_pid()"
                ), {"name": name})
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            return
        except OperationalError as exc:  # "being accessed by other users": retry
            last = exc
            time.sleep(0.25)
    raise AssertionError(f"could not drop the test database {name}: {last}")


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite3'}"
        return
    yield request.getfixturevalue("pg_schema_url")


@pytest.fixture
def pg_schema_url(pg_database_url: str) -> Iterator[str]:
    """A fresh, empty schema of the session's PostgreSQL database, as a URL whose connections
    work in it (``search_path``); dropped afterwards."""
    schema = f"t{next(_schema_counter)}_{secrets.token_hex(3)}"
    admin = create_engine(pg_database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(pg_database_url).update_query_dict(
            {"options": f"-csearch_path={schema}"}
        ).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store_engine(store_url: str) -> Iterator[Engine]:
    """A migrated store (both engines) and its engine."""
    upgrade(store_url)
    engine = create_store_engine(store_url)
    try:
        yield engine
    finally:
        engine.dispose()
