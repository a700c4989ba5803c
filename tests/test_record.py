"""Record layouts and the fast codec: tables, round trips, check digits, 外字 and derived items."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from juki_gateway.codecs.checkdigits import CHECK_SCHEMES, JUMINHYO_CODE, KOJIN_BANGO, LG_CODE
from juki_gateway.codecs.errors import (
    BadCheckDigit,
    BadDate,
    BadPadding,
    BadText,
    CodecError,
    DerivedMismatch,
    MissingField,
    RecordLengthError,
    UnknownCode,
    UnknownField,
    UnknownLayout,
    ValueTooLong,
)
from juki_gateway.codecs.gaiji import INTERMEDIATE, JIS_X0208, JUKINET, SUBSTITUTES
from juki_gateway.codecs.kana import seion_kana
from juki_gateway.codecs.layouts import LAYOUTS, RECORD_LAYOUTS
from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.samples import SAMPLERS
from tests.strategies import records

PROFILES = ("jukinet", "intermediate")


def test_item_counts_match_the_seed() -> None:
    """本人確認情報 has 36 items and 送付先情報 59, numbered 1..n in order, as in 別添2."""
    assert len(LAYOUTS["honnin-kakunin"].fields) == 36
    assert len(LAYOUTS["soufusaki"].fields) == 59
    for layout in LAYOUTS.values():
        assert [f.no for f in layout.fields] == list(range(1, len(layout.fields) + 1))


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_offsets_contiguous_and_widths_sum(name: str) -> None:
    """Offsets are contiguous from 0 and the widths sum to the record length the struct packs."""
    layout = LAYOUTS[name]
    pos = 0
    for f, off in zip(layout.fields, layout.offsets, strict=True):
        assert off == pos
        pos += f.width
    assert pos == layout.record_length == get_codec(name).struct.size


@pytest.mark.parametrize(
    ("scheme", "examples"),
    [
        (KOJIN_BANGO, ["123456789018", "983205673214", "023456789013"]),
        (JUMINHYO_CODE, ["24727059608", "24846016224", "25208017643"]),
        (LG_CODE, ["172014", "131016", "011002", "131041", "131130"]),
    ],
)
def test_check_digit_examples_from_the_brief(scheme: object, examples: list[str]) -> None:
    """The brief's valid examples pass, and changing the last digit makes each invalid."""
    assert scheme in CHECK_SCHEMES.values()
    for code in examples:
        assert scheme.is_valid(code)  # type: ignore[attr-defined]
        bad = code[:-1] + str((int(code[-1]) + 1) % 10)
        assert not scheme.is_valid(bad)  # type: ignore[attr-defined]


def test_substitution_table_maps_gaiji_to_jis_x0208() -> None:
    """Every substitute is in JIS X 0208 and every substituted character is a Juki-net 外字."""
    for src, dst in SUBSTITUTES.items():
        assert JUKINET.is_gaiji(src) and dst in JIS_X0208


def test_gaiji_depend_on_profile() -> None:
    """髙 and 𠮷 are 外字 on both links, 﨑 only on Juki-net (it is in JIS X 0213)."""
    assert JUKINET.gaiji_count("髙橋﨑子𠮷田") == 3
    assert INTERMEDIATE.gaiji_count("髙橋﨑子𠮷田") == 2
    assert JUKINET.substitute("髙橋﨑子𠮷田") == ("高橋崎子吉田", [1, 3, 5], 0)
    assert JUKINET.substitute("鷗外") == ("鷗外", [], 1)  # no substitute: kept, counted


def test_seion_kana() -> None:
    """清音化かな drops voicing marks and enlarges small kana."""
    assert seion_kana("ガッコウ・ヴァイオリン・パン") == "カツコウ・ウアイオリン・ハン"


def test_sample_derived_items() -> None:
    """A resident named 髙橋 﨑子 gets 外字数 2, the 外字フラグ, substitutes and their positions."""
    rec = get_codec("soufusaki").decode(get_codec("soufusaki").encode(SAMPLERS["soufusaki"](0)))
    assert rec["kanji_name_gaiji_count"] == 2 and rec["gaiji_flag"] == "1"
    assert rec["substitute_name"] == "高橋\u3000崎子" and rec["substitute_name_positions"] == [1, 4]
    assert rec["substitute_result"] == "1" and rec["kanji_name_length"] == 10
    assert rec["gaiji_pattern"] == "010000010"


