"""Signatures and encryption of the intermediate server (R11), pure functions over keys.

* Signatures: ECDSA P-256 with SHA-256, carried as 64 raw bytes (r ‖ s, 32 bytes each), so every
  signed record has a fixed length. What is signed is always a domain-separation tag followed by
  the record's canonical bytes (its fixed-width wire encoding without the signature).
* Encryption to a requester: ECDH P-256 with a fresh ephemeral key, HKDF-SHA256 and AES-256-GCM
  (the construction of HPKE's base mode, written out because the pinned ``cryptography`` range
  includes versions without the HPKE module). The sealed box is ``ephemeral public key (65 bytes,
  uncompressed) ‖ ciphertext ‖ tag (16)``; the key derivation binds the ephemeral and recipient
  public keys, and the caller's associated data binds the box to its permit.

Keys are loaded once by the caller and passed in; nothing here reads files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from juki_gateway.protocols.intermediate.errors import IntermediateError

SIGNATURE_LENGTH = 64
PUBLIC_KEY_LENGTH = 65
TAG_LENGTH = 16
SEAL_OVERHEAD = PUBLIC_KEY_LENGTH + TAG_LENGTH
_CURVE = ec.SECP256R1()
_ECDSA = ec.ECDSA(hashes.SHA256())
_HKDF_INFO = b"juki-gateway intermediate answer v1"


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


def _derive(shared: bytes, enc: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=enc + recipient, info=_HKDF_INFO).derive(
        shared
    )


def _nonce(enc: bytes, aad: bytes) -> bytes:
    return hashlib.sha256(enc + b"\x00" + aad).digest()[:12]


class SealContext:
    """One ephemeral key agreement with a recipient, sealing several boxes (HPKE multi-shot).

    Every box carries the same ephemeral public key; its nonce is derived from that key and the
    box's associated data, which callers make unique per box (it holds the permit id), so no
    nonce repeats under one key. A context is used for one batch and then dropped.
    """

    __slots__ = ("_aead", "_enc")

    def __init__(
        self,
        recipient: ec.EllipticCurvePublicKey,
        *,
        ephemeral_factory: Callable[[], ec.EllipticCurvePrivateKey] | None = None,
    ) -> None:
        eph = ephemeral_factory() if ephemeral_factory else ec.generate_private_key(_CURVE)
        self._enc = public_key_bytes(eph.public_key())
        key = _derive(eph.exchange(ec.ECDH(), recipient), self._enc, public_key_bytes(recipient))
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """The box ``enc ‖ ciphertext ‖ tag`` (``aad`` must be unique within this context)."""
        return self._enc + self._aead.encrypt(_nonce(self._enc, aad), plaintext, aad)


def seal(
    recipient: ec.EllipticCurvePublicKey,
    plaintext: bytes,
    aad: bytes,
    *,
    ephemeral_factory: Callable[[], ec.EllipticCurvePrivateKey] | None = None,
) -> bytes:
    """Encrypt ``plaintext`` to ``recipient`` with a fresh ephemeral key."""
    return SealContext(recipient, ephemeral_factory=ephemeral_factory).seal(plaintext, aad)


def open_sealed(recipient: ec.EllipticCurvePrivateKey, box: bytes, aad: bytes) -> bytes:
    """Decrypt a box made by :func:`seal`; raises :class:`DecryptionFailed`."""
    if len(box) < SEAL_OVERHEAD:
        raise DecryptionFailed("sealed box too short")
    enc = box[:PUBLIC_KEY_LENGTH]
    try:
        eph_pub = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, enc)
    except ValueError:
        raise DecryptionFailed("sealed box has an invalid ephemeral key") from None
    shared = recipient.exchange(ec.ECDH(), eph_pub)
    key = _derive(shared, enc, public_key_bytes(recipient.public_key()))
    try:
        return AESGCM(key).decrypt(_nonce(enc, aad), box[PUBLIC_KEY_LENGTH:], aad)
    except InvalidTag:
        raise DecryptionFailed("sealed box does not authenticate") from None


def random_id(nbytes: int = 16) -> str:
    """A random hexadecimal identifier (for permit and held-query ids in simulators)."""
    return os.urandom(nbytes).hex()
