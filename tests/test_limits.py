"""Resource bounds of a live daemon (docs/sequencing.md, "The frame channel"): a peer that never
reads its replies, many connections from one peer each declaring a maximal frame, and
pipelined frames keep the daemon's resident memory within a documented bound, and other peers
are still served. The daemon is a real ``juki-gateway serve`` process; its RSS is read from
``/proc``."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from juki_gateway.codecs.frame import HEADER_LENGTH, encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M
from tests.gateway_support import (
    TS,
    Daemon,
    attempt,
    client_context,
    decode_frames,
    make_workdir,
    start_daemon,
)

pytestmark = pytest.mark.timeout(180)

#: What these attacks may add to the daemon's resident memory (MiB): 8 connections × one
#: 6.1 MB frame being received, plus TLS and socket buffers.
RSS_BOUND_MB = 80


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One daemon with the default topology and the default per-peer cap (8)."""
    d = start_daemon(make_workdir(tmp_path_factory.mktemp("limits")))
    yield d
    d.stop()


def rss_mb(daemon: Daemon) -> float:
    """The daemon's resident set size in MiB."""
    for line in Path(f"/proc/{daemon.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def connect(daemon: Daemon, name: str, server: str) -> ssl.SSLSocket:
    ctx = client_context(daemon.workdir / "pki", name)
    raw = socket.create_connection(("127.0.0.1", daemon.ports[server]), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=server)


def still_served(daemon: Daemon) -> None:
    got = attempt(daemon.ports["pref-17"], daemon.workdir / "pki", "cs-172014", "pref-17")
    assert got.error is None and [f.msg_type for f in decode_frames(got.data)] == [MessageType.PONG]


def test_a_peer_that_never_reads_is_throttled_not_buffered(daemon: Daemon) -> None:
    """400,000 PINGs from a peer that never reads its PONGs: the daemon stops reading from it
    once its replies back up, so its memory stays bounded and other peers are served."""
    before = rss_mb(daemon)
    tls = connect(daemon, "pref-17", "cs-172014")  # (its throttled connection lingers until idle)
    ping = encode_frame(MessageType.PING, "pref-17", "cs-172014", timestamp=TS)
    burst = ping * 1000
    tls.settimeout(2.0)
    sent = 0
    deadline = time.monotonic() + 30
    try:
        while sent < 400_000 and time.monotonic() < deadline:
            tls.sendall(burst)
            sent += 1000
    except TimeoutError:
        pass  # the daemon stopped reading: TCP pushes back on us
    grown = rss_mb(daemon) - before
    still_served(daemon)
    tls.close()
    print(f"\nunread PINGs: {sent} written before the daemon stopped reading; RSS +{grown:.1f} MiB")
    assert sent < 400_000, "the daemon read every PING while its PONGs were not read"
    assert grown < RSS_BOUND_MB, f"RSS grew by {grown:.1f} MiB for {sent} unread PINGs"


def test_connections_per_peer_are_capped_and_maximal_frames_stay_bounded(daemon: Daemon) -> None:
    """40 connections from one peer, each declaring a maximal 送付先 frame (3,000 records,
    6.1 MB) and sending all but its last byte: 8 are served, the others get ERROR 3003 and
    are closed; memory stays within the bound; other peers are served."""
    before = rss_mb(daemon)
    size = 3000 * 2029
    header = encode_frame(M.SOUFUSAKI_BATCH, "kizon-172014", "cs-172014", b"\0" * size,
                          record_count=3000, seq=1, timestamp=TS)[:HEADER_LENGTH]
    conns: list[ssl.SSLSocket] = []
    refused = 0
    try:
        for _ in range(40):
            tls = connect(daemon, "kizon-172014", "cs-172014")
            tls.settimeout(10)
            tls.sendall(encode_frame(MessageType.PING, "kizon-172014", "cs-172014", timestamp=TS))
            data = tls.recv(4096)
            frames = decode_frames(data)
            if frames[0].msg_type == MessageType.ERROR:
                refused += 1
                tls.close()
                continue
            assert frames[0].msg_type == MessageType.PONG
            tls.sendall(header + b"\0" * (size - 1))
            conns.append(tls)
        time.sleep(1.0)
        grown = rss_mb(daemon) - before
        still_served(daemon)
    finally:
        for tls in conns:
            tls.close()
    print(f"\n40 maximal frames from one peer: {len(conns)} served, {refused} refused; "
          f"RSS +{grown:.1f} MiB")
    assert len(conns) == 8 and refused == 32
    assert grown < RSS_BOUND_MB, f"RSS grew by {grown:.1f} MiB"


def test_a_thousand_pipelined_frames_are_answered_in_order(daemon: Daemon) -> None:
    """1,000 PINGs written at once get 1,000 PONGs, with the daemon's memory bounded."""
    before = rss_mb(daemon)
    tls = connect(daemon, "kizon-172014", "cs-172014")
    ping = encode_frame(MessageType.PING, "kizon-172014", "cs-172014", timestamp=TS)
    tls.sendall(ping * 1000)
    pong_len = len(encode_frame(MessageType.PONG, "cs-172014", "kizon-172014", timestamp=TS))
    data = b""
    tls.settimeout(10)
    while len(data) < 1000 * pong_len:
        chunk = tls.recv(65536)
        if not chunk:
            break
        data += chunk
    tls.close()
    assert [f.msg_type for f in decode_frames(data)] == [MessageType.PONG] * 1000
    grown = rss_mb(daemon) - before
    print(f"\n1,000 pipelined PINGs: RSS +{grown:.1f} MiB")
    assert grown < RSS_BOUND_MB
