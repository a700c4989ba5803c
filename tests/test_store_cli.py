"""The store, audit and retention sub-commands end to end on a real store (both engines)."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from juki_gateway.cli import main
from juki_gateway.registry_store.anchor import AuditKey, write_key
from juki_gateway.registry_store.audit import append_audit
from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.models import AuditChainHead, AuditEntry, HonninKakunin, table_of
from juki_gateway.registry_store.residents import load_residents
from juki_gateway.registry_store.synthetic import make_resident

T0 = dt.datetime(2026, 4, 1, 9, 0, 0)


@pytest.fixture
def key_args(tmp_path: Path) -> list[str]:
    """``--audit-key PATH`` of a fresh anchor key (the store given by --db has no workdir)."""
    path = tmp_path / "audit-anchor.key"
    write_key(path, KEY)
    return ["--audit-key", str(path)]


KEY = AuditKey(bytes(range(32)))


def _entries(engine: Engine, n: int = 4) -> None:
    with engine.begin() as conn:
        for i in range(n):
            append_audit(conn, now=T0 + dt.timedelta(hours=i), operator_id=f"op{i % 2}",
                         terminal_id="t01", subject=f"A{i}", action="hold_release", key=KEY)


def test_migrate_then_verify_and_list(store_url: str, capsys: pytest.CaptureFixture[str],
                                     key_args: list[str]) -> None:
    """store migrate creates the schema; audit verify passes and audit list filters."""
    assert main(["store", "migrate", "--db", store_url]) == 0
    engine = create_store_engine(store_url)
    _entries(engine)
    capsys.readouterr()
    assert main(["audit", "verify", "--db", store_url, *key_args]) == 0
    assert "4 entries verified" in capsys.readouterr().out
    assert main(["audit", "list", "--db", store_url, "--operator", "op1",
                 "--since", "2026-04-01T10:30"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[4] for line in lines] == ["A3"]
    with engine.begin() as conn:
        a = table_of(AuditEntry)
        conn.execute(update(a).where(a.c.subject == "A2").values(action="hold_refuse"))
    assert main(["audit", "verify", "--db", store_url, *key_args]) == 1
    out = capsys.readouterr().out
    assert "BROKEN (modified) at entry 3" in out
    engine.dispose()


def test_retention_cli_dry_run_and_run(store_url: str, capsys: pytest.CaptureFixture[str],
                                      key_args: list[str]) -> None:
    """retention run --dry-run prints counts and changes nothing; without it, it purges."""
    assert main(["store", "migrate", "--db", store_url]) == 0
    engine = create_store_engine(store_url)
    with engine.begin() as conn:
        append_audit(conn, now=dt.datetime(2010, 1, 1), operator_id="op", terminal_id="t",
                     subject="s", action="a", key=KEY)
    capsys.readouterr()
    assert main(["retention", "run", "--db", store_url, "--as-of", "2026-04-01", "--dry-run"]) == 0
    assert "audit_log: would purge 1" in capsys.readouterr().out
    assert main(["retention", "run", "--db", store_url, "--as-of", "2026-04-01", *key_args]) == 0
    assert "audit_log: purged 1" in capsys.readouterr().out
    assert main(["audit", "verify", "--db", store_url, *key_args]) == 0
    engine.dispose()


def test_unmigrated_store_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Commands on a missing or empty store exit 3 with one line telling to run store migrate."""
    cfg = tmp_path / "gateway.toml"
    assert main(["audit", "verify", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "store migrate" in err and "Traceback" not in err
    create_store_engine(f"sqlite:///{tmp_path / 'registry.sqlite3'}").connect().close()
    assert main(["audit", "list", "--config", str(cfg)]) == 1
    assert "schema (empty)" in capsys.readouterr().err


def test_backup_online_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   key_args: list[str]) -> None:
    """A backup taken while a writer commits is consistent; restore brings that state back."""
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    assert main(["store", "migrate", "--db", url]) == 0
    engine = create_store_engine(url)
    stop, first = threading.Event(), threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            with engine.begin() as conn:
                load_residents(conn, [make_resident(n * 100 + k) for k in range(100)], T0)
                append_audit(conn, now=T0, operator_id="w", terminal_id="t", subject=str(n),
                             action="load", key=KEY)
            first.set()
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert first.wait(timeout=30)
        backup = tmp_path / "backup.sqlite3"
        assert main(["store", "backup", "--db", url, str(backup)]) == 0
        assert backup.stat().st_mode & 0o777 == 0o600  # residents: this account only
    finally:
        stop.set()
        thread.join(timeout=30)
    copy = create_store_engine(f"sqlite:///{backup}")
    with copy.begin() as conn:
        residents = conn.execute(select(func.count()).select_from(table_of(HonninKakunin))).scalar()
        audits = conn.execute(select(func.count()).select_from(table_of(AuditEntry))).scalar()
    copy.dispose()
    assert audits and residents == 100 * audits  # every batch whole: 100 residents per audit entry
    assert main(["store", "restore", "--db", url, str(backup), *key_args]) == 0
    with engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(table_of(HonninKakunin))).scalar() == residents
    assert main(["audit", "verify", "--db", url, *key_args]) == 0
    engine.dispose()


