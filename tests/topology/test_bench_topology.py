"""``make bench-topology`` (benchmarks/bench_topology.py) leaves nothing running when a leg or
its PostgreSQL fails, and says when the PostgreSQL it measures is not durable.

The bench itself is not run here (it takes minutes); these tests drive its set-up functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from benchmarks import bench_topology as bench

pytestmark = pytest.mark.timeout(60)


class FakeDaemon:
    def __init__(self, name: str) -> None:
        self.name, self.stopped = name, False

    def stop(self, timeout: float = 15.0) -> int:
        self.stopped = True
        return 0


def test_split_daemons_stops_those_it_started_when_one_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The third daemon of the split does not start: the two already running are stopped
    before the error goes on, and both were handed to the caller's list as they started."""
    made: list[FakeDaemon] = []

    def start(root: Path, timeout: float = 20.0) -> FakeDaemon:
        if root.name == "toyama":
            raise RuntimeError("daemon did not start")
        made.append(FakeDaemon(root.name))
        return made[-1]

    monkeypatch.setattr(bench, "init_split", lambda *a, **k: None)
    monkeypatch.setattr(bench, "start_daemon", start)
    started: list[Any] = []
    with pytest.raises(RuntimeError, match="did not start"):
        bench.split_daemons(tmp_path, None, started)
    assert [d.name for d in made] == ["kiko", "ishikawa"]
    assert all(d.stopped for d in made) and started == made


def test_a_failed_create_database_stops_the_private_cluster(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """CREATE DATABASE fails on the bench's own cluster: the cluster is stopped and the split
    falls back to SQLite, saying why."""
    stopped: list[bool] = []

    class Cluster:
        url = "postgresql://bench@127.0.0.1:1/postgres"

        def stop(self) -> None:
            stopped.append(True)

    def refuse(server: str) -> Any:
        raise OperationalError("CREATE DATABASE", {}, Exception("permission denied"))

    monkeypatch.delenv("JUKI_BENCH_PG_URL", raising=False)
    monkeypatch.delenv("JUKI_TEST_PG_URL", raising=False)
    monkeypatch.setattr(bench, "start_temp_cluster", lambda fsync: Cluster())
    monkeypatch.setattr(bench, "_pg_database", refuse)
    url, store, _durable, _cleanup = bench.postgres()
    assert url is None and stopped == [True]
    assert store.startswith("sqlite (no PostgreSQL server: ") and "permission denied" in store


def test_durability_reads_the_servers_settings(pg_database_url: str) -> None:
    """fsync and synchronous_commit as the server's sessions see them: with
    synchronous_commit off (set for the session) the store is not durable; otherwise it is
    durable exactly when fsync is on."""
    off = make_url(pg_database_url).update_query_dict(
        {"options": "-c synchronous_commit=off"}).render_as_string(hide_password=False)
    durable, settings = bench.durability(off)
    assert not durable and settings.endswith("synchronous_commit=off")
    on = make_url(pg_database_url).update_query_dict(
        {"options": "-c synchronous_commit=on"}).render_as_string(hide_password=False)
    durable, settings = bench.durability(on)
    fsync = settings.split(",")[0]
    assert fsync in ("fsync=on", "fsync=off") and settings.endswith("synchronous_commit=on")
    assert durable == (fsync == "fsync=on")
