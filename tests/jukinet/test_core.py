"""The pure Juki-net core: numbers, routing, consistency diff, layouts, catalogue (the search
rule R3 is in test_search.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from juki_gateway.codecs.record import get_codec
from juki_gateway.protocols.jukinet.consistency import (
    Diff,
    DiffKind,
    Entry,
    StreamComparer,
    diff_streams,
    record_digest,
)
from juki_gateway.protocols.jukinet.errors import (
    BadBody,
    BadCheckDigit,
    PoolExhausted,
    UnknownMunicipality,
    UnsortedStream,
    WrongSender,
)
from juki_gateway.protocols.jukinet.layouts import (
    HONNIN_KAKUNIN,
    LAYOUTS,
    MOVE_IN_NOTICE,
    codec_of,
    decode_body,
    encode_body,
    field_slice,
)
from juki_gateway.protocols.jukinet.numbers import (
    JuminhyoCodePool,
    NumberGenerator,
    validate_juminhyo_code,
    validate_kojin_bango,
    validate_municipality_code,
)
from juki_gateway.protocols.jukinet.records import (
    CHANGE_REASON_BY_NAME,
    TENKYO,
    decode_honnin_kakunin,
    honnin_kakunin_record,
)
from juki_gateway.protocols.jukinet.routing import KIKO_NODE_ID, Role, next_hop

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["123456789018", "983205673214", "023456789013"])
def test_kojin_bango_examples_are_valid(value: str) -> None:
    """The brief's valid 個人番号 examples pass their check digit."""
    assert validate_kojin_bango(value) == value


@pytest.mark.parametrize("value", ["24727059608", "24846016224", "25208017643"])
def test_juminhyo_code_examples_are_valid(value: str) -> None:
    """The brief's valid 住民票コード examples pass their check digit."""
    assert validate_juminhyo_code(value) == value


@pytest.mark.parametrize("value", ["172014", "131016", "011002", "131041", "131130"])
def test_municipality_code_examples_are_valid(value: str) -> None:
    """The brief's valid 地方公共団体コード examples pass their check digit."""
    assert validate_municipality_code(value) == value


def test_bad_check_digits_are_refused() -> None:
    """A wrong last digit or non-digits raise BadCheckDigit with code bad_check_digit."""
    for fn, bad in ((validate_kojin_bango, "123456789019"), (validate_juminhyo_code, "24727059609"),
                    (validate_municipality_code, "172015"), (validate_kojin_bango, "12345678901x")):
        with pytest.raises(BadCheckDigit) as exc:
            fn(bad)
        assert exc.value.wire_code == 5103


def test_generator_never_reuses_and_gives_valid_numbers() -> None:
    """Drawn 個人番号 are valid and distinct from everything already issued."""
    issued: set[str] = set()
    gen = NumberGenerator("kojin_bango", random.Random(1), issued.__contains__)
    for _ in range(2000):
        n = gen.draw()
        assert validate_kojin_bango(n) == n and n not in issued
        issued.add(n)


def test_generator_gives_up_when_every_draw_is_used() -> None:
    """When every candidate is taken the generator raises instead of looping forever."""
    gen = NumberGenerator("juminhyo_code", random.Random(1), lambda _: True, max_attempts=5)
    with pytest.raises(Exception, match="no unused"):
        gen.draw()


def test_pool_hands_out_at_random_and_warns_when_low() -> None:
    """The pool returns each code once, in a non-sequential order, and reports low water."""
    codes = NumberGenerator("juminhyo_code", random.Random(2), lambda _: False).draw_many(50)
    pool = JuminhyoCodePool(codes, random.Random(3), low_water=10)
    taken = [pool.take() for _ in range(40)]
    assert len(set(taken)) == 40 and taken != codes[:40] and taken != codes[::-1][:40]
    assert pool.is_low and len(pool) == 10
    for _ in range(10):
        pool.take()
    with pytest.raises(PoolExhausted):
        pool.take()


def test_move_in_notice_route_crosses_prefectures() -> None:
    """A 転入通知 from 金沢市 to 千代田区 goes CS → pref-17 → 機構 → pref-13 → cs-131016."""
    dest = "131016"
    assert next_hop(Role.MUNICIPAL_CS, "cs-172014", dest, came_from=None) == "pref-17"
    assert next_hop(Role.PREFECTURE, "pref-17", dest, came_from=Role.MUNICIPAL_CS) == KIKO_NODE_ID
    assert next_hop(Role.KIKO, "kiko", dest, came_from=Role.PREFECTURE) == "pref-13"
    assert next_hop(Role.PREFECTURE, "pref-13", dest, came_from=Role.KIKO) == "cs-131016"
    assert next_hop(Role.MUNICIPAL_CS, "cs-131016", dest, came_from=Role.PREFECTURE) is None


def test_routing_refuses_wrong_hops_and_unknown_codes() -> None:
    """A misrouted notice, an unknown CS or a bad 市町村コード are refused with their own codes."""
    with pytest.raises(WrongSender):
        next_hop(Role.PREFECTURE, "pref-17", "131016", came_from=Role.KIKO)
    with pytest.raises(UnknownMunicipality):
        next_hop(Role.PREFECTURE, "pref-13", "131041", came_from=Role.KIKO,
                 known_municipalities={"131016"})
    with pytest.raises(BadCheckDigit):
        next_hop(Role.KIKO, "kiko", "131017", came_from=Role.PREFECTURE)


def _entries(codes: dict[str, bytes]) -> list[Entry]:
    return [Entry(c, record_digest(v)) for c, v in sorted(codes.items())]