def test_backup_refuses_postgres(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """store backup on a PostgreSQL URL points to pg_dump instead of failing obscurely."""
    assert main(["store", "restore", "--db", "postgresql+psycopg://u@127.0.0.1:1/x",
                 str(tmp_path / "b")]) == 1
    assert "pg_dump" in capsys.readouterr().err


def test_workdir_anchor_verify_rotate_and_tamper(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """On a working directory made by ``init``: operator switches are audited with the anchor key
    from pki/, every good ``audit verify`` appends a checkpoint, a rewritten head is reported,
    ``audit anchor`` refuses to whitewash it, and a key rotation keeps old checkpoints valid."""
    wd = tmp_path / "wd"
    assert main(["init", str(wd)]) == 0
    cfg = ["--config", str(wd / "gateway.toml")]
    key_file, checkpoints = wd / "pki" / "audit-anchor.key", wd / "pki" / "audit-checkpoints.jsonl"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert main(["store", "migrate", *cfg]) == 0
    for state in ("on", "off"):
        assert main(["maintenance", state, "--reason", "test", "--operator", "op1", *cfg]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", *cfg]) == 0
    assert "2 entries verified" in capsys.readouterr().out
    assert len(checkpoints.read_text().splitlines()) == 1
    assert checkpoints.stat().st_mode & 0o777 == 0o600

    assert main(["audit", "anchor", "--new-key", "--operator", "op2", *cfg]) == 0
    assert len(list(key_file.parent.glob("audit-anchor.key.retired-*"))) == 1
    assert main(["audit", "verify", *cfg]) == 0  # the old checkpoint verifies with the retired key
    assert "2 checkpoints consistent" in capsys.readouterr().out
    assert len(checkpoints.read_text().splitlines()) == 3

    engine = create_store_engine(f"sqlite:///{wd / 'registry.sqlite3'}")
    with engine.begin() as conn:  # cut the newest entry and make the head agree
        a, h = table_of(AuditEntry), table_of(AuditChainHead)
        newest = conn.execute(select(func.max(a.c.id))).scalar_one()
        conn.execute(a.delete().where(a.c.id == newest))
        prev = conn.execute(select(a.c.id, a.c.entry_hash).where(a.c.id == newest - 1)).one()
        conn.execute(update(h).values(last_id=prev.id, last_hash=prev.entry_hash,
                                      entry_count=h.c.entry_count - 1))
    engine.dispose()
    assert main(["audit", "verify", *cfg]) == 1
    assert "BROKEN (head_rewritten)" in capsys.readouterr().out
    assert main(["audit", "anchor", *cfg]) != 0
    assert "may have been rewritten" in capsys.readouterr().err
    before = key_file.read_bytes()
    assert main(["audit", "anchor", "--new-key", *cfg]) != 0  # nor with a new key: nothing moves
    assert key_file.read_bytes() == before and not key_file.with_name(
        "audit-anchor.key.new").exists()
    assert main(["audit", "verify", "--no-checkpoint", *cfg]) == 1


def test_verify_without_a_key_says_how_to_make_one(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A store whose working directory has no anchor key: verify fails with one clear line, and
    an upgraded, unanchored chain is anchored by ``audit anchor --new-key``."""
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    key = tmp_path / "k" / "audit-anchor.key"
    key.parent.mkdir()
    assert main(["store", "migrate", "--db", url]) == 0
    engine = create_store_engine(url)
    _entries(engine)  # written with a key, then the MAC removed: an upgraded store's head
    with engine.begin() as conn:
        conn.execute(update(table_of(AuditChainHead)).values(head_mac=None))
    engine.dispose()
    capsys.readouterr()
    args = ["--db", url, "--audit-key", str(key)]
    assert main(["audit", "verify", *args]) == 1
    assert "audit anchor --new-key" in capsys.readouterr().err
    assert main(["audit", "anchor", "--new-key", *args]) == 0
    assert main(["audit", "verify", *args]) == 0
    assert "5 entries verified" in capsys.readouterr().out


def test_retention_run_covers_every_store_of_the_config(
        store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """retention run --config purges the registry store and every node store gateway.toml names,
    each audited with the working directory's anchor key, printing a block per store; a node
    store that does not exist yet is named and skipped."""
    import tomli_w

    from juki_gateway.gateway.config import default_topology, load_config
    from juki_gateway.registry_store.anchor import KEY_NAME
    from juki_gateway.registry_store.audit import list_audit, verify_chain
    from juki_gateway.registry_store.residents import add_soufusaki, mark_soufusaki_sent

    topo = default_topology(7100)
    topo["store"]["url"] = store_url
    cfg_path = tmp_path / "gateway.toml"
    cfg_path.write_text(tomli_w.dumps(topo))
    (tmp_path / "pki").mkdir()
    write_key(tmp_path / "pki" / KEY_NAME, KEY)
    stores = load_config(cfg_path).stores()
    assert list(stores) == ["registry", "cs-172014", "kiko", "pref-17"]
    for name in ("registry", "cs-172014", "kiko"):  # pref-17's node never ran
        assert main(["store", "migrate", "--db", stores[name]]) == 0
        engine = create_store_engine(stores[name])
        with engine.begin() as conn:
            append_audit(conn, now=dt.datetime(2010, 1, 1), operator_id="op", terminal_id="t",
                         subject="s", action="a", key=KEY)
            if name == "cs-172014":  # sent Monday 08:30 JST: due on Tuesday
                add_soufusaki(conn, "S1", "24727059608", None, b"rec", T0)
                mark_soufusaki_sent(conn, "S1", dt.datetime(2026, 4, 5, 23, 30))
        engine.dispose()
    capsys.readouterr()
    assert main(["retention", "run", "--config", str(cfg_path), "--as-of", "2026-04-06"]) == 0
    out = capsys.readouterr().out
    assert out.count("retention as of 2026-04-06:") == 3
    assert "cs-172014:\n  retention as of 2026-04-06:\n" in out
    assert f"pref-17: no store at {tmp_path.resolve() / 'jukinet-pref-17.sqlite3'}" in out
    assert "soufusaki: purged 1" not in out  # Monday: kept
    assert main(["retention", "run", "--config", str(cfg_path), "--as-of", "2026-04-07"]) == 0
    blocks = capsys.readouterr().out.split("\n", 1)[1]
    assert "soufusaki: purged 1" in blocks.split("kiko:")[0]  # in cs-172014's block
    for name in ("registry", "cs-172014", "kiko"):
        engine = create_store_engine(stores[name])
        with engine.connect() as conn:
            assert [e.action for e in list_audit(conn)] == ["retention_purge"] * 2, name
            assert verify_chain(conn, keys=[KEY]).ok, name
        engine.dispose()


def test_each_store_has_checkpoints_of_its_own(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`audit verify --store NODE` checks a node store's chain against that store's own
    checkpoint file: verifying the registry first is no false alarm for the node."""
    wd = tmp_path / "wd"
    assert main(["init", str(wd)]) == 0
    cfg = ["--config", str(wd / "gateway.toml")]
    assert main(["store", "migrate", *cfg]) == 0
    assert main(["store", "migrate", "--store", "kiko", *cfg]) == 0
    for _ in range(3):
        assert main(["maintenance", "on", "--reason", "x", "--operator", "op1", *cfg]) == 0
    assert main(["retention", "run", "--store", "kiko", *cfg]) == 0
    assert main(["audit", "verify", *cfg]) == 0
    assert main(["audit", "verify", "--store", "kiko", *cfg]) == 0
    assert main(["audit", "verify", "--store", "kiko", *cfg]) == 0
    pki = wd / "pki"
    assert len((pki / "audit-checkpoints.jsonl").read_text().splitlines()) == 1
    assert len((pki / "audit-checkpoints-kiko.jsonl").read_text().splitlines()) == 2
    capsys.readouterr()
    assert main(["audit", "verify", "--store", "nowhere", *cfg]) == 2
    assert "one of registry" in capsys.readouterr().err
