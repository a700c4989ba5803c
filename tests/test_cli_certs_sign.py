"""``certs sign CSR``: a third party keeps its own key; the dev CA certifies the identity named."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from juki_gateway.certs.identity import identity_from_certificate
from juki_gateway.cli import main


def _csr(key: ec.EllipticCurvePrivateKey, cn: str, *, san: str | None = None) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    if san is not None:  # a request for more than it should get: ignored by the CA
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier(san)]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    wd = tmp_path / "wd"
    assert main(["init", str(wd), "--port-base", "20100"]) == 0
    return wd


def test_sign_certifies_the_requesters_key_for_the_identity_named(
        workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The certificate carries the CSR's key and the role/org given on the command line (not
    what the CSR asked for), chains to the CA, is indexed, and can be revoked."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = tmp_path / "third.csr"
    csr.write_bytes(_csr(key, "conformance-172031", san="urn:juki:role:kiko:kiko"))
    cfg = ["--config", str(workdir / "gateway.toml")]
    out = tmp_path / "third.pem"
    capsys.readouterr()
    assert main(["certs", "sign", str(csr), "--role", "municipal-cs", "--org", "172031",
                 "--out", str(out), *cfg]) == 0
    assert "signed conformance-172031" in capsys.readouterr().out
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    ident = identity_from_certificate(cert)
    assert (ident.name, ident.role, ident.org) == ("conformance-172031", "municipal-cs", "172031")
    ca = x509.load_pem_x509_certificate((workdir / "pki" / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert not (workdir / "pki" / "conformance-172031.key").exists()  # the key stays theirs
    # a second request for the same name needs --force; it is listed, and revocable
    assert main(["certs", "sign", str(csr), "--role", "municipal-cs", "--org", "172031", *cfg]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["certs", "revoke", "conformance-172031", *cfg]) == 0
    assert main(["certs", "list", *cfg]) == 0
    assert any(line.startswith("conformance-172031") and line.rstrip().endswith("revoked")
               for line in capsys.readouterr().out.splitlines())


def test_sign_accepts_a_real_openssl_request(workdir: Path, tmp_path: Path) -> None:
    """A key and CSR made by ``openssl req`` (an RSA key, as many teams have) sign, with --name."""
    key, csr = tmp_path / "t.key", tmp_path / "t.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(csr), "-subj", "/CN=ignored"], check=True, capture_output=True,
                   timeout=60)
    assert main(["certs", "sign", str(csr), "--name", "conformance-kizon", "--role", "kizon-juki",
                 "--org", "172014", "--config", str(workdir / "gateway.toml")]) == 0
    text = subprocess.run(["openssl", "x509", "-in", str(workdir / "pki" / "conformance-kizon.pem"),
                           "-noout", "-text"], check=True, capture_output=True, text=True,
                          timeout=30).stdout
    assert "CN = conformance-kizon" in text and "urn:juki:role:kizon-juki:172014" in text
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(workdir / "pki" / "ca.pem"),
                             str(workdir / "pki" / "conformance-kizon.pem")],
                            capture_output=True, text=True, timeout=30)
    assert verify.returncode == 0, verify.stderr


def test_sign_refuses_a_tampered_request_and_a_bad_role(
        workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CSR whose signature does not verify is refused (exit 1); an unknown role is a usage error."""
    key = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    good = x509.load_pem_x509_csr(_csr(key, "x"))
    # the request's body with another key's signature
    forged = x509.CertificateSigningRequestBuilder().subject_name(good.subject).sign(
        other, hashes.SHA256())
    der = bytearray(forged.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0xFF  # break the signature
    bad = tmp_path / "bad.csr"
    bad.write_bytes(b"-----BEGIN CERTIFICATE REQUEST-----\n"
                    + __import__("base64").encodebytes(bytes(der))
                    + b"-----END CERTIFICATE REQUEST-----\n")
    cfg = ["--config", str(workdir / "gateway.toml")]
    capsys.readouterr()
    assert main(["certs", "sign", str(bad), "--name", "t", "--role", "kizon-juki", "--org",
                 "172014", *cfg]) == 1
    err = capsys.readouterr().err
    assert "CSR" in err or "signing request" in err
    assert not (workdir / "pki" / "t.pem").exists()
    with pytest.raises(SystemExit) as exc:
        main(["certs", "sign", str(bad), "--role", "wizard", "--org", "1", *cfg])
    assert exc.value.code == 2
