"""The primitives behind the generated codec's speed agree with their plain definitions."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juki_gateway.codecs.checkdigits import CHECK_SCHEMES, weighted_digit_list
from juki_gateway.codecs.errors import BadCheckDigit, BadDigits, CodecError, DerivedMismatch
from juki_gateway.codecs.gaiji import PROFILES, SUBSTITUTES, Profile
from juki_gateway.codecs.kana import KANA_CHARS, SEION_BYTES, seion_kana
from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.reference import ReferenceCodec
from juki_gateway.codecs.samples import SAMPLERS

#: characters that exercise every branch of 外字 handling: JIS X 0208, 外字 with and without a
#: substitute, non-BMP characters, and the ideographic space
CHARS = "金沢花子石川県広坂１丁目ｱ\u3000" + "".join(SUBSTITUTES) + "\U0002a6b2\u9dd7\u5f45"


def _substitute_by_zip(profile: Profile, text: str) -> tuple[str, list[int], int]:
    """The plain definition: translate, then compare the two strings position by position."""
    out = text.translate(profile.substitutes)
    positions = [i for i, (a, b) in enumerate(zip(text, out, strict=True), 1) if a != b]
    return out, positions, profile.gaiji_count(text) - len(positions)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_substitute_matches_its_plain_definition(profile: str) -> None:
    """Substitution by regex scan gives the text, positions and kept count of translate-and-compare."""
    prof = PROFILES[profile]

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet=CHARS, min_size=1, max_size=30))
    def check(text: str) -> None:
        assert prof.substitute(text) == _substitute_by_zip(prof, text)
        assert prof.substitute_counted(text, prof.gaiji_count(text)) == prof.substitute(text)

    check()


def test_seion_on_bytes_matches_seion_on_text() -> None:
    """清音化 on the UTF-16BE bytes is the encoding of 清音化 on the text, padding included."""

    @settings(max_examples=200, deadline=None)
    @given(st.text(alphabet=KANA_CHARS, min_size=1, max_size=50))
    def check(kana: str) -> None:
        pad = "\u3000".encode("utf-16-be") * (50 - len(kana))
        assert (kana.encode("utf-16-be") + pad).translate(SEION_BYTES) == seion_kana(kana).encode("utf-16-be") + pad

    check()


@pytest.mark.parametrize("scheme", sorted(CHECK_SCHEMES))
def test_digit_lists_give_the_weighted_sum(scheme: str) -> None:
    """Summing the per-digit lists gives the scheme's residue, and a non-digit has no entry."""
    s = CHECK_SCHEMES[scheme]
    rng = random.Random(7)
    for _ in range(500):
        body = "".join(rng.choice("0123456789") for _ in range(s.digits - 1))
        total = sum(weighted_digit_list(w)[b] or 0 for w, b in zip(s.weights, body.encode(), strict=True))
        assert total % 11 == s.residue(body)
    assert all(weighted_digit_list(w)[b] is None for w in s.weights for b in range(256) if not 48 <= b <= 57)


@pytest.mark.parametrize(("offset", "byte", "error"), [(3, ord("A"), BadDigits), (0, ord(" "), BadDigits),
                                                      (10, ord("X"), BadDigits), (10, None, BadCheckDigit)])
def test_fast_decoder_refuses_non_digits_in_check_digit_codes(offset: int, byte: int | None, error: type) -> None:
    """A non-digit anywhere in a 住民票コード, or a wrong check digit, is refused and located."""
    codec = get_codec("honnin-kakunin")
    data = bytearray(codec.encode(SAMPLERS["honnin-kakunin"](0)))
    data[offset] = byte if byte is not None else 48 + (data[offset] - 47) % 10
    with pytest.raises(error) as info:
        codec.decode(bytes(data))
    assert info.value.field == "juminhyo_code"


def test_fast_decoder_checks_seion_bytes() -> None:
    """A 清音化かな that is not the kana's 清音化 is a derived-item mismatch on that field."""
    codec = get_codec("honnin-kakunin")
    rec = dict(SAMPLERS["honnin-kakunin"](0), kana_name="ガッコウ\u3000ヴァン")
    data = codec.encode(rec)
    assert codec.decode(data)["seion_kana_name"] == "カツコウ\u3000ウアン"
    off = codec.layout.offsets[[f.name for f in codec.layout.fields].index("seion_kana_name")]
    bad = data[:off] + "ガ".encode("utf-16-be") + data[off + 2 :]
    with pytest.raises(DerivedMismatch) as info:
        codec.decode(bad)
    assert info.value.field == "seion_kana_name"
    with pytest.raises(CodecError):
        codec.encode(dict(rec, seion_kana_name="ガツコウ\u3000ウアン"))


# the last four end in characters whose UTF-16 bytes are all 0x30/0x00, like the padding's
@pytest.mark.parametrize("tail", ["\u2000", "\u00a0", " ", "\U00020bb7", "\u3000\u2000", "\u200a\u3000",
                                  "\u3030", "\u4e30", "0", "\u3030\u3000\u3030"])
def test_padding_cut_agrees_with_the_reference_on_other_whitespace(tail: str) -> None:
    """A name ending in whitespace other than U+3000, or in a non-BMP character, decodes as the reference says."""
    codec, ref = get_codec("honnin-kakunin"), ReferenceCodec("honnin-kakunin")
    data = codec.encode(SAMPLERS["honnin-kakunin"](2))
    off = codec.layout.offsets[1]  # kanji_name, 80 bytes
    name = ("金沢" + tail).encode("utf-16-be")
    data = data[:off] + name + "\u3000".encode("utf-16-be") * ((80 - len(name)) // 2) + data[off + 80 :]

    def outcome(fn: Any) -> tuple[str, Any]:
        try:
            return ("ok", fn(data))
        except CodecError as exc:
            return ("error", (type(exc).__name__, exc.field))

    assert outcome(codec.decode) == outcome(ref.decode)


@pytest.mark.parametrize("tail", ["\u2000", "\u00a0", "\U00020bb7", "\u200a\u3000\u2000", "\u3030", "\u4e30"])
def test_names_ending_in_other_whitespace_round_trip(tail: str) -> None:
    """A name that really ends in a whitespace 外字 or a non-BMP character keeps it through both decoders."""
    codec, ref = get_codec("honnin-kakunin"), ReferenceCodec("honnin-kakunin")
    rec = dict(SAMPLERS["honnin-kakunin"](2), kanji_name="金沢" + tail)
    data = codec.encode(rec)
    assert codec.decode(data)["kanji_name"] == ref.decode(data)["kanji_name"] == "金沢" + tail
