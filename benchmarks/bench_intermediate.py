"""``make bench-intermediate``: auto-answered and held queries per second over mutual TLS.

Full path per query: frame signature check, permit signature check, expiry, replay, provider,
permission list, 符号, flag read, 副本 read, sealing to the requester, the signed result frame and
a provision record committed before the result is sent. The ipnw client pipelines frames of
``BATCH`` queries with ``WINDOW`` frames in flight; permits are signed before timing starts.
Prints a table and ``BENCH`` lines; never fails on speed.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import defer, task

from juki_gateway.gateway.config import load_config
from juki_gateway.intermediate.daemon import make_gateway
from juki_gateway.intermediate.service import IntermediateService, OperatorIdentity
from juki_gateway.protocols.intermediate.messages import ImsMessageType
from juki_gateway.protocols.intermediate.permission_list import PermissionEntry
from juki_gateway.registry_store.models import FugoMap
from tests.intermediate.conftest import fukuhon_record
from tests.intermediate.helpers import REQUESTER, make_list, make_permit
from tests.intermediate.mtls import connect, frame_from, make_workdir, private_key
from tests.intermediate.test_service import query_body

BATCH = 100
WINDOW = 8
PEOPLE = 2000
OP = OperatorIdentity("op-alice", frozenset({"flag-operator"}))


async def run_kind(reactor, work: Path, kind: str, total: int) -> float:
    config = load_config(make_workdir(work / kind, dt.datetime.now(dt.UTC) - dt.timedelta(days=1)))
    pki = config.pki_dir
    network = private_key(pki, "ipnw")
    gateway = make_gateway(config, reactor)
    svc: IntermediateService = gateway.ims
    engine = svc.engine
    items = frozenset({"shimei", "jusho", "seinengappi"})
    svc.offer_permission_list(
        make_list(1, [PermissionEntry(REQUESTER, 1, items)], key=network).to_bytes()
    )
    people = [(f"A{i:015d}", f"{i:032x}") for i in range(PEOPLE)]
    body = b""
    with engine.begin() as conn:  # bulk 符号 registration for set-up speed
        conn.execute(
            FugoMap.__table__.insert(),
            [{"fugo": f, "atena_no": a, "created_at": dt.datetime(2026, 1, 1)} for a, f in people],
        )
    svc.start()
    for atena, _ in people:
        body += fukuhon_record(atena)
    svc.import_fukuhon(body)
    if kind == "held":
        for atena, _ in people[:50]:
            svc.flag_request_set(OP, atena, (), "01", "20991231")
    now = dt.datetime.fromtimestamp(reactor.seconds(), dt.UTC)
    issued = (now - dt.timedelta(minutes=5)).strftime("%Y%m%d%H%M%S")
    expires = (now + dt.timedelta(hours=1)).strftime("%Y%m%d%H%M%S")
    pool = people[:50] if kind == "held" else people[50:]
    frames = []
    n = 0
    for f in range(total // BATCH):
        bodies = []
        for _ in range(BATCH):
            atena, fugo = pool[n % len(pool)]
            n += 1
            bodies.append(
                query_body(
                    make_permit(
                        f"{kind}-{n}",
                        fugo=fugo,
                        items=items,
                        issued=issued,
                        expires=expires,
                        key=network,
                    )
                )
            )
        frames.append(
            frame_from(
                network,
                "ipnw",
                ImsMessageType.INFO_QUERY,
                b"".join(bodies),
                BATCH,
                f + 1,
                "20261126120000",
            )
        )
    gateway.startService()
    await gateway.whenListening()
    client = await connect(reactor, pki, gateway.listeners["ims-172014"].bound_port(), "ipnw")
    start = time.perf_counter()
    sent = 0
    for i in range(min(WINDOW, len(frames))):
        client.transport.write(frames[i])
        sent += 1
    done = 0
    while done < len(frames):
        await client.take(1)
        done += 1
        if sent < len(frames):
            client.transport.write(frames[sent])
            sent += 1
    elapsed = time.perf_counter() - start
    client.transport.loseConnection()
    await gateway.stopService()
    engine.dispose()
    counts = svc._counts
    expected = "answered" if kind == "answered" else "held"
    got = sum(v for k, v in counts.items() if str(k) == expected)
    assert got == n, (kind, counts)
    return n / elapsed


async def main(reactor) -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        answered = await run_kind(reactor, work, "answered", total)
        held = await run_kind(reactor, work, "held", total // 2)
    print(f"{'measure':<32} {'queries/s':>10}")
    print(f"{'answered (full checks, mTLS)':<32} {answered:>10.0f}")
    print(f"{'held (flagged person, mTLS)':<32} {held:>10.0f}")
    print(f"{'ratio answered/held':<32} {answered / held:>10.2f}")
    print(f"BENCH intermediate.answered_per_s={answered:.0f}")
    print(f"BENCH intermediate.held_per_s={held:.0f}")


if __name__ == "__main__":
    task.react(lambda r: defer.ensureDeferred(main(r)))
