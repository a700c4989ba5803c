"""Sealed answers are standard RFC 9180 HPKE: an independent implementation (pyhpke) opens them.

Everything the requester side does here is built from ``docs/intermediate.md`` alone (section
"Answers" and the `answer-info` layout), never from the server's own helpers: that is what a
third party implementing a requester has.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey, OpenError

from juki_gateway.gateway.intermediate.service import IntermediateService
from juki_gateway.protocols.intermediate import crypto
from juki_gateway.protocols.intermediate.answer import (
    QueryResult,
    answer_plaintext,
    decode_query_result,
    open_answer,
    query_result_body,
)
from juki_gateway.protocols.intermediate.decision import Reason
from juki_gateway.protocols.intermediate.items import ANSWER_ITEMS_LAYOUT
from juki_gateway.protocols.intermediate.messages import QueryStatus

from .helpers import FUKUHON, PROVIDER, REQUESTER, REQUESTER_KEY, make_permit
from .test_service import query_body, setup_person

DOC = (Path(__file__).resolve().parents[2] / "docs" / "intermediate.md").read_text(encoding="utf-8")
SUITE = CipherSuite.new(KEMId.DHKEM_P256_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)


def doc_info(permit_id: str, provider: str, requester: str) -> bytes:
    """HPKE info as docs/intermediate.md "## Answers" (layout `answer-info`) states it: the 15
    bytes "JKGW answer v2" + 0x00, then permit id (32), provider (16), requester (16), ASCII,
    left-aligned, space-padded."""
    return (
        b"JKGW answer v2\x00"
        + permit_id.encode("ascii").ljust(32, b" ")
        + provider.encode("ascii").ljust(16, b" ")
        + requester.encode("ascii").ljust(16, b" ")
    )


def pyhpke_open(box: bytes, key: ec.EllipticCurvePrivateKey, info: bytes) -> bytes:
    """Open a box as the docs say: enc = the first 65 bytes, ct = the rest, OpenBase."""
    recipient = SUITE.create_recipient_context(
        box[:65], KEMKey.from_pyca_cryptography_key(key), info=info
    )
    return bytes(recipient.open(box[65:]))


def served_answer(service: IntermediateService, permit_id: str = "p-hpke") -> QueryResult:
    """One answer produced by the service's real query path."""
    setup_person(service)
    permit = make_permit(permit_id, items=("shimei", "jusho"))
    result = decode_query_result(service.handle_queries([query_body(permit)])[0])
    assert result.status is QueryStatus.ANSWERED and result.sealed is not None
    return result


def test_the_docs_name_the_suite_and_the_info_bytes() -> None:
    """The code's suite ids are RFC 9180's for P-256/HKDF-SHA256/AES-256-GCM, and the docs state
    them and the info's domain bytes."""
    assert (crypto.HPKE_KEM_ID, crypto.HPKE_KDF_ID, crypto.HPKE_AEAD_ID) == (
        KEMId.DHKEM_P256_HKDF_SHA256.value,
        KDFId.HKDF_SHA256.value,
        AEADId.AES256_GCM.value,
    )
    section = DOC.split("## Answers")[1].split("## The query decision")[0]
    for text in ("KEM 0x0010", "KDF 0x0001", "AEAD 0x0002", "base mode",
                 b"JKGW answer v2\x00".hex(), "`answer-info`"):
        assert text in section, text


def test_a_served_answer_opens_with_an_independent_hpke_implementation(
    service: IntermediateService,
) -> None:
    """pyhpke opens an answer of the real query path with the docs' info; it holds exactly the
    permitted items."""
    result = served_answer(service)
    box = result.sealed
    assert box is not None and len(box) == 65 + ANSWER_ITEMS_LAYOUT.length + 16
    assert box[0] == 0x04  # enc: an uncompressed P-256 point
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), box[:65])
    plain = pyhpke_open(box, REQUESTER_KEY, doc_info(result.permit_id, PROVIDER, REQUESTER))
    values = ANSWER_ITEMS_LAYOUT.decode(plain)
    assert {k: v for k, v in values.items() if v is not None} == {
        "shimei": FUKUHON["shimei"],
        "jusho": FUKUHON["jusho"],
    }


def test_an_answer_opens_under_its_own_permit_and_parties_only(
    service: IntermediateService,
) -> None:
    """The box opens with its own info only: another permit id, provider or requester in the
    info (with pyhpke), or a result relabelled with another permit id, does not open."""
    result = served_answer(service, "p-own")
    box = result.sealed
    assert box is not None
    assert pyhpke_open(box, REQUESTER_KEY, doc_info("p-own", PROVIDER, REQUESTER))
    for other in (
        doc_info("p-other", PROVIDER, REQUESTER),
        doc_info("p-own", "ims-131016", REQUESTER),
        doc_info("p-own", PROVIDER, "mhlw-000002"),
    ):
        with pytest.raises(OpenError):
            pyhpke_open(box, REQUESTER_KEY, other)
    with pytest.raises(crypto.DecryptionFailed):
        open_answer(replace(result, permit_id="p-other"), REQUESTER_KEY, PROVIDER)


def _former_seal(recipient: ec.EllipticCurvePublicKey, plaintext: bytes, aad: bytes) -> bytes:
    """The construction answers were sealed with before HPKE (ECDH, HKDF, a derived nonce)."""
    eph = ec.generate_private_key(ec.SECP256R1())
    enc = eph.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    rcpt = recipient.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=enc + rcpt,
               info=b"juki-gateway intermediate answer v1").derive(
        eph.exchange(ec.ECDH(), recipient))
    nonce = hashlib.sha256(enc + b"\x00" + aad).digest()[:12]
    return enc + AESGCM(key).encrypt(nonce, plaintext, aad)


def test_a_box_of_the_former_construction_no_longer_opens() -> None:
    """An answer sealed the pre-HPKE way (same length, same key) is refused as undecryptable."""
    permit = make_permit("p-old")
    aad = b"\x00".join((b"JKGW answer v1\x00", b"p-old", PROVIDER.encode(), REQUESTER.encode()))
    old = _former_seal(REQUESTER_KEY.public_key(), answer_plaintext(FUKUHON, permit.items), aad)
    result = decode_query_result(
        query_result_body(permit, QueryStatus.ANSWERED, Reason.ANSWERED, old)
    )
    with pytest.raises(crypto.DecryptionFailed):
        open_answer(result, REQUESTER_KEY, PROVIDER)
