"""Signed frames of the intermediate server's links (R11): the trailer every frame carries.

Every frame on an intermediate-server link ends with a 64-byte ECDSA P-256 signature over
``FRAME_DOMAIN ‖ header ‖ body`` by the sender's certificate key (``docs/intermediate.md``).
Pure functions over bytes and keys: the server's session and the simulators both use them.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from juki_gateway.codecs.frame import Frame, encode_frame, encode_header
from juki_gateway.protocols.intermediate import crypto

#: The domain separator signed before every frame's header and body.
FRAME_DOMAIN = b"JKGW frame v1\x00"


def sign_frame(
    key: ec.EllipticCurvePrivateKey,
    msg_type: int,
    sender: str,
    receiver: str,
    body: bytes,
    *,
    record_count: int,
    request_no: int = 0,
    seq: int = 0,
    timestamp: str,
) -> bytes:
    """A whole frame with its signature trailer."""
    unsigned = encode_frame(
        msg_type,
        sender,
        receiver,
        body,
        record_count=record_count,
        request_no=request_no,
        seq=seq,
        timestamp=timestamp,
        trailer=bytes(crypto.SIGNATURE_LENGTH),
    )[: -crypto.SIGNATURE_LENGTH]
    return unsigned + crypto.sign(key, FRAME_DOMAIN, unsigned)


def frame_signature_valid(key: ec.EllipticCurvePublicKey, frame: Frame) -> bool:
    """Whether ``frame`` carries a valid trailer signature by ``key``."""
    if len(frame.trailer) != crypto.SIGNATURE_LENGTH:
        return False
    signed = encode_header(frame.header) + frame.body
    return crypto.verify(key, FRAME_DOMAIN, signed, frame.trailer)
