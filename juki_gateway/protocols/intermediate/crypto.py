"""Signatures and encryption of the intermediate server (R11), pure functions over keys.

* Signatures: ECDSA P-256 with SHA-256, carried as 64 raw bytes (r ‖ s, 32 bytes each), so every
  signed record has a fixed length. What is signed is always a domain-separation tag followed by
  the record's canonical bytes (its fixed-width wire encoding without the signature).
* Encryption to a requester: RFC 9180 HPKE, base mode, single-shot, suite
  DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM (ids 0x0010 / 0x0001 / 0x0002), by
  ``cryptography``'s HPKE module. The sealed box is ``enc ‖ ciphertext ‖ tag``: ``enc`` is the
  encapsulated key, the sender's ephemeral P-256 public key uncompressed (65 bytes), and the tag
  is the AES-GCM tag (16 bytes). The single-shot interface has no associated data, so what binds
  a box to its context goes into HPKE's ``info`` (RFC 9180 §8.1); the caller gives it (for an
  answer, :func:`juki_gateway.protocols.intermediate.answer.answer_info`). Every box has its own
  ephemeral key, so any HPKE implementation opens it with the recipient's private key and ``info``.

Keys are loaded once by the caller and passed in; nothing here reads files.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from juki_gateway.protocols.intermediate.errors import IntermediateError

SIGNATURE_LENGTH = 64
PUBLIC_KEY_LENGTH = 65
#: HPKE's ``enc`` for DHKEM(P-256): the ephemeral public key, uncompressed (RFC 9180 §7.1.1)
ENC_LENGTH = PUBLIC_KEY_LENGTH
TAG_LENGTH = 16
SEAL_OVERHEAD = ENC_LENGTH + TAG_LENGTH
#: The HPKE suite's registered identifiers (RFC 9180 §7): KEM, KDF, AEAD.
HPKE_KEM_ID = 0x0010  # DHKEM(P-256, HKDF-SHA256)
HPKE_KDF_ID = 0x0001  # HKDF-SHA256
HPKE_AEAD_ID = 0x0002  # AES-256-GCM
HPKE_SUITE = Suite(KEM.P256, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
_CURVE = ec.SECP256R1()
_ECDSA = ec.ECDSA(hashes.SHA256())


class DecryptionFailed(IntermediateError):
    """A sealed box could not be opened (wrong key, tampered or truncated)."""

    code = "ims_decryption_failed"
    wire_code = 6604


def sign(key: ec.EllipticCurvePrivateKey, domain: bytes, data: bytes) -> bytes:
    """The 64-byte raw ECDSA P-256 signature of ``domain ‖ data``."""
    der = key.sign(domain + data, _ECDSA)
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(key: ec.EllipticCurvePublicKey, domain: bytes, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid raw signature of ``domain ‖ data`` by ``key``."""
    if len(signature) != SIGNATURE_LENGTH:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r and 0 < s):
        return False
    try:
        key.verify(encode_dss_signature(r, s), domain + data, _ECDSA)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    """The 65-byte uncompressed encoding of a P-256 public key."""
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def load_public_key(data: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from its 65-byte uncompressed encoding (invalid points refused)."""
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, data)
    except ValueError:
        raise IntermediateError("not a valid P-256 public key") from None


def seal(recipient: ec.EllipticCurvePublicKey, plaintext: bytes, info: bytes) -> bytes:
    """HPKE base-mode single-shot encryption of ``plaintext`` to ``recipient`` under ``info``:
    the box ``enc (65) ‖ ciphertext ‖ tag (16)``, with a fresh ephemeral key every call."""
    return HPKE_SUITE.encrypt(plaintext, recipient, info=info)


def open_sealed(recipient: ec.EllipticCurvePrivateKey, box: bytes, info: bytes) -> bytes:
    """Decrypt a box made by :func:`seal` with the same ``info``; raises
    :class:`DecryptionFailed` (wrong key or info, tampered, truncated or not HPKE)."""
    if len(box) < SEAL_OVERHEAD:
        raise DecryptionFailed("sealed box too short")
    try:
        return HPKE_SUITE.decrypt(box, recipient, info=info)
    except (InvalidTag, ValueError):
        raise DecryptionFailed("sealed box does not open with this key and info") from None


def random_id(nbytes: int = 16) -> str:
    """A random hexadecimal identifier (for permit and held-query ids in simulators)."""
    return os.urandom(nbytes).hex()
