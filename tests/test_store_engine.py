"""Store URL resolution, engine settings and migrations on both engines."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from juki_gateway.cli.storeopts import store_url_from_args
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import parse_config
from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.migrate import current_revision, downgrade, head_revision, upgrade
from juki_gateway.registry_store.models import Base
from juki_gateway.workdir import read_toml


def _url(db: str | None, config: Path) -> str:
    return store_url_from_args(argparse.Namespace(db=db, config=str(config)))


def test_db_option_wins_over_config(tmp_path: Path) -> None:
    """--db is used as given even when the config names another store."""
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('[store]\nurl = "sqlite:////elsewhere.sqlite3"\n')
    assert _url("sqlite:////x.sqlite3", cfg) == "sqlite:////x.sqlite3"


def test_config_store_url_then_default_beside_config(tmp_path: Path) -> None:
    """[store] url is used when set, else registry.sqlite3 in the config's directory."""
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('[store]\nurl = "postgresql://u@h/db"\n')
    assert _url(None, cfg) == "postgresql+psycopg://u@h/db"
    cfg.write_text("[timeouts]\n")
    assert _url(None, cfg) == f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    assert _url(None, tmp_path / "absent.toml").endswith("registry.sqlite3")


def test_a_store_command_reads_a_validated_config(tmp_path: Path) -> None:
    """A store sub-command refuses a config the daemon would refuse (one line, the key named)."""
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('[gateway]\n')
    with pytest.raises(UsageError, match="unknown field `gateway`"):
        _url(None, cfg)


def test_relative_sqlite_url_is_relative_to_the_config_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative [store] url names the same file for the CLI and the daemon, from any directory."""
    wd = tmp_path / "wd"
    wd.mkdir()
    cfg = wd / "gateway.toml"
    cfg.write_text('[store]\nurl = "sqlite:///data/reg.sqlite3"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    expected = f"sqlite:///{(wd / 'data' / 'reg.sqlite3').resolve()}"
    assert _url(None, Path("../wd/gateway.toml")) == expected
    assert parse_config(read_toml(cfg), cfg).store.url == expected
    cfg.write_text('[store]\nurl = "sqlite:////abs/reg.sqlite3"\n')
    assert parse_config(read_toml(cfg), cfg).store.url == "sqlite:////abs/reg.sqlite3"
    assert _url(None, cfg) == "sqlite:////abs/reg.sqlite3"


@pytest.mark.parametrize("bad", ["mysql://x/y", "not a url", ""])
def test_bad_urls_are_usage_errors(tmp_path: Path, bad: str) -> None:
    """Unsupported or malformed URLs are UsageErrors, not tracebacks."""
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f"[store]\nurl = {bad!r}\n".replace("'", '"'))
    with pytest.raises(UsageError):
        _url(None, cfg)


def test_sqlite_pragmas_are_durable(tmp_path: Path) -> None:
    """SQLite connections use WAL, synchronous=FULL, foreign keys and a busy timeout."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 's.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    engine.dispose()


def test_upgrade_from_empty_and_downgrade_back(store_url: str) -> None:
    """Migrations create exactly the models' tables and the downgrade removes them all."""
    upgrade(store_url)
    engine = create_store_engine(store_url)
    try:
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        for table in Base.metadata.tables.values():
            indexes = {i["name"] for i in inspect(engine).get_indexes(table.name)}
            assert {i.name for i in table.indexes} <= indexes, table.name
        downgrade(store_url)
        left = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert left == set()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0
    finally:
        engine.dispose()


def test_migrations_match_models(store_url: str) -> None:
    """Alembic autogenerate finds no difference between the migrated schema and the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    upgrade(store_url)
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_current_rows_are_a_rowid_table_without_overflow_pages(tmp_path: Path) -> None:
    """Revision 0004 keeps the rows and stores each 898-byte-record row in one leaf page."""
    import datetime as dt

    from juki_gateway.registry_store.residents import get_current, load_residents
    from juki_gateway.registry_store.synthetic import make_resident

    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    upgrade(url, "0003")
    engine = create_store_engine(url)
    rows = [make_resident(n, record_size=898) for n in range(1, 301)]
    try:
        with engine.begin() as conn:
            load_residents(conn, rows, dt.datetime(2026, 4, 1))

        def table_sql() -> str:
            with engine.connect() as conn:
                return str(conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'honnin_kakunin'").scalar())

        def overflow_pages() -> int:
            with engine.connect() as conn:
                return int(conn.exec_driver_sql(
                    "SELECT count(*) FROM dbstat WHERE name = 'honnin_kakunin' "
                    "AND pagetype = 'overflow'").scalar() or 0)

        assert "WITHOUT ROWID" in table_sql() and overflow_pages() == 300
        upgrade(url, engine=engine)
        assert "WITHOUT ROWID" not in table_sql() and overflow_pages() == 0
        with engine.connect() as conn:
            assert [get_current(conn, r.juminhyo_code) for r in rows] == rows
        downgrade(url, "0003", engine=engine)
        assert "WITHOUT ROWID" in table_sql()
        with engine.connect() as conn:
            assert get_current(conn, rows[-1].juminhyo_code) == rows[-1]
    finally:
        engine.dispose()


def test_spent_permits_get_an_expiry_that_forgets_nothing(store_url: str) -> None:
    """Revision 0009 gives ids spent before it the latest expiry a permit can state (so they
    still refuse replays and are never purged) and its downgrade keeps the ids."""
    import datetime as dt

    upgrade(store_url, "0005")
    engine = create_store_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO ims_used_permit (permit_id, used_at) "
                              "VALUES ('p-before', :at)"), {"at": dt.datetime(2026, 11, 1)})
        upgrade(store_url, engine=engine)
        from juki_gateway.registry_store.ims import used_permits

        with engine.connect() as conn:
            assert used_permits(conn, dt.datetime(9999, 12, 31, 23, 59, 59)) == {
                "p-before": dt.datetime(9999, 12, 31, 23, 59, 59)}
        downgrade(store_url, "0005", engine=engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT permit_id FROM ims_used_permit")).scalars().all() \
                == ["p-before"]
    finally:
        engine.dispose()
