"""Multi-process store behaviour: SIGKILL mid-batch loses nothing acknowledged; scale-out claims."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, select

from juki_gateway.registry_store.models import (
    HonninKakunin,
    HonninKakuninHistory,
    InboxEntry,
    OutboxMessage,
    table_of,
)
from juki_gateway.registry_store.queues import enqueue

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 4, 1, 9, 0, 0)


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.store_workers", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_sigkill_mid_batch_keeps_every_ack_and_no_partial_message(
    store_engine: Engine, store_url: str
) -> None:
    """After SIGKILL, every acknowledged message is present and each message is whole or absent."""
    proc = _spawn("crash", store_url)
    acked: set[int] = set()
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while len(acked) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.add(int(line.split()[1]))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(acked) >= 300, proc.stderr.read() if proc.stderr else ""
    with store_engine.begin() as conn:
        inbox = {r.seq for r in conn.execute(select(table_of(InboxEntry)))}
        history = [r.seq for r in conn.execute(select(table_of(HonninKakuninHistory)))]
        outbox = [int(r.frame) for r in conn.execute(select(table_of(OutboxMessage)))]
        current = {r.juminhyo_code: r.seq for r in conn.execute(select(table_of(HonninKakunin)))}
    assert acked <= inbox
    # No half-applied message: each one's writes are all there, or none is. Every applied
    # version is either a resident's current row or a superseded (history) row.
    assert sorted(history + list(current.values())) == sorted(inbox) == sorted(outbox)
    # The current row of each resident is its newest applied version.
    assert max(current.values()) == max(inbox)


def test_two_instances_send_each_outbox_row_once_and_share_the_inbox(
    store_engine: Engine, store_url: str
) -> None:
    """Two processes claiming one link send every row exactly once; each inbox seq applies once."""
    with store_engine.begin() as conn:
        for _ in range(120):
            enqueue(conn, "L", 1, b"frame", NOW)
    procs = [_spawn("claim", store_url, f"w{i}") for i in (1, 2)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.split("\n"))
    sent = [[int(x.split()[1]) for x in out if x.startswith("SENT")] for out in outputs]
    applied = [{int(x.split()[1]) for x in out if x.startswith("APPLIED")} for out in outputs]
    everything = sent[0] + sent[1]
    assert sorted(everything) == list(range(1, 121))  # each sent exactly once
    assert applied[0].isdisjoint(applied[1])
    assert applied[0] | applied[1] == set(range(1, 61))
    with store_engine.begin() as conn:
        o = table_of(OutboxMessage)
        assert {r.state for r in conn.execute(select(o.c.state))} == {"sent"}
