"""``make bench-intermediate``: auto-answered and held queries per second over mutual TLS.

The daemon runs as a real ``juki-gateway serve`` process on a fresh working directory (its own
core); this process is the ipnw peer. Full path per query: frame signature check, permit
signature, expiry, replay, provider, permission list, 符号, flag read, 副本 read, sealing to
the requester, a signed result frame and a provision record committed before the result is
sent. The client pipelines frames of ``BATCH`` queries with ``WINDOW`` frames in flight; permits
are signed before timing starts. Prints a table and ``BENCH`` lines; never fails on speed.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from twisted.internet import defer, task

from juki_gateway.gateway.config import load_config
from juki_gateway.gateway.intermediate.service import ImsKeys, IntermediateService, OperatorIdentity
from juki_gateway.protocols.intermediate.messages import ImsMessageType
from juki_gateway.protocols.intermediate.permission_list import PermissionEntry
from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.migrate import upgrade
from juki_gateway.registry_store.models import FugoMap, ProvisionRecord
from tests.gateway_support import start_daemon
from tests.intermediate.conftest import fukuhon_record
from tests.intermediate.helpers import REQUESTER, make_list, make_permit
from tests.intermediate.mtls import connect, frame_from, make_workdir, private_key
from tests.intermediate.test_service import query_body

BATCH = 100
WINDOW = 8
PEOPLE = 2000
FLAGGED = 50
OP = OperatorIdentity("op-alice", frozenset({"flag-operator"}))
ITEMS = frozenset({"shimei", "jusho", "seinengappi"})
CLIENT_CPU: dict[str, float] = {}  # share of one core the ipnw client used while measuring


def seed(config: Any, people: list[tuple[str, str]], flagged: bool) -> None:
    """Permission list, 符号, 副本 and (for the held run) flags, before the daemon starts."""
    engine = create_store_engine(config.store.url)
    upgrade(config.store.url, engine=engine)
    svc = IntermediateService(engine, ImsKeys.from_pki(config.pki_dir), "ims-172014", task.Clock())
    svc.start()
    network = private_key(config.pki_dir, "ipnw")
    entries = [PermissionEntry(REQUESTER, 1, ITEMS)]
    svc.offer_permission_list(make_list(1, entries, key=network).to_bytes())
    with engine.begin() as conn:
        conn.execute(
            FugoMap.__table__.insert(),
            [{"fugo": f, "atena_no": a, "created_at": dt.datetime(2026, 1, 1)} for a, f in people],
        )
    svc.start()
    svc.import_fukuhon(b"".join(fukuhon_record(a) for a, _ in people))
    if flagged:
        for atena, _ in people[:FLAGGED]:
            svc.flag_request_set(OP, atena, (), "01", "20991231")
    engine.dispose()


def recorded(config: Any, outcome: str) -> int:
    """Provision records with ``outcome`` in the daemon's store."""
    engine = create_store_engine(config.store.url)
    pr = ProvisionRecord.__table__
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).where(pr.c.outcome == outcome)).scalar_one()
    engine.dispose()
    return int(n)


async def run_kind(reactor: Any, work: Path, kind: str, total: int) -> float:
    """Queries per second for one kind (answered or held)."""
    path = make_workdir(work / kind, dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    config = load_config(path)
    people = [(f"{i + 1:015d}", f"{i:032x}") for i in range(PEOPLE)]
    seed(config, people, kind == "held")
    network = private_key(config.pki_dir, "ipnw")
    now = dt.datetime.now(dt.UTC)
    issued = (now - dt.timedelta(minutes=5)).strftime("%Y%m%d%H%M%S")
    expires = (now + dt.timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
    pool = people[:FLAGGED] if kind == "held" else people[FLAGGED:]
    frames, n = [], 0
    for f in range(total // BATCH):
        bodies = []
        for _ in range(BATCH):
            _, fugo = pool[n % len(pool)]
            n += 1
            permit = make_permit(
                f"{kind}-{n}", fugo=fugo, items=ITEMS, issued=issued, expires=expires, key=network
            )
            bodies.append(query_body(permit))
        frames.append(
            frame_from(
                network,
                "ipnw",
                ImsMessageType.INFO_QUERY,
                b"".join(bodies),
                BATCH,
                f + 1,
                now.strftime("%Y%m%d%H%M%S"),
            )
        )
    daemon = start_daemon(path.parent)
    try:
        client = await connect(reactor, config.pki_dir, daemon.ports["ims-172014"], "ipnw")
        start = time.perf_counter()
        cpu = time.process_time()
        sent = 0
        for frame in frames[:WINDOW]:
            client.transport.write(frame)
            sent += 1
        for _ in range(len(frames)):
            [reply] = await client.take(1)
            assert reply.msg_type == ImsMessageType.QUERY_RESULT, reply.msg_type
            if sent < len(frames):
                client.transport.write(frames[sent])
                sent += 1
        elapsed = time.perf_counter() - start
        CLIENT_CPU[kind] = (time.process_time() - cpu) / elapsed
        client.transport.loseConnection()
    finally:
        daemon.stop()
    outcome = "provided" if kind == "answered" else "held"
    assert recorded(config, outcome) == n, f"{kind}: not every query was recorded"
    return n / elapsed


async def main(reactor: Any) -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    with tempfile.TemporaryDirectory() as tmp:
        answered = await run_kind(reactor, Path(tmp), "answered", total)
        held = await run_kind(reactor, Path(tmp), "held", total // 2)
    print(f"{'measure (daemon process, mTLS)':<34} {'queries/s':>10}")
    print(f"{'answered automatically':<34} {answered:>10.0f}")
    print(f"{'held (flagged person)':<34} {held:>10.0f}")
    print(f"{'ratio answered/held':<34} {answered / held:>10.2f}")
    for kind, share in CLIENT_CPU.items():
        print(f"{'client CPU share, ' + kind:<34} {share:>10.2f}")
    print(f"BENCH intermediate.answered_per_s={answered:.0f}")
    print(f"BENCH intermediate.held_per_s={held:.0f}")


if __name__ == "__main__":
    task.react(lambda r: defer.ensureDeferred(main(r)))
