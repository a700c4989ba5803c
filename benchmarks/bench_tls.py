"""``make bench-tls``: the gateway's mTLS handshake rate and framed throughput, side by side.

In one run, on one machine, against the same certificates:

1. ``openssl s_time -new`` with a client certificate (kizon-172014) against
   (a) the gateway's CS endpoint (``juki-gateway serve``, handshake log and metrics on), and
   (b) ``openssl s_server`` with the CS certificate, requiring a client certificate and checking
   the same CA and CRL;
2. PING/PONG frames pipelined over one mutual-TLS connection against
   (a) the gateway's CS endpoint and
   (b) an asyncio + stdlib ``ssl`` server using the same codec functions
   (``benchmarks/asyncio_frame_server.py``).

Fairness: both handshake servers offer the same parameters as the gateway's production
context: TLS 1.3, key exchange on P-256/P-384 (``GATEWAY_GROUPS``; the client is told the same
through an ``OPENSSL_CONF`` so that it sends a P-256 key share at once), no session tickets
(s_server ``-num_tickets 0``; the gateway issues none), and s_server's per-certificate verify
chatter on stderr is switched off (``-verify_quiet``). A probe with ``openssl s_client`` checks
that both sides negotiate the same version, cipher and group before any timing, and stops the
run if they differ.

Robustness on a shared machine: each pair is measured in alternating rounds (the side that
goes first alternates too); the reported ratio is the *median of the per-round ratios*, with
their minimum and maximum as the spread. Each side's server CPU time per handshake (from
``/proc``) is printed as well, since it depends much less on the machine's load than rates.
Prints a table and ``BENCH`` lines; never fails on speed.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from juki_gateway.codecs.frame import HEADER_LENGTH, encode_frame
from juki_gateway.codecs.messages import MessageType
from juki_gateway.gateway.tls import GATEWAY_GROUPS
from tests.gateway_support import Daemon, make_workdir, start_daemon

ROUNDS = int(os.environ.get("BENCH_TLS_ROUNDS", "10"))
HANDSHAKE_SECONDS = int(os.environ.get("BENCH_TLS_SECONDS", "2"))
FRAME_ROUNDS = int(os.environ.get("BENCH_TLS_FRAME_ROUNDS", "3"))
FRAME_SECONDS = float(os.environ.get("BENCH_TLS_FRAME_SECONDS", "2.5"))
BATCH = 256
TS = "20261126120000"
CLK_TCK = os.sysconf("SC_CLK_TCK")

#: The OpenSSL command-line tools' client side offers the gateway's groups (s_time has no
#: ``-groups`` option; without this it would send an X25519 key share and get a retry).
OPENSSL_CNF = f"""openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Groups = {GATEWAY_GROUPS}
"""


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def s_time(port: int, pki: Path, seconds: int, env: dict[str, str]) -> tuple[float, int]:
    """Handshakes per wall-clock second with ``openssl s_time -new`` (wall time measured here,
    since s_time reports whole seconds only), and the number of handshakes."""
    start = time.perf_counter()
    out = subprocess.run(
        ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds),
         "-cert", str(pki / "kizon-172014.pem"), "-key", str(pki / "kizon-172014.key"),
         "-CAfile", str(pki / "ca.pem")],
        capture_output=True, text=True, timeout=seconds + 30, env=env,
    ).stdout
    elapsed = time.perf_counter() - start
    m = re.search(r"(\d+) connections in (\d+) real seconds", out)
    if not m:
        raise RuntimeError(f"unexpected s_time output: {out[-500:]}")
    return int(m.group(1)) / elapsed, int(m.group(1))


def negotiated(port: int, pki: Path, env: dict[str, str]) -> tuple[str, str, str]:
    """(version, cipher, group) that ``openssl s_client`` negotiates with kizon-172014's cert."""
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief",
         "-cert", str(pki / "kizon-172014.pem"), "-key", str(pki / "kizon-172014.key"),
         "-CAfile", str(pki / "ca.pem")],
        input="", capture_output=True, text=True, timeout=30, env=env,
    )
    text = out.stdout + out.stderr

    def field(pattern: str) -> str:
        m = re.search(pattern, text)
        return m.group(1).strip() if m else "?"

    group = field(r"(?:Server Temp Key|Negotiated TLS1\.3 group):\s*([^\n]+)")
    return field(r"Protocol version:\s*(\S+)"), field(r"Ciphersuite:\s*(\S+)"), group


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


