"""The intermediate bodies as codec layouts: golden bytes, error mapping, fast = reference path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from juki_gateway.codecs.layouts import LAYOUTS
from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.reference import ReferenceCodec
from juki_gateway.protocols.intermediate.bodies import ImsBody
from juki_gateway.protocols.intermediate.errors import MalformedMessage
from juki_gateway.protocols.intermediate.items import ANSWER_ITEMS_LAYOUT
from juki_gateway.protocols.intermediate.messages import (
    FUGO_REQUEST_LAYOUT,
    FUGO_RESPONSE_LAYOUT,
    INFO_QUERY_LAYOUT,
    PERMIT_LAYOUT,
)

from .layout_samples import SAMPLES

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "intermediate"


def _body(name: str) -> ImsBody:
    import juki_gateway.protocols.intermediate.messages as m

    bodies = [v for v in vars(m).values() if isinstance(v, ImsBody)] + [ANSWER_ITEMS_LAYOUT]
    return next(b for b in bodies if b.name == name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_golden_bytes_round_trip(name: str) -> None:
    """Each layout encodes its sample to the committed bytes (the first engine's) and back."""
    data = (VECTORS / f"{name}.bin").read_bytes()
    body = _body(name)
    assert len(data) == body.length == LAYOUTS[name].record_length
    assert body.encode(SAMPLES[name]) == data
    assert body.decode(data) == SAMPLES[name]
    reference = ReferenceCodec(name, "intermediate")
    assert reference.encode(SAMPLES[name]) == data
    assert reference.decode(data) == SAMPLES[name]


def test_every_sample_layout_is_registered_with_the_codec() -> None:
    """Every intermediate body is a codec layout that get_codec runs (one layout mechanism)."""
    for name in SAMPLES:
        assert get_codec(name, "intermediate").layout is LAYOUTS[name]


@pytest.mark.parametrize(
    ("body", "values", "field"),
    [
        (INFO_QUERY_LAYOUT, {**SAMPLES["info-query"], "kouban": "1x3"}, "kouban"),
        (INFO_QUERY_LAYOUT, {**SAMPLES["info-query"], "permit": b"short"}, "permit"),
        (INFO_QUERY_LAYOUT, {**SAMPLES["info-query"], "items": "0120000000000000"}, "items"),
        (FUGO_RESPONSE_LAYOUT, {"atena_no": "172014000000003", "result_code": "6608"}, "fugo"),
        (FUGO_RESPONSE_LAYOUT, {"atena_no": "172014000000003", "result_code": "0000", "fugo": None,
                                "extra": "x"}, "extra"),
        (PERMIT_LAYOUT, {**SAMPLES["permit"], "expires": "20261131000000"}, "expires"),
        # 団体内統合宛名番号 is 15 digits in every layout (docs/wire-format.md): the old
        # 16-character alphanumeric form is refused
        (FUGO_REQUEST_LAYOUT, {"atena_no": "A000000000000001"}, "atena_no"),
        (FUGO_REQUEST_LAYOUT, {"atena_no": "1720140000000001"}, "atena_no"),
        (ANSWER_ITEMS_LAYOUT, {**SAMPLES["answer-items"], "zokugara": "子"}, "zokugara"),
        (ANSWER_ITEMS_LAYOUT, {**SAMPLES["answer-items"], "kokuseki": "ベトナム"}, "kokuseki"),
        (ANSWER_ITEMS_LAYOUT, {**SAMPLES["answer-items"], "setai_no": "0000001234567890"},
         "setai_no"),
    ],
)
def test_bad_values_are_malformed_messages_naming_the_field(
    body: ImsBody, values: dict[str, Any], field: str
) -> None:
    """A bad value is MalformedMessage (6601) naming the layout and field, never a crash."""
    if field == "fugo":  # a blank optional 符号 is fine; a missing required field is not
        body.encode(values)
        values = {k: v for k, v in values.items() if k != "result_code"}
        field = "result_code"
    with pytest.raises(MalformedMessage, match=f"layout {body.name}, field {field}") as info:
        body.encode(values)
    assert info.value.wire_code == 6601


@pytest.mark.parametrize(
    ("name", "offset", "byte", "field"),
    [
        ("permit", 64, ord("x"), "kouban"),
        ("permit", 133, ord("9"), "expires"),
        ("permit", 40, ord(" "), "requester"),
        ("info-query", 40, ord("2"), "items"),
        ("answer-items", 16, 0xD8, "shimei"),
        ("query-result", 48, ord("a"), "status"),
    ],
)
def test_corrupted_bytes_are_malformed_messages(name: str, offset: int, byte: int, field: str) -> None:
    """A corrupted byte is MalformedMessage naming the field and its offset."""
    data = bytearray((VECTORS / f"{name}.bin").read_bytes())
    data[offset] = byte
    with pytest.raises(MalformedMessage, match=f"field {field}, offset"):
        _body(name).decode(bytes(data))


def test_wrong_record_length_is_a_malformed_message() -> None:
    """A body that is not whole records is MalformedMessage, on decode and decode_many."""
    data = (VECTORS / "fugo-request.bin").read_bytes()
    body = _body("fugo-request")
    assert body.decode_many(data * 3) == [SAMPLES["fugo-request"]] * 3
    with pytest.raises(MalformedMessage):
        body.decode(data[:-1])
    with pytest.raises(MalformedMessage):
        body.decode_many(data * 2 + b"x")
