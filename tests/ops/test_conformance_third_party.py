"""docs/conformance.md followed by a third party: its own key, a CSR signed with ``certs sign``,
the suite against the project's running daemon, and the daemon's own links untouched after.
Also: a target that cannot be tested (closed port, plain TCP) is an ERROR, never a pass."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.gateway_support import Daemon

from .fixtures import chain_daemon, cli

pytestmark = pytest.mark.timeout(300)



@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """The daemon with its own Juki-net chain (CS → prefecture → 機構 over real links)."""
    yield from chain_daemon(tmp_path_factory, "conf")


def third_party_identity(d: Daemon, team: Path, name: str, role: str, org: str) -> tuple[Path, Path]:
    """What docs/conformance.md tells a team to do: make its own key and CSR (here with the
    ``cryptography`` library), have the operator sign it with ``certs sign``; key never leaves."""
    team.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    key_path, csr_path, cert_path = team / f"{name}.key", team / f"{name}.csr", team / f"{name}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).sign(key, hashes.SHA256())
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    signed = cli("certs", "sign", str(csr_path), "--role", role, "--org", org, "--out",
                 str(cert_path), "--config", str(d.workdir / "gateway.toml"))
    assert signed.returncode == 0, signed.stderr
    return cert_path, key_path


def conformance(d: Daemon, role: str, endpoint: str, cert: Path, key: Path, junit: Path,
                *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    import xml.etree.ElementTree as ET

    proc = cli("conformance", "--role", role, "--target", f"127.0.0.1:{d.ports[endpoint]}",
               "--ca", str(d.workdir / "pki" / "ca.pem"), "--cert", str(cert), "--key", str(key),
               "--pki", str(d.workdir / "pki"), "--junit", str(junit), *extra)
    cases = {}
    for c in ET.parse(junit).getroot().iter("testcase"):
        status = next((t for t in ("failure", "error", "skipped") if c.find(t) is not None), "pass")
        cases[c.get("name", "").split(":")[0]] = status
    return proc, cases


def health(d: Daemon) -> tuple[int, str]:
    url = d.metrics_url.rsplit("/", 1)[0] + "/health"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def links_still_carry_updates(d: Daemon, tmp_path: Path) -> dict[str, bool]:
    """A short moving-season run through the daemon's own chain: its invariants (nothing lost
    or duplicated, everything reached 機構 exactly once) need the real links' numbering intact."""
    metrics = int(d.metrics_url.rsplit(":", 1)[1].split("/", 1)[0])
    out = tmp_path / "after.json"
    proc = cli("simulate", "moving-season", "--config", str(d.workdir / "gateway.toml"),
               "--duration", "2", "--no-progress", "--json", str(out),
               *[f"--endpoint={n}={p}" for n, p in d.ports.items()], f"--endpoint=metrics={metrics}",
               timeout=150)
    assert out.exists(), proc.stdout + proc.stderr
    return {i["name"]: i["held"] for i in json.loads(out.read_text())["invariants"]}


SEQUENCED = {"R4-frame-body-length", "R4-in-order", "R4-duplicate", "R4-gap"}