def test_unsubstitutable_gaiji_is_kept_and_flagged() -> None:
    """A 外字 without substitute stays in the 代替文字 text and sets 代替文字変換結果 to 2."""
    rec = dict(SAMPLERS["soufusaki"](1), kanji_name="森\u3000鷗外")
    out = get_codec("soufusaki").decode(get_codec("soufusaki").encode(rec))
    assert out["substitute_name"] == "森\u3000鷗外" and out["substitute_result"] == "2"
    assert out["kanji_name_gaiji_count"] == 1 and out["substitute_name_positions"] == []


@pytest.mark.parametrize("layout", RECORD_LAYOUTS)
@pytest.mark.parametrize("profile", PROFILES)
def test_round_trip_every_layout(layout: str, profile: str) -> None:
    """Hypothesis: decode(encode(r)) is r with its derived items, for every record layout and profile."""
    codec = get_codec(layout, profile)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records(LAYOUTS[layout]))
    def check(rec: dict[str, object]) -> None:
        data = codec.encode(rec)
        assert len(data) == codec.record_length
        assert codec.decode(data) == codec.complete(rec)

    check()


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("kojin_bango", "123456789019", BadCheckDigit),
        ("juminhyo_code", "24727059609", BadCheckDigit),
        ("lg_code", "172015", BadCheckDigit),
        ("birth_date", "20250230", BadDate),
        ("sex", "3", UnknownCode),
        ("relationship", "01020000", UnknownCode),
        ("change_reason", "99", UnknownCode),
        ("kanji_name", "ｶﾅｻﾞﾜ", BadText),
        ("kanji_name", "金沢\u3000", BadPadding),
        ("kanji_name", "金" * 41, ValueTooLong),
        ("kanji_name", None, MissingField),
        ("operator_id", "op 1", BadText),
        ("kanji_name_gaiji_count", 0, DerivedMismatch),
        ("seion_kana_name", "タカハシ", DerivedMismatch),
        ("nonsense", "1", UnknownField),
    ],
)
def test_encode_errors_name_the_field(field: str, value: object, error: type[CodecError]) -> None:
    """Encoding a bad value raises the specific CodecError naming the field."""
    rec = dict(SAMPLERS["honnin-kakunin"](0))
    rec[field] = value
    with pytest.raises(error) as exc:
        get_codec("honnin-kakunin").encode(rec)
    assert exc.value.field == field and exc.value.layout == "honnin-kakunin"


def test_decode_error_names_field_and_offset() -> None:
    """A bad 住民票コード check digit on the wire is reported with its field and offset 0."""
    codec = get_codec("honnin-kakunin")
    data = bytearray(codec.encode(SAMPLERS["honnin-kakunin"](0)))
    data[10] = ord("0") + (data[10] - ord("0") + 1) % 10
    with pytest.raises(BadCheckDigit) as exc:
        codec.decode(bytes(data))
    assert (exc.value.field, exc.value.offset) == ("juminhyo_code", 0)


def test_decode_many_reports_record_index() -> None:
    """decode_many names the failing record and its absolute offset."""
    codec = get_codec("honnin-kakunin")
    data = bytearray(codec.encode_many(SAMPLERS["honnin-kakunin"](i) for i in range(3)))
    at = 2 * codec.record_length + LAYOUTS["honnin-kakunin"].offsets[6]
    data[at] = ord("7")  # sex
    with pytest.raises(UnknownCode) as exc:
        codec.decode_many(bytes(data))
    assert (exc.value.record, exc.value.field, exc.value.offset) == (2, "sex", at)
    with pytest.raises(RecordLengthError):
        codec.decode_many(bytes(data[:-1]))


def test_unknown_layout_and_profile() -> None:
    """Unknown layout or profile names raise UnknownLayout listing the known ones."""
    with pytest.raises(UnknownLayout, match="honnin-kakunin"):
        get_codec("nope")
    with pytest.raises(UnknownLayout):
        get_codec("soufusaki", "mars")


@pytest.mark.parametrize("name", ["山田\u3000一", "田中\u4e30", "波\u3030", "\u3000金沢", "一\u3000\u3000一", "𠮷"])
def test_padding_edges_round_trip(name: str) -> None:
    """Values whose last character ends in byte 0x00 or 0x30 (一, U+4E30, 〰) keep every character."""
    from juki_gateway.codecs.reference import ReferenceCodec

    rec = dict(SAMPLERS["honnin-kakunin"](0), kanji_name=name)
    codec = get_codec("honnin-kakunin")
    data = codec.encode(rec)
    assert codec.decode(data)["kanji_name"] == name
    assert ReferenceCodec("honnin-kakunin").decode(data) == codec.decode(data)
