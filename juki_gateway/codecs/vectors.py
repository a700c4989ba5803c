"""Golden test vectors: sample records encoded per layout and profile, written to tests/vectors/.

``python -m juki_gateway.protocols.vectors [DIR]`` (``make vectors``) rewrites them from the layout
tables, the samples in ``samples.py`` and the message catalogue it hands to :func:`write`;
``tests/test_vectors.py`` fails when they are stale.
Each vector is a pair: ``NAME.bin`` (the records back to back) and ``NAME.jsonl`` (one decoded
record per line, derived items included).

``tests/vectors/jukinet/`` holds one whole frame per message type of the Juki-net links (the
catalogue's ``jukinet``-profile types, base types included): ``NAME.bin`` is the frame (header,
then the records the samples give), ``NAME.jsonl`` its decoded header, then each decoded record
(bytes as hex). ``tests/test_message_vectors.py`` proves the links' encoder still writes these
bytes and their decoder reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from juki_gateway.codecs.frame import decode_header, encode_frame
from juki_gateway.codecs.messages import MessageSpec
from juki_gateway.codecs.record import RecordCodec, get_codec
from juki_gateway.codecs.samples import FRAME_SAMPLES, SAMPLERS

COUNT = 6
DEFAULT_DIR = Path("tests/vectors")
FRAME_DIR = "jukinet"
FRAME_TIMESTAMP = "20261126093000"
VECTORS: tuple[tuple[str, str], ...] = (
    ("honnin-kakunin", "jukinet"),
    ("honnin-kakunin", "intermediate"),
    ("soufusaki", "jukinet"),
    ("fukuhon-juminhyo", "intermediate"),
)


def _hex(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON")


def to_jsonl(records: list[dict[str, Any]]) -> str:
    """One JSON object per line, non-ASCII kept readable, keys in layout order, bytes as hex."""
    return "".join(json.dumps(r, ensure_ascii=False, default=_hex) + "\n" for r in records)


def vector_name(message_name: str) -> str:
    """The file stem of a message's frame vector (``UPDATE_NOTIFY`` → ``update-notify``)."""
    return message_name.lower().replace("_", "-")


def link_messages(catalogue: Mapping[int, MessageSpec]) -> list[tuple[int, str, RecordCodec | None]]:
    """(msg_type, name, body codec) of every type of ``catalogue`` the Juki-net links carry."""
    return [(int(t), spec.name, get_codec(spec.body_layout, spec.profile) if spec.body_layout else None)
            for t, spec in sorted(catalogue.items()) if spec.profile == FRAME_DIR]


def build_frames(catalogue: Mapping[int, MessageSpec]) -> dict[str, tuple[bytes, str]]:
    """vector name → (one whole frame, JSON lines of its header and records), per link message."""
    out: dict[str, tuple[bytes, str]] = {}
    for msg_type, name, codec in link_messages(catalogue):
        sample = FRAME_SAMPLES[name]
        records = [SAMPLERS[codec.layout.name](i) for i in range(sample.records)] if codec else []
        body = codec.encode_many(records) if codec else b""
        frame = encode_frame(msg_type, sample.sender, sample.receiver, body,
                             record_count=sample.records, request_no=sample.request_no,
                             seq=sample.seq, recovery_seq=sample.recovery_seq,
                             timestamp=FRAME_TIMESTAMP)
        header = decode_header(frame)
        decoded = codec.decode_many(body) if codec else []
        head = {k: getattr(header, k) for k in header.__dataclass_fields__ if k != "magic"}
        out[vector_name(name)] = (frame, to_jsonl([head, *decoded]))
    return out


def build() -> dict[str, tuple[bytes, str]]:
    """vector name → (binary records, JSON lines), from the tables and the samples."""
    out: dict[str, tuple[bytes, str]] = {}
    for layout, profile in VECTORS:
        codec = get_codec(layout, profile)
        data = codec.encode_many(SAMPLERS[layout](i) for i in range(COUNT))
        out[f"{layout}.{profile}"] = (data, to_jsonl(codec.decode_many(data)))
    return out


def build_all(catalogue: Mapping[int, MessageSpec]) -> dict[str, tuple[bytes, str]]:
    """Path stem under the vectors folder → (bytes, JSON lines): the records, then the frames."""
    return {**build(), **{f"{FRAME_DIR}/{name}": v for name, v in build_frames(catalogue).items()}}


def write(directory: Path, catalogue: Mapping[int, MessageSpec]) -> list[Path]:
    """Write every vector into ``directory``; returns the paths written."""
    paths: list[Path] = []
    for stem, (data, text) in build_all(catalogue).items():
        binary, lines = directory / f"{stem}.bin", directory / f"{stem}.jsonl"
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_bytes(data)
        lines.write_text(text, encoding="utf-8")
        paths += [binary, lines]
    return paths
