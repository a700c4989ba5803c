"""The Juki-net chain end to end over real mutual TLS on loopback."""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

import pytest_twisted
from sqlalchemy import select
from twisted.internet import defer

from juki_gateway.gateway.jukinet import store as st
from juki_gateway.gateway.jukinet.node import NodeConfig
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.registry_store.models import HonninKakuninHistory
from juki_gateway.simulators.resident_events import serial_of, timeline
from tests.jukinet.conftest import node_read, start_nodes, stop_nodes, wait_for


def _history(conn: Any) -> list[tuple[str, int, bytes]]:
    h = HonninKakuninHistory.__table__
    return [tuple(r) for r in conn.execute(  # type: ignore[misc]
        select(h.c.juminhyo_code, h.c.history_no, h.c.record).order_by(h.c.juminhyo_code, h.c.history_no))]


@pytest_twisted.inlineCallbacks
def test_scripted_events_leave_all_three_files_identical(
    chain_cfgs: dict[str, NodeConfig],
) -> Generator[Any, Any, None]:
    """転入/出生/転居/死亡/転出 sent by the existing system reach CS, prefecture and 機構 alike."""
    from twisted.internet import reactor

    nodes = yield start_nodes(reactor, chain_cfgs)
    try:
        records = list(timeline(random.Random(5), "172014", 600, residents=80))
        kizon = nodes["kizon-172014"]
        for i in range(0, len(records), 97):
            yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, records[i:i + 97])

        def kiko_done() -> defer.Deferred[bool]:
            return node_read(nodes["kiko"], lambda c: len(_history(c)) >= len(records))

        yield wait_for(reactor, kiko_done, 30, "機構 to apply every update")
        files = []
        for name in ("cs-172014", "pref-17", "kiko"):
            current = yield node_read(nodes[name], st.current_records)
            history = yield node_read(nodes[name], _history)
            files.append(current)
            assert len(history) == len(records)
            by_code: dict[str, list[int]] = {}
            for code, _, rec in history:
                by_code.setdefault(code, []).append(serial_of(rec))
            sent: dict[str, list[int]] = {}
            for rec in records:
                sent.setdefault(st.juminhyo_of(rec), []).append(serial_of(rec))
            assert by_code == sent  # every change once, in the order it happened
        assert files[0] == files[1] == files[2] and len(files[0]) == 80
        assert kizon.links["cs-172014"].seq.depth == 0
        assert nodes["cs-172014"].links["pref-17"].seq.depth == 0
    finally:
        yield stop_nodes(nodes)
