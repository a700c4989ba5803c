"""The Juki-net chain end to end over real mutual TLS on loopback."""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import replace
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer

from juki_gateway.gateway.jukinet.node import JukinetNode, NodeConfig
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.protocols.jukinet.records import REMOVAL_REASONS, decode_honnin_kakunin
from juki_gateway.registry_store import jukinet as st
from juki_gateway.simulators.resident_events import serial_of, timeline
from tests.jukinet.conftest import node_read, start_nodes, stop_nodes, wait_for


@pytest_twisted.inlineCallbacks
def test_scripted_events_leave_all_three_files_identical(
    chain_cfgs: dict[str, NodeConfig],
) -> Generator[Any, Any, None]:
    """転入/出生/転居/死亡/転出 sent by the existing system reach CS, prefecture and 機構 alike;
    residents who died or moved out leave every current file for the 消除者 table."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs)
    try:
        records = list(timeline(random.Random(5), "172014", 600, residents=80))
        kizon = nodes["kizon-172014"]
        for i in range(0, len(records), 97):
            yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, records[i:i + 97])

        def kiko_done() -> defer.Deferred[bool]:
            return node_read(nodes["kiko"], lambda c: st.count_versions(c) >= len(records))

        yield wait_for(reactor, kiko_done, 30, "機構 to apply every update")
        files = []
        removed = {st.juminhyo_of(r) for r in records
                   if decode_honnin_kakunin(r)["change_reason"] in REMOVAL_REASONS}
        assert removed  # the timeline holds 死亡 and 転出
        for name in ("cs-172014", "pref-17", "kiko"):
            current = yield node_read(nodes[name], st.current_records)
            deleted = yield node_read(nodes[name], st.deleted_records)
            kept = yield node_read(nodes[name], st.versions)
            files.append((current, deleted))
            assert set(deleted) == removed and not removed & set(current)
            assert sum(len(v) for v in kept.values()) == len(records)
            by_code = {code: [serial_of(r) for r in recs] for code, recs in kept.items()}
            sent: dict[str, list[int]] = {}
            for rec in records:
                sent.setdefault(st.juminhyo_of(rec), []).append(serial_of(rec))
            assert by_code == sent  # every change once, in the order it happened
        assert files[0] == files[1] == files[2] and len(files[0][0]) + len(files[0][1]) == 80
        assert kizon.links["cs-172014"].seq.depth == 0
        assert nodes["cs-172014"].links["pref-17"].seq.depth == 0
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_a_failed_commit_drops_queued_work_and_recovers_exactly_once(
    chain_cfgs: dict[str, NodeConfig], monkeypatch: pytest.MonkeyPatch,
) -> Generator[Any, Any, None]:
    """When one commit fails, frames queued behind it are not applied out of order; the link
    reconnects, resends, and every update still lands exactly once, in order."""
    from twisted.internet import reactor

    real = st.apply_rows
    calls = {"n": 0}

    def flaky(conn: Any, rows: Any, now: Any, **options: Any) -> set[int]:
        calls["n"] += 1
        if calls["n"] in (3, 7):
            raise RuntimeError("injected store failure")
        return real(conn, rows, now, **options)

    monkeypatch.setattr(st, "apply_rows", flaky)
    nodes = yield start_nodes(reactor, chain_cfgs)
    try:
        records = list(timeline(random.Random(9), "172014", 400, residents=50))
        kizon = nodes["kizon-172014"]
        for i in range(0, len(records), 20):  # many small frames: several queue behind a failure
            yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, records[i:i + 20])

        def kiko_done() -> defer.Deferred[bool]:
            return node_read(nodes["kiko"], lambda c: st.count_versions(c) >= len(records))

        yield wait_for(reactor, kiko_done, 30, "機構 to apply every update")
        assert calls["n"] > 7
        sent: dict[str, list[int]] = {}
        for rec in records:
            sent.setdefault(st.juminhyo_of(rec), []).append(serial_of(rec))
        for name in ("cs-172014", "pref-17", "kiko"):
            kept = yield node_read(nodes[name], st.versions)
            assert {c: [serial_of(r) for r in v] for c, v in kept.items()} == sent
    finally:
        yield stop_nodes(nodes)


@pytest_twisted.inlineCallbacks
def test_a_backlog_is_read_only_as_fast_as_it_is_committed(
    chain_cfgs: dict[str, NodeConfig],
) -> Generator[Any, Any, None]:
    """Flow control: a hop stops reading a backlog while its next transaction is already full
    (so at most ``commit_records`` plus one frame wait for a commit, instead of everything the
    sender had queued), and reads on as batches start; every update still lands once, in order."""
    from twisted.internet import reactor

    cfgs = {name: replace(cfg, max_batch=100, commit_records=200) for name, cfg in chain_cfgs.items()}
    nodes = yield start_nodes(reactor, cfgs, names=("kiko", "pref-17", "cs-172014"))
    try:
        records = list(timeline(random.Random(8), "172014", 3000, residents=400))
        kizon = nodes["kizon-172014"] = JukinetNode(cfgs["kizon-172014"], reactor)
        kizon.startService()
        yield kizon.ready
        for i in range(0, len(records), 500):  # queued before the link comes up: one backlog
            yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, records[i:i + 500])
        kizon.connect({"cs-172014": nodes["cs-172014"].bound_port})

        def kiko_done() -> defer.Deferred[bool]:
            return node_read(nodes["kiko"], lambda c: st.count_versions(c) >= len(records))

        yield wait_for(reactor, kiko_done, 60, "機構 to apply every update")
        for name in ("cs-172014", "pref-17", "kiko"):
            node = nodes[name]
            assert node.receiving.max_queued_records < 200 + 100, (name, node.receiving.max_queued_records)
            kept = yield node_read(node, st.versions)
            by_code = {code: [serial_of(r) for r in recs] for code, recs in kept.items()}
            sent: dict[str, list[int]] = {}
            for rec in records:
                sent.setdefault(st.juminhyo_of(rec), []).append(serial_of(rec))
            assert by_code == sent  # every change once, in the order it happened
        assert nodes["cs-172014"].receiving.read_pauses > 0  # the 3,000-record backlog was paced
    finally:
        yield stop_nodes(nodes)
