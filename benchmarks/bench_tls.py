"""``make bench-tls``: the gateway's mTLS handshake rate and framed throughput, side by side.

In one run, on one machine, against the same certificates:

1. ``openssl s_time -new`` with a client certificate (kizon-172014) against
   (a) the gateway's CS endpoint (``juki-gateway serve``, handshake log and metrics on), and
   (b) ``openssl s_server`` requiring a client certificate and checking the same CRL;
2. PING/PONG frames pipelined over one mutual-TLS connection against
   (a) the gateway's CS endpoint and
   (b) an asyncio + stdlib ``ssl`` server using the same codec functions
   (``benchmarks/asyncio_frame_server.py``).

Each pair is measured alternately (``ROUNDS`` times) and the best of each side is compared.
Prints a table and ``BENCH`` lines; never fails on speed.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from juki_gateway.codecs.frame import HEADER_LENGTH, encode_frame
from juki_gateway.codecs.messages import MessageType
from tests.gateway_support import Daemon, make_workdir, start_daemon

ROUNDS = int(os.environ.get("BENCH_TLS_ROUNDS", "2"))
HANDSHAKE_SECONDS = int(os.environ.get("BENCH_TLS_SECONDS", "5"))
FRAME_SECONDS = float(os.environ.get("BENCH_TLS_FRAME_SECONDS", "4"))
BATCH = 256
TS = "20261126120000"


def free_port() -> int:
    """An ephemeral loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def s_time(port: int, pki: Path, seconds: int) -> float:
    """Handshakes per wall-clock second with ``openssl s_time -new`` (wall time measured here,
    since s_time reports whole seconds only)."""
    start = time.perf_counter()
    out = subprocess.run(
        ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds),
         "-cert", str(pki / "kizon-172014.pem"), "-key", str(pki / "kizon-172014.key"),
         "-CAfile", str(pki / "ca.pem")],
        capture_output=True, text=True, timeout=seconds + 30,
    ).stdout
    elapsed = time.perf_counter() - start
    m = re.search(r"(\d+) connections in (\d+) real seconds", out)
    if not m:
        raise RuntimeError(f"unexpected s_time output: {out[-500:]}")
    return int(m.group(1)) / elapsed


def frame_rate(port: int, pki: Path, seconds: float) -> float:
    """PING→PONG frames per second over one mTLS connection, two batches in flight."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki / "ca.pem")
    ctx.load_cert_chain(pki / "kizon-172014.pem", pki / "kizon-172014.key")
    ctx.check_hostname = False
    batch = encode_frame(MessageType.PING, "kizon-172014", "cs-172014", timestamp=TS) * BATCH
    want = HEADER_LENGTH * BATCH
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as tls:
        tls.sendall(batch)
        got = 0
        frames = 0
        start = time.perf_counter()
        tls.sendall(batch)
        while True:
            chunk = tls.recv(1 << 20)
            if not chunk:
                raise RuntimeError("server closed the connection")
            got += len(chunk)
            while got >= want:
                got -= want
                frames += BATCH
                if time.perf_counter() - start < seconds:
                    tls.sendall(batch)
            if time.perf_counter() - start >= seconds and got == 0:
                break
        # one batch is still in flight (sent before the window closed); drain it
        elapsed = time.perf_counter() - start
    return frames / elapsed


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        workdir = make_workdir(Path(tmp))
        pki = workdir / "pki"
        daemon: Daemon = start_daemon(workdir)
        s_port = free_port()
        s_server = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"127.0.0.1:{s_port}", "-quiet",
             "-cert", str(pki / "cs-172014.pem"), "-key", str(pki / "cs-172014.key"),
             "-CAfile", str(pki / "ca.pem"), "-Verify", "1",
             "-CRL", str(pki / "crl.pem"), "-crl_check"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        ref = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.asyncio_frame_server", str(pki)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert ref.stdout is not None
            ref_port = int(ref.stdout.readline().split(":")[1])
            wait_port(s_port)
            gw_port = daemon.ports["cs-172014"]
            hs_gw: list[float] = []
            hs_ossl: list[float] = []
            fr_gw: list[float] = []
            fr_ref: list[float] = []
            for _ in range(ROUNDS):
                hs_gw.append(s_time(gw_port, pki, HANDSHAKE_SECONDS))
                hs_ossl.append(s_time(s_port, pki, HANDSHAKE_SECONDS))
                fr_gw.append(frame_rate(gw_port, pki, FRAME_SECONDS))
                fr_ref.append(frame_rate(ref_port, pki, FRAME_SECONDS))
        finally:
            for proc in (s_server, ref):
                proc.terminate()
                proc.wait(timeout=10)
            daemon.stop()
    hs_ratio = max(hs_gw) / max(hs_ossl)
    fr_ratio = max(fr_gw) / max(fr_ref)
    rows = [
        ("measure", "gateway", "reference", "ratio"),
        ("mTLS handshakes/s (s_time -new)", f"{max(hs_gw):.0f}", f"{max(hs_ossl):.0f} (s_server)",
         f"{hs_ratio:.2f}"),
        ("PING/PONG frames/s (1 conn)", f"{max(fr_gw):.0f}", f"{max(fr_ref):.0f} (asyncio+ssl)",
         f"{fr_ratio:.2f}"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    print(f"rounds={ROUNDS} handshake_s={HANDSHAKE_SECONDS} frame_s={FRAME_SECONDS} "
          f"all: gw_hs={[round(x) for x in hs_gw]} ossl_hs={[round(x) for x in hs_ossl]} "
          f"gw_fr={[round(x) for x in fr_gw]} ref_fr={[round(x) for x in fr_ref]}")
    print(f"BENCH tls.handshake.gateway_per_s={max(hs_gw):.1f}")
    print(f"BENCH tls.handshake.openssl_per_s={max(hs_ossl):.1f}")
    print(f"BENCH tls.handshake.vs_openssl={hs_ratio:.3f}")
    print(f"BENCH tls.frames.gateway_per_s={max(fr_gw):.1f}")
    print(f"BENCH tls.frames.asyncio_per_s={max(fr_ref):.1f}")
    print(f"BENCH tls.frames.vs_asyncio={fr_ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
