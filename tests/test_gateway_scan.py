"""An external TLS scanner (sslyze, installed in .venv-tools by the Makefile) against every endpoint."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway_support import REPO, Daemon, make_workdir, start_daemon

pytestmark = pytest.mark.timeout(240)

AEAD_MARKERS = ("_GCM_", "CHACHA20_POLY1305", "_CCM")


def sslyze_path() -> Path:
    """The sslyze executable: $JUKI_SSLYZE, else .venv-tools/bin/sslyze (made by 'make tools')."""
    return Path(os.environ.get("JUKI_SSLYZE", REPO / ".venv-tools" / "bin" / "sslyze"))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon with the default four endpoints."""
    d = start_daemon(make_workdir(tmp_path_factory.mktemp("scan")))
    yield d
    d.stop()


def test_sslyze_finds_only_modern_aead_and_required_client_auth(daemon: Daemon, tmp_path: Path) -> None:
    """sslyze sees no SSLv2/3, TLS 1.0/1.1, no non-AEAD suite, and a required client cert on every endpoint."""
    exe = sslyze_path()
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run 'make tools' (the Makefile's test target does)")
    out = tmp_path / "scan.json"
    targets = [f"127.0.0.1:{port}" for port in daemon.ports.values()]
    proc = subprocess.run(
        [str(exe), f"--json_out={out}", "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2",
         "--tlsv1_3", *targets],
        capture_output=True, timeout=200,
    )
    assert out.exists(), proc.stdout.decode()[-2000:] + proc.stderr.decode()[-2000:]
    results = json.loads(out.read_text())["server_scan_results"]
    assert sorted(r["server_location"]["port"] for r in results) == sorted(daemon.ports.values())
    for r in results:
        where = r["server_location"]["port"]
        assert r["scan_status"] == "COMPLETED", where
        assert r["connectivity_result"]["client_auth_requirement"] == "REQUIRED", where
        scans = r["scan_result"]

        def accepted(key: str, scans: dict = scans, where: int = where) -> list[str]:
            entry = scans[key]
            assert entry["status"] == "COMPLETED", (where, key)
            return [c["cipher_suite"]["name"] for c in entry["result"]["accepted_cipher_suites"]]

        for old in ("ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites", "tls_1_0_cipher_suites",
                    "tls_1_1_cipher_suites"):
            assert accepted(old) == [], (where, old)
        tls12 = accepted("tls_1_2_cipher_suites")
        tls13 = accepted("tls_1_3_cipher_suites")
        assert tls12 and tls13, where
        for name in tls12 + tls13:
            assert any(m in name for m in AEAD_MARKERS), (where, name)
