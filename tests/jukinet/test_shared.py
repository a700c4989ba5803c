"""Two prefecture daemons on one PostgreSQL share the forwarding: a SIGKILLed one loses nothing."""

from __future__ import annotations

import os
import random
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from sqlalchemy import select
from twisted.internet import defer, task

from juki_gateway.gateway.jukinet.topology import make_chain
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.migrate import upgrade
from juki_gateway.registry_store.models import LinkLease, table_of
from juki_gateway.simulators.resident_events import timeline
from tests.jukinet.conftest import NOW, start_nodes, stop_nodes, wait_for
from tests.jukinet.proxy import FlakyProxy
from tests.jukinet.test_faults import NodeProcess, kiko_outcome

UPDATES = 2000
LINK = "pref-17->kiko"


def _lease_holder(url: str) -> str | None:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            t = table_of(LinkLease)
            return conn.execute(select(t.c.holder).where(t.c.link == LINK)).scalar_one_or_none()
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
@pytest_twisted.inlineCallbacks
def test_two_prefecture_daemons_share_forwarding_across_a_sigkill(
    store_url: str, tmp_path: Path
) -> Generator[Any, Any, None]:
    """A CS's updates through two prefecture instances on one PostgreSQL reach 機構 exactly once, in order, although the lease holder is SIGKILLed mid-run."""
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread

    rng = random.Random(int(os.environ.get("JUKI_FAULT_SEED", "11")))
    cfgs = make_chain(tmp_path, NOW, store_urls={"pref-17": store_url}, retry_initial=0.02,
                      retry_max=0.3, max_batch=200)
    pref_cfg = replace(cfgs["pref-17"], shared_store=True, lease_ttl=1.5, link_poll=0.05)
    upgrade(store_url)  # once, before two processes start on the same schema
    nodes = yield start_nodes(reactor, cfgs, ("kiko",))
    kiko_port = nodes["kiko"].bound_port
    prefs = {
        name: NodeProcess(replace(pref_cfg, instance=name), tmp_path,
                          {"kiko": kiko_port, "cs-172014": 1}, name=f"pref-17-{name}")
        for name in ("a", "b")
    }
    port_a = None
    try:
        for p in prefs.values():
            yield p.start()
        proxy = FlakyProxy(reactor, prefs["a"].port, rng, min_bytes=200_000, max_bytes=800_000)
        proxy.targets = [prefs["a"].port, prefs["b"].port]
        port_a = reactor.listenTCP(0, proxy, interface="127.0.0.1")
        more = yield start_nodes(reactor, cfgs, ("cs-172014", "kizon-172014"),
                                 ports={"pref-17": port_a.getHost().port, "kiko": kiko_port})
        nodes.update(more)
        records = list(timeline(rng, "172014", UPDATES, residents=200))
        kizon = nodes["kizon-172014"]
        killed = survivor = ""

        cs_link = nodes["cs-172014"].links["pref-17"]

        @defer.inlineCallbacks
        def switch_to(port: int, batch: list[bytes]) -> Generator[Any, Any, None]:
            """Lead the CS's address to one instance and wait until that instance has acked
            (so committed) frames of the CS: each instance takes part of the stream. The
            batch goes out only once the CS has reconnected to that instance (ACKs already on
            their way over the dropped connection must not count as the instance's)."""
            proxy.targets = [port]
            connected = proxy.connected_to.get(port, 0)
            proxy.drop_all()
            yield wait_for(reactor, lambda: proxy.connected_to.get(port, 0) > connected, 30,
                           f"the CS to reconnect to the instance on port {port}")
            acked = cs_link.seq.acked
            yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, batch)
            yield wait_for(reactor, lambda: cs_link.seq.acked > acked, 30,
                           f"the instance on port {port} to apply the CS's frames")

        for i in range(0, len(records), 100):
            batch = records[i:i + 100]
            if i == UPDATES // 4:  # the CS now talks to the lease holder, then to the other
                holder = yield deferToThread(_lease_holder, store_url)
                assert holder in ("pref-17/a", "pref-17/b"), holder
                killed = holder.rsplit("/", 1)[1]
                survivor = "b" if killed == "a" else "a"
                yield switch_to(prefs[killed].port, batch)
            elif i == UPDATES * 2 // 5:
                yield switch_to(prefs[survivor].port, batch)
            else:
                yield kizon.originate("cs-172014", M.UPDATE_NOTIFY, batch)
            if i == UPDATES // 2:
                prefs[killed].kill()  # the lease holder dies; the survivor takes the link over
            yield task.deferLater(reactor, 0.03, lambda: None)
        proxy.enabled = False  # let the run converge

        got, sent, lost, duplicated = yield kiko_outcome(reactor, nodes["kiko"], records)
        faults = proxy.faults + 3  # random drops, two switches, one SIGKILL
        print(f"\n{UPDATES} sent, {faults} faults, {lost} lost, {duplicated} duplicated "
              f"(CS connections per instance: {sorted(proxy.connected_to.values())})")
        assert (lost, duplicated) == (0, 0)
        assert got == sent  # per resident, every change in the order it happened
        holder = yield deferToThread(_lease_holder, store_url)
        assert holder == f"pref-17/{survivor}"  # the survivor took the link over
        # The CS really spoke to both instances (so each one applied some of the stream).
        assert all(proxy.connected_to.get(p.port, 0) > 0 for p in prefs.values())
    finally:
        if port_a is not None:
            yield port_a.stopListening()
        for p in prefs.values():
            p.stop()
        yield stop_nodes(nodes)
