"""gateway.toml parsing, the dev PKI and the init/certs command line."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from cryptography import x509

from juki_gateway.certs.identity import IdentityError, PeerIdentity, identity_from_certificate
from juki_gateway.certs.pki import CertificateAuthority, PkiError
from juki_gateway.cli import main
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import AllowRule, default_topology, load_config, parse_config
from juki_gateway.gateway.tls import Authorizer
from juki_gateway.registry_store.retention import RetentionPolicy

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def test_default_topology_ports_and_store(tmp_path: Path) -> None:
    """init's topology puts endpoints on N+1..N+4, admin N+10, metrics N+20, store in the workdir."""
    cfg = parse_config(default_topology(7100), tmp_path / "gateway.toml")
    assert [(e.name, e.port) for e in cfg.endpoints] == [
        ("cs-172014", 7101), ("pref-17", 7102), ("kiko", 7103), ("ims-172014", 7104)]
    assert cfg.admin.port == 7110 and cfg.metrics.port == 7120
    assert cfg.store.url == f"sqlite:///{tmp_path.resolve()}/registry.sqlite3"
    assert all(e.host == "127.0.0.1" for e in cfg.endpoints)


def test_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    """A wrong type or unknown role in gateway.toml is reported clearly, not as a crash."""
    topo = default_topology(7100)
    topo["endpoints"][0]["port"] = "x"
    with pytest.raises(UsageError, match="port"):
        parse_config(topo, tmp_path / "g.toml")
    topo = default_topology(7100)
    topo["endpoints"][1]["allow"] = [{"role": "mayor"}]
    with pytest.raises(UsageError, match="unknown role"):
        parse_config(topo, tmp_path / "g.toml")


def test_retention_policy_from_the_file(tmp_path: Path) -> None:
    """[retention] sets the daily hour (JST) and the periods, 150 years accepted for 本人確認情報;
    an hour outside 0-23 or a period shorter than its rule's is refused naming the key."""
    topo = default_topology(7100)
    cfg = parse_config(topo, tmp_path / "g.toml")
    assert cfg.retention.enabled and cfg.retention.hour == 3
    assert cfg.retention.policy == RetentionPolicy(5, 7, 5, 7)
    assert list(cfg.stores()) == ["registry", "cs-172014", "kiko", "pref-17"]
    topo["retention"] = {"hour": 0, "honnin_kakunin_years": 150, "enabled": False}
    cfg = parse_config(topo, tmp_path / "g.toml")
    assert (cfg.retention.enabled, cfg.retention.hour) == (False, 0)
    assert cfg.retention.policy.honnin_kakunin_years == 150
    for key, value, says in [("hour", 24, "retention.hour: Expected `int` <= 23"),
                             ("audit_years", 6, "retention.audit_years: Expected `int` >= 7"),
                             ("honnin_kakunin_years", 151, "Expected `int` <= 150"),
                             ("provision_years", 7.5, "Expected `int`, got `float`"),
                             ("weekly", True, "Object contains unknown field `weekly`")]:
        topo["retention"] = {key: value}
        with pytest.raises(UsageError, match=re.escape(says)):
            parse_config(topo, tmp_path / "g.toml")


def test_authorizer_rules_are_data() -> None:
    """The allow-list decides: exact org, org prefix, any org; wrong role vs wrong org differ."""
    pref = Authorizer((AllowRule("municipal-cs", org_prefix="17"), AllowRule("kiko")))
    assert pref.check(PeerIdentity("cs-172031", "municipal-cs", "172031")) is None
    assert pref.check(PeerIdentity("cs-162019", "municipal-cs", "162019")) == "org_not_allowed"
    assert pref.check(PeerIdentity("kiko", "kiko", "jlis")) is None
    assert pref.check(PeerIdentity("ipnw", "ipnw", "ipnw")) == "role_not_allowed"


def test_certificate_carries_role_uri_and_operator_roles(tmp_path: Path) -> None:
    """Issued certs name role/org in the SAN URI; operators carry their sub-roles too."""
    ca = CertificateAuthority.create(tmp_path, NOW)
    cert, _ = ca.issue(PeerIdentity("op-carol", "operator", "172014", ("auditor",)), NOW)
    ident = identity_from_certificate(cert)
    assert (ident.role, ident.org, ident.operator_roles) == ("operator", "172014", ("auditor",))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "urn:juki:role:operator:172014" in san.get_values_for_type(x509.UniformResourceIdentifier)
    with pytest.raises(IdentityError):
        ca.issue(PeerIdentity("x", "mayor", "1"), NOW)


def test_revoke_lists_serial_in_crl(tmp_path: Path) -> None:
    """Revoking a certificate puts its serial in the rewritten CRL."""
    ca = CertificateAuthority.create(tmp_path, NOW)
    cert, _ = ca.issue(PeerIdentity("ipnw", "ipnw", "ipnw"), NOW)
    ca.revoke("ipnw", NOW)
    crl = x509.load_pem_x509_crl((tmp_path / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert crl.is_signature_valid(ca.cert.public_key())  # type: ignore[arg-type]
    with pytest.raises(PkiError):
        ca.revoke("nobody", NOW)


def test_init_is_idempotent_and_certs_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """init twice keeps keys; certs list/show/issue/revoke/crl work on the result."""
    wd = tmp_path / "wd"
    assert main(["init", str(wd), "--port-base", "20000"]) == 0
    key_before = (wd / "pki" / "kizon-172014.key").read_bytes()
    assert main(["init", str(wd)]) == 0
    assert (wd / "pki" / "kizon-172014.key").read_bytes() == key_before
    assert load_config(wd / "gateway.toml").endpoint("kiko").port == 20003
    for name in ("cs-172014", "pref-17", "kiko", "ims-172014", "kizon-172014", "renkei-172014",
                 "ipnw", "cs-172031", "cs-162019", "op-alice", "op-bob", "op-carol"):
        assert (wd / "pki" / f"{name}.pem").exists() and (wd / "pki" / f"{name}.key").exists()
    cfg = ["--config", str(wd / "gateway.toml")]
    capsys.readouterr()
    assert main(["certs", "issue", "cs-172065", "--role", "municipal-cs", "--org", "172065", *cfg]) == 0
    assert main(["certs", "issue", "cs-172065", "--role", "municipal-cs", "--org", "172065", *cfg]) == 1
    assert main(["certs", "revoke", "cs-172065", *cfg]) == 0
    assert main(["certs", "crl", *cfg]) == 0
    assert main(["certs", "show", "op-alice", *cfg]) == 0
    assert main(["certs", "list", *cfg]) == 0
    out = capsys.readouterr().out
    assert "urn:juki:role:operator:172014" in out and "urn:juki:operator-role:reviewer" in out
    assert any(line.startswith("cs-172065") and line.rstrip().endswith("revoked")
               for line in out.splitlines())
    assert main(["certs", "list", "--config", str(tmp_path / "none.toml")]) == 2


def test_serve_with_missing_key_fails_in_one_line(tmp_path: Path) -> None:
    """serve reports a missing endpoint key as one error line and a non-zero exit, no traceback."""
    import subprocess
    import sys

    wd = tmp_path / "wd"
    assert main(["init", str(wd)]) == 0
    (wd / "pki" / "kiko.key").unlink()
    proc = subprocess.run([sys.executable, "-m", "juki_gateway", "serve", "--config",
                           str(wd / "gateway.toml")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "error [tls_config]" in proc.stderr and "kiko.key" in proc.stderr
    assert "Traceback" not in proc.stderr
