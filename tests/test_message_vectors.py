"""Golden Juki-net frames: the links' encoder writes them byte for byte, their decoder reads them back.

(That the stored files are what ``make vectors`` builds is checked in ``test_vectors.py``.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from juki_gateway.codecs import vectors
from juki_gateway.codecs.frame import Frame, FrameDecoder, encode_frame
from juki_gateway.codecs.messages import MessageType, decode_error, encode_error
from juki_gateway.codecs.samples import FRAME_SAMPLES, SAMPLERS
from juki_gateway.protocols.catalogue import CATALOGUE
from juki_gateway.protocols.jukinet.layouts import decode_bodies, encode_body
from juki_gateway.protocols.jukinet.messages import BY_TYPE, JukinetMessage, record_lengths

FRAME_DIR = Path(__file__).parent / "vectors" / vectors.FRAME_DIR
NAMES = sorted(vectors.build_frames(CATALOGUE))
ERROR_BODIES = (MessageType.ERROR, MessageType.NACK)


def _stored(name: str) -> tuple[bytes, dict[str, Any], list[dict[str, Any]]]:
    lines = (FRAME_DIR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    head, *records = (json.loads(line) for line in lines)
    return (FRAME_DIR / f"{name}.bin").read_bytes(), head, records


def _as_json(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in vectors.to_jsonl(records).splitlines()]


def test_every_link_message_type_has_a_vector() -> None:
    """Each Juki-net message type and each base frame type has its own frame vector on disk."""
    expected = {vectors.vector_name(t.name) for t in (*MessageType, *JukinetMessage)}
    assert expected == set(NAMES)
    assert {p.stem for p in FRAME_DIR.glob("*.bin")} == expected


@pytest.mark.parametrize("name", NAMES)
def test_link_encoder_writes_the_stored_bytes(name: str) -> None:
    """The body encoders the links call, framed as a node frames them, give the stored bytes."""
    data, head, _records = _stored(name)
    msg_type = head["msg_type"]
    kind = MessageType if msg_type in set(MessageType) else JukinetMessage
    sample = FRAME_SAMPLES[kind(msg_type).name]
    if msg_type in ERROR_BODIES:
        bodies = [encode_error(r["error_code"], r["error_name"], r["detail"])
                  for r in map(SAMPLERS["error"], range(sample.records))]
    else:
        layout = BY_TYPE[msg_type].layout if msg_type in BY_TYPE else None
        bodies = [] if layout is None else [
            encode_body(layout, SAMPLERS[layout.name](i)) for i in range(sample.records)]
    frame = encode_frame(msg_type, sample.sender, sample.receiver, b"".join(bodies),
                         record_count=len(bodies), request_no=sample.request_no, seq=sample.seq,
                         recovery_seq=sample.recovery_seq, timestamp=head["timestamp"])
    assert frame == data


@pytest.mark.parametrize("name", NAMES)
def test_link_decoder_reads_the_stored_frame(name: str) -> None:
    """The links' frame decoder, fed the stored bytes in pieces, gives back the stored header and records."""
    data, head, records = _stored(name)
    decoder = FrameDecoder(record_lengths())
    for start in range(0, len(data), 37):
        decoder.receive_data(data[start:start + 37])
    frame = decoder.next_event()
    assert isinstance(frame, Frame) and decoder.next_event() is None and decoder.buffered() == 0
    got_head = {k: getattr(frame.header, k) for k in head}
    assert got_head == head and frame.header.magic == b"JKGW"
    if frame.msg_type in ERROR_BODIES:
        code, err_name, detail = decode_error(frame.body)
        decoded = [{"error_code": code, "error_name": err_name, "detail": detail}]
    else:
        layout = BY_TYPE[frame.msg_type].layout if frame.msg_type in BY_TYPE else None
        decoded = [] if layout is None else decode_bodies(layout, frame.body)
    assert len(decoded) == frame.header.record_count
    assert _as_json(decoded) == records