def alternate(
    rounds: int, gateway: Callable[[], float], reference: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """Measure both sides ``rounds`` times, alternating which one goes first."""
    gw: list[float] = []
    ref: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            gw.append(gateway())
            ref.append(reference())
        else:
            ref.append(reference())
            gw.append(gateway())
    return gw, ref


def ratio_summary(gw: list[float], ref: list[float]) -> tuple[float, float, float]:
    """Median, minimum and maximum of the per-round ratios gateway/reference."""
    ratios = [g / r for g, r in zip(gw, ref, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def main() -> int:
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        workdir = make_workdir(Path(tmp), log_flush_delay=None)  # production log buffering
        pki = workdir / "pki"
        cnf = Path(tmp) / "openssl-bench.cnf"
        cnf.write_text(OPENSSL_CNF)
        env = dict(os.environ, OPENSSL_CONF=str(cnf))
        daemon: Daemon = start_daemon(workdir)
        s_port = free_port()
        s_server = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"127.0.0.1:{s_port}", "-quiet", "-verify_quiet",
             "-num_tickets", "0", "-groups", GATEWAY_GROUPS,
             "-cert", str(pki / "cs-172014.pem"), "-key", str(pki / "cs-172014.key"),
             "-CAfile", str(pki / "ca.pem"), "-Verify", "1",
             "-CRL", str(pki / "crl.pem"), "-crl_check"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
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
            params_gw = negotiated(gw_port, pki, env)
            params_ossl = negotiated(s_port, pki, env)
            if params_gw != params_ossl or "?" in params_gw:
                raise RuntimeError(f"unequal TLS parameters: gateway {params_gw}, s_server {params_ossl}")
            cpu = {"gw": [0.0, 0], "ossl": [0.0, 0]}

            def timed(side: str, pid: int, port: int) -> Callable[[], float]:
                def run() -> float:
                    before = cpu_seconds(pid)
                    rate, count = s_time(port, pki, HANDSHAKE_SECONDS, env)
                    cpu[side][0] += cpu_seconds(pid) - before
                    cpu[side][1] += count
                    return rate
                return run

            hs_gw, hs_ossl = alternate(
                ROUNDS, timed("gw", daemon.proc.pid, gw_port), timed("ossl", s_server.pid, s_port)
            )
            fr_gw, fr_ref = alternate(
                FRAME_ROUNDS,
                lambda: frame_rate(gw_port, pki, FRAME_SECONDS),
                lambda: frame_rate(ref_port, pki, FRAME_SECONDS),
            )
        finally:
            for proc in (s_server, ref):
                proc.terminate()
                proc.wait(timeout=10)
            daemon.stop()
    hs_med, hs_lo, hs_hi = ratio_summary(hs_gw, hs_ossl)
    fr_med, fr_lo, fr_hi = ratio_summary(fr_gw, fr_ref)
    cpu_gw = 1000.0 * cpu["gw"][0] / max(1, int(cpu["gw"][1]))
    cpu_ossl = 1000.0 * cpu["ossl"][0] / max(1, int(cpu["ossl"][1]))
    med = statistics.median
    rows = [
        ("measure (median of rounds)", "gateway", "reference", "ratio [min..max of rounds]"),
        ("mTLS handshakes/s (s_time -new)", f"{med(hs_gw):.0f}", f"{med(hs_ossl):.0f} (s_server)",
         f"{hs_med:.2f} [{hs_lo:.2f}..{hs_hi:.2f}]"),
        ("server CPU ms per handshake", f"{cpu_gw:.2f}", f"{cpu_ossl:.2f} (s_server)",
         f"{cpu_ossl / cpu_gw:.2f} (s_server/gateway)" if cpu_gw else "-"),
        ("PING/PONG frames/s (1 conn)", f"{med(fr_gw):.0f}", f"{med(fr_ref):.0f} (asyncio+ssl)",
         f"{fr_med:.2f} [{fr_lo:.2f}..{fr_hi:.2f}]"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    print(f"negotiated (both): {' '.join(params_gw)}; no session tickets; same CA and CRL")
    print(f"handshake rounds={ROUNDS} x {HANDSHAKE_SECONDS}s per side, frame rounds={FRAME_ROUNDS} x "
          f"{FRAME_SECONDS}s, alternating; ratio = median of per-round ratios; "
          f"wall={time.perf_counter() - wall:.0f}s")
    print(f"rounds: gw_hs={[round(x) for x in hs_gw]} ossl_hs={[round(x) for x in hs_ossl]} "
          f"gw_fr={[round(x) for x in fr_gw]} ref_fr={[round(x) for x in fr_ref]}")
    print(f"BENCH tls.handshake.gateway_per_s={med(hs_gw):.1f}")
    print(f"BENCH tls.handshake.openssl_per_s={med(hs_ossl):.1f}")
    print(f"BENCH tls.handshake.vs_openssl={hs_med:.3f}")
    print(f"BENCH tls.handshake.vs_openssl_min={hs_lo:.3f}")
    print(f"BENCH tls.handshake.vs_openssl_max={hs_hi:.3f}")
    print(f"BENCH tls.handshake.gateway_cpu_ms={cpu_gw:.3f}")
    print(f"BENCH tls.handshake.openssl_cpu_ms={cpu_ossl:.3f}")
    print(f"BENCH tls.frames.gateway_per_s={med(fr_gw):.1f}")
    print(f"BENCH tls.frames.asyncio_per_s={med(fr_ref):.1f}")
    print(f"BENCH tls.frames.vs_asyncio={fr_med:.3f}")
    print(f"BENCH tls.frames.vs_asyncio_min={fr_lo:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