@settings(max_examples=100, deadline=None)
@given(
    base=st.dictionaries(st.integers(0, 10**10 - 1), st.binary(max_size=8), max_size=60),
    drop_cs=st.sets(st.integers(0, 59)),
    drop_peer=st.sets(st.integers(0, 59)),
    change=st.sets(st.integers(0, 59)),
    chunk=st.integers(1, 7),
)
def test_consistency_diff_finds_every_injected_difference(
    base: dict[int, bytes], drop_cs: set[int], drop_peer: set[int], change: set[int], chunk: int
) -> None:
    """Records dropped on either side or changed are each reported once with the right kind."""
    from juki_gateway.protocols.jukinet.numbers import make_juminhyo_code

    codes = sorted(make_juminhyo_code(str(k).zfill(10)) for k in base)
    data = dict(zip(codes, base.values(), strict=True))
    cs = {c: v for i, c in enumerate(codes) if i not in drop_cs for v in [data[c]]}
    peer = {c: (v + b"x" if i in change else v) for i, c in enumerate(codes)
            if i not in drop_peer for v in [data[c]]}
    expected = set()
    for c in codes:
        if c in cs and c not in peer:
            expected.add(Diff(DiffKind.MISSING_AT_PEER, c))
        elif c in peer and c not in cs:
            expected.add(Diff(DiffKind.MISSING_AT_CS, c))
        elif c in cs and cs[c] != peer[c]:
            expected.add(Diff(DiffKind.DIFFERS, c))
    got = list(diff_streams(_entries(cs), _entries(peer), chunk=chunk))
    assert len(got) == len(set(got)) and set(got) == expected


def test_consistency_refuses_unsorted_streams() -> None:
    """A stream out of order on either side raises UnsortedStream."""
    a, b = Entry("24846016224", b"1" * 16), Entry("24727059608", b"2" * 16)
    with pytest.raises(UnsortedStream):
        StreamComparer([]).feed([a, b])
    with pytest.raises(UnsortedStream):
        list(diff_streams([], [a, b]))


def _record(change_reason: str = TENKYO) -> bytes:
    return honnin_kakunin_record(
        juminhyo_code="24727059608", kanji_name="髙橋　太郎", kana_name="タカハシ　タロウ",
        birth_date="19800101", sex="1", lg_code="172014", address="石川県金沢市広坂１丁目１番１号",
        change_reason=change_reason, change_date="20260401", seq=7)


def test_update_record_is_the_codecs_honnin_kakunin_with_literal_bytes() -> None:
    """An update notification's record is the codec's 898-byte 本人確認情報, byte for byte."""
    raw = _record()
    assert len(raw) == HONNIN_KAKUNIN.record_length == 898
    assert codec_of(HONNIN_KAKUNIN) is get_codec("honnin-kakunin", "jukinet")
    assert raw[:11] == b"24727059608"
    assert raw[11:23] == "髙橋　太郎".encode("utf-16-be") + "\u3000".encode("utf-16-be")
    assert raw[field_slice(HONNIN_KAKUNIN, "kanji_name_gaiji_count")] == b"01"
    assert raw[field_slice(HONNIN_KAKUNIN, "kojin_bango")] == b" " * 12
    assert raw[field_slice(HONNIN_KAKUNIN, "change_reason")] == b"30"
    assert raw[field_slice(HONNIN_KAKUNIN, "seq")] == b"000000000007"
    items = decode_honnin_kakunin(raw)
    assert items["seion_kana_name"] == "タカハシ　タロウ" and items["gaiji_flag"] == "1"
    assert encode_body(HONNIN_KAKUNIN, items) == raw


def test_change_reasons_are_the_codecs_code_table() -> None:
    """異動事由 names map to the codec's CHANGE_REASON codes; the 消除 group marks the record deleted."""
    assert CHANGE_REASON_BY_NAME["国内転入"] == "10" and CHANGE_REASON_BY_NAME["死亡"] == "22"
    dead = decode_honnin_kakunin(_record(change_reason=CHANGE_REASON_BY_NAME["死亡"]))
    assert dead["record_status_flag"] == "1"
    assert decode_honnin_kakunin(_record())["record_status_flag"] == "0"


def test_layouts_refuse_bad_fields_with_specific_errors() -> None:
    """Bad digits, unknown codes, broken derived items and bad check digits are refused with the
    link's error codes, never truncated."""
    good = _record()
    cases = [
        (slice(0, 11), b"24727059609", BadCheckDigit),
        (field_slice(HONNIN_KAKUNIN, "sex"), b"5", BadBody),
        (field_slice(HONNIN_KAKUNIN, "birth_date"), b"19801301", BadBody),
        (field_slice(HONNIN_KAKUNIN, "change_reason"), b"99", BadBody),
        (field_slice(HONNIN_KAKUNIN, "kanji_name_gaiji_count"), b"00", BadBody),
    ]
    for where, patch, err in cases:
        bad = bytearray(good)
        bad[where] = patch
        with pytest.raises(err) as exc:
            decode_body(HONNIN_KAKUNIN, bytes(bad))
        assert exc.value.wire_code in (5103, 5108) and "honnin-kakunin" in exc.value.message
    notice = {"juminhyo_code": "24727059608", "new_lg_code": "172014",
              "old_lg_code": "131016", "kanji_name": "長" * 41, "birth_date": "19800101",
              "new_address": "金沢", "move_in_date": "20260401"}
    with pytest.raises(BadBody, match="do not fit in 80 bytes"):
        encode_body(MOVE_IN_NOTICE, notice)
    assert set(LAYOUTS) >= {"honnin-kakunin", "soufusaki", "move-in-notice", "consistency-diff"}