def test_a_third_party_follows_the_guide_and_every_case_passes(served: Daemon, tmp_path: Path) -> None:
    """Fresh conformance identities from CSRs, the suite against the CS, the prefecture and 機構:
    every case passes (the one not applicable to 機構's peers skips, saying why); the daemon's
    own links are healthy afterwards and still carry updates to 機構 exactly once."""
    team = tmp_path / "team"
    # the CS: as a conformance existing system of the CS's own 市町村
    cert, key = third_party_identity(served, team, "conf-172014", "kizon-juki", "172014")
    proc, cases = conformance(served, "municipal-cs", "cs-172014", cert, key, tmp_path / "cs.xml")
    assert proc.returncode == 0 and set(cases.values()) == {"pass"}, proc.stdout
    assert SEQUENCED <= set(cases) and "R1-accepted-peer" == next(iter(cases))
    # the prefecture: as a test 市町村 of the prefecture, which no real CS link uses
    cert, key = third_party_identity(served, team, "conf-172031", "municipal-cs", "172031")
    proc, cases = conformance(served, "prefecture", "pref-17", cert, key, tmp_path / "pf.xml")
    assert proc.returncode == 0 and set(cases.values()) == {"pass"}, proc.stdout
    assert SEQUENCED | {"R3-too-broad", "R3-narrow"} <= set(cases)
    # 機構: as a conformance prefecture, sending records of its test 市町村
    cert, key = third_party_identity(served, team, "conf-pref-17", "prefecture", "17")
    proc, cases = conformance(served, "kiko", "kiko", cert, key, tmp_path / "kiko.xml",
                              "--municipality", "172031")
    assert proc.returncode == 0, proc.stdout
    assert {k for k, v in cases.items() if v != "pass"} == {"R2-wrong-organisation"}, proc.stdout
    assert "no organisation rule applies to peers of role prefecture" in proc.stdout
    assert SEQUENCED <= set(cases)
    # the daemon's own links: up, and still numbering correctly
    status, body = health(served)
    assert status == 200, body
    held = links_still_carry_updates(served, tmp_path)
    assert all(held.values()), held


def test_a_real_peers_identity_never_sends_sequenced_updates(served: Daemon, tmp_path: Path) -> None:
    """Run as cs-172014 (the prefecture's real CS, the identity that broke its link): the
    sequenced cases skip, saying why, the others pass, and the link stays healthy."""
    pki = served.workdir / "pki"
    proc, cases = conformance(served, "prefecture", "pref-17", pki / "cs-172014.pem",
                              pki / "cs-172014.key", tmp_path / "real.xml")
    assert proc.returncode == 0, proc.stdout
    assert {k for k, v in cases.items() if v == "skipped"} == SEQUENCED, proc.stdout
    assert "would take cs-172014's 更新順番号" in proc.stdout
    status, body = health(served)
    assert status == 200, body
    held = links_still_carry_updates(served, tmp_path)
    assert all(held.values()), held


# -- targets that cannot be tested ---------------------------------------------------------------


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@pytest.fixture
def plain_tcp() -> Iterator[tuple[int, int]]:
    """Two plain-TCP listeners: one that answers every connection with a line of text, one that
    accepts and says nothing."""
    servers = []
    stop = threading.Event()

    def serve(sock: socket.socket, answer: bytes | None) -> None:
        sock.settimeout(0.2)
        conns = []
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            if answer is not None:
                conn.sendall(answer)
            conns.append(conn)
        for c in conns:
            c.close()
        sock.close()

    ports = []
    for answer in (b"220 hello, this is not TLS\r\n", None):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        ports.append(int(sock.getsockname()[1]))
        t = threading.Thread(target=serve, args=(sock, answer), daemon=True)
        t.start()
        servers.append(t)
    yield ports[0], ports[1]
    stop.set()
    for t in servers:
        t.join(timeout=5)


def test_unreachable_and_non_tls_targets_are_errors_not_passes(
        served: Daemon, tmp_path: Path, plain_tcp: tuple[int, int]) -> None:
    """A closed port, a plain-TCP listener that talks and one that stays silent: the suite stops
    at R1-accepted-peer with an ERROR, no refusal case passes, and the exit status is 1."""
    pki = served.workdir / "pki"
    talker, silent = plain_tcp
    for port, says in ((_closed_port(), "is the target running?"),
                       (talker, "is it a TLS endpoint?"), (silent, "is it a TLS endpoint?")):
        junit = tmp_path / f"{port}.xml"
        proc = cli("conformance", "--role", "prefecture", "--target", f"127.0.0.1:{port}",
                   "--ca", str(pki / "ca.pem"), "--cert", str(pki / "cs-172031.pem"),
                   "--key", str(pki / "cs-172031.key"), "--pki", str(pki), "--timeout", "2",
                   "--junit", str(junit), timeout=60)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "PASS" not in proc.stdout and "ERROR R1-accepted-peer" in proc.stdout, proc.stdout
        assert says in proc.stdout, proc.stdout
        assert "0 passed, 0 failed, 0 skipped, 1 error" in proc.stdout
        assert 'errors="1"' in junit.read_text()
