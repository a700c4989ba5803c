"""Golden vectors: the files match the tables, and every truncation or corruption is caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from juki_gateway.codecs import vectors
from juki_gateway.codecs.errors import CodecError, RecordLengthError
from juki_gateway.codecs.layouts import LAYOUTS
from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.textfields import (
    AsciiToken,
    Kana,
    Text,
)
from juki_gateway.protocols.catalogue import CATALOGUE

VECTOR_DIR = Path(__file__).parent / "vectors"
#: kinds where another value of the same alphabet is indistinguishable from the original
FREE_KINDS = (Text, Kana, AsciiToken)
BUILT = vectors.build()
NAMES = sorted(BUILT)
#: the record vectors and the Juki-net frames (``jukinet/NAME``)
ALL = vectors.build_all(CATALOGUE)


@pytest.mark.parametrize("name", sorted(ALL))
def test_vector_files_are_current(name: str) -> None:
    """The stored .bin and .jsonl (records, and tests/vectors/jukinet/ frames) equal what the
    tables, the message catalogue and the samples produce (run `make vectors` when not)."""
    data, text = ALL[name]
    assert (VECTOR_DIR / f"{name}.bin").read_bytes() == data
    assert (VECTOR_DIR / f"{name}.jsonl").read_text(encoding="utf-8") == text


@pytest.mark.parametrize("name", NAMES)
def test_vector_decodes_to_its_json(name: str) -> None:
    """Decoding the stored binary gives the stored JSON, and re-encoding the JSON gives the binary."""
    layout, profile = name.split(".")
    codec = get_codec(layout, profile)
    data = (VECTOR_DIR / f"{name}.bin").read_bytes()
    recs = [json.loads(line) for line in (VECTOR_DIR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(data) == len(recs) * codec.record_length
    assert codec.decode_many(data) == recs
    assert codec.encode_many(recs) == data


def test_vectors_hold_gaiji_and_foreign_residents() -> None:
    """The vectors include 髙, 﨑 and 𠮷 and foreign residents (法30条の45区分 set)."""
    text = (VECTOR_DIR / "soufusaki.jukinet.jsonl").read_text(encoding="utf-8")
    assert all(ch in text for ch in "髙﨑𠮷")
    assert '"foreign_resident_class": "1"' in text


@pytest.mark.parametrize("name", NAMES)
def test_every_truncation_is_an_error(name: str) -> None:
    """Every proper prefix of a golden record is refused with RecordLengthError."""
    layout, profile = name.split(".")
    codec = get_codec(layout, profile)
    record = BUILT[name][0][: codec.record_length]
    for n in range(codec.record_length):
        with pytest.raises(RecordLengthError):
            codec.decode(record[:n])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mask", [0xFF, 0x40])
def test_every_single_byte_corruption_is_caught(name: str, mask: int) -> None:
    """Every byte of every golden record XOR mask gives a CodecError, except documented free text.

    Free-form kinds may turn into another valid value: a double-byte text or kana field into
    another character, an ASCII id (操作者ID) into another letter or digit. That is accepted only
    when the decoded value of that very field differs and nothing else changed (the derived
    外字数/項目長/清音化かな cross-checks catch most text cases, not all).
    """
    layout, profile = name.split(".")
    codec = get_codec(layout, profile)
    lay = LAYOUTS[layout]
    n = codec.record_length
    data = BUILT[name][0]
    for start in range(0, len(data), n):
        record = data[start : start + n]
        original = codec.decode(record)
        for pos in range(n):
            bad = bytearray(record)
            bad[pos] ^= mask
            try:
                got = codec.decode(bytes(bad))
            except CodecError:
                continue
            idx = max(i for i, off in enumerate(lay.offsets) if off <= pos)
            field = lay.fields[idx]
            assert isinstance(field.kind, FREE_KINDS), f"{field.name} accepted corruption at {pos}"
            changed = {k for k in got if got[k] != original[k]}
            assert changed == {field.name}, (field.name, changed)
