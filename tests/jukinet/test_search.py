"""The search rule R3 (check_narrow), the 市区町村 address rule, matching, and the search answer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.samples import sample_honnin_kakunin
from juki_gateway.protocols.jukinet.errors import BadBody, BadCheckDigit, SearchTooBroad
from juki_gateway.protocols.jukinet.layouts import SEARCH_HIT, encode_body
from juki_gateway.protocols.jukinet.search import (
    PREFECTURES,
    Candidate,
    SearchCriteria,
    address_matches,
    check_narrow,
    decode_search_answer,
    encode_search_answer,
    first_hits,
    matches,
    names_municipality,
    split_address,
)

RESIDENT = Candidate("24727059608", "123456789018", "髙橋 太郎", "タカハシ タロウ", "19800101", "1",
                     "石川県金沢市広坂1丁目1番1号")
NAME = "髙橋\u3000太郎"


def _refusal(criteria: SearchCriteria) -> str:
    with pytest.raises(SearchTooBroad) as exc:
        check_narrow(criteria)
    assert exc.value.wire_code == 5102
    return str(exc.value)


# -- what R3 accepts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("criteria", [
    SearchCriteria(juminhyo_code="24727059608"),
    SearchCriteria(kojin_bango="123456789018"),
    SearchCriteria(juminhyo_code="24727059608", kojin_bango="123456789018", sex="1"),
], ids=["住民票コード", "個人番号", "both+性別"])
def test_an_identifier_alone_is_narrow(criteria: SearchCriteria) -> None:
    """A search naming a 住民票コード or a 個人番号 with a valid check digit passes R3 by itself."""
    check_narrow(criteria)


@pytest.mark.parametrize("criteria", [
    SearchCriteria(juminhyo_code="24727059609"),
    SearchCriteria(kojin_bango="123456789019"),
    SearchCriteria(juminhyo_code="24727059608", kojin_bango="123456789019"),
])
def test_an_identifier_with_a_bad_check_digit_is_refused(criteria: SearchCriteria) -> None:
    """Every identifier given is check-digit validated (5103), the second one too."""
    with pytest.raises(BadCheckDigit):
        check_narrow(criteria)


def test_name_and_birth_date_is_narrow() -> None:
    """氏名+生年月日 passes R3 and finds the resident by kanji, 外字 substitute or kana."""
    for name in (NAME, "高橋太郎", "ﾀｶﾊｼ ﾀﾛｳ", "たかはしたろう"):
        criteria = SearchCriteria(name=name, birth_date="19800101")
        check_narrow(criteria)
        assert matches(criteria, RESIDENT)


@pytest.mark.parametrize("address", [
    "金沢市", "石川県金沢市", "石川県金沢市広坂", "石川県　金沢市広坂１丁目１番１号", "金沢市広坂",
])
def test_name_and_an_address_naming_its_municipality_is_narrow(address: str) -> None:
    """氏名+住所 passes R3 when the 住所 names a 市区町村 or something finer, and matches the
    resident whose 住所 lies in it, with or without the prefecture."""
    criteria = SearchCriteria(name=NAME, address=address)
    check_narrow(criteria)
    assert matches(criteria, RESIDENT)


@pytest.mark.parametrize("address", [
    "東京都千代田区", "大阪府大阪市北区", "京都府京都市中京区", "千葉県市川市", "東京都町田市",
    "石川県河北郡津幡町", "石川県津幡町", "山形県西村山郡河北町", "奈良県大和郡山市", "福島県郡山市",
    "宮城県仙台市太白区郡山", "鳥取県八頭町郡家",
])
def test_municipalities_of_every_shape_count(address: str) -> None:
    """特別区, 政令市, 京都府, names beginning with 市/町/郡, towns of a 郡 (written with or
    without it) and 郡 in a city's or 大字's name all name a 市区町村."""
    assert names_municipality(address)
    check_narrow(SearchCriteria(name=NAME, address=address))


def test_the_address_rule_cuts_where_the_documentation_says() -> None:
    """split_address: prefecture taken off whole, the 市区町村 key (a 郡 town without its 郡), the rest."""
    cuts = {
        "石川県金沢市広坂１丁目": ("石川県", "金沢市", "広坂1丁目"),
        "京都府京都市中京区": ("京都府", "京都市", "中京区"),
        "千葉県市川市八幡": ("千葉県", "市川市", "八幡"),
        "石川県河北郡津幡町加賀爪": ("石川県", "津幡町", "加賀爪"),
        "山形県西村山郡河北町谷地": ("山形県", "河北町", "谷地"),
        "奈良県大和郡山市北郡山町": ("奈良県", "大和郡山市", "北郡山町"),
        "宮城県仙台市太白区郡山": ("宮城県", "仙台市", "太白区郡山"),
        "京都市": ("", "京都市", ""),
    }
    for address, (pref, municipality, rest) in cuts.items():
        parts = split_address(address)
        assert (parts.prefecture, parts.municipality, parts.rest) == (pref, municipality, rest)


def test_the_prefecture_list_is_the_47_in_code_order() -> None:
    """47 distinct prefecture names, 石川県 at code 17, none a prefix of another."""
    assert len(set(PREFECTURES)) == 47 and PREFECTURES[17 - 1] == "石川県"
    assert not any(a != b and b.startswith(a) for a in PREFECTURES for b in PREFECTURES)


# -- what R3 refuses ----------------------------------------------------------------------------------


def test_birth_date_and_address_without_a_name_is_refused() -> None:
    """生年月日+住所 (even a full one) is refused: the refusal names 氏名 as missing."""
    message = _refusal(SearchCriteria(birth_date="19800101", address="石川県金沢市広坂1丁目1番1号"))
    assert message.startswith("氏名 is missing")


@pytest.mark.parametrize("address", [
    "石", "金", "石川県", "京都府", "東京都", "北海道", "京都", "石川県金沢", "石川県河北郡",
    "山形県西村山郡", "石川県河北郡津幡", "市", "\u3000",
])
def test_name_and_an_address_naming_no_municipality_is_refused(address: str) -> None:
    """氏名 with a 住所 of one character, a prefecture only, a 郡 only or a name without its
    suffix is refused, naming 生年月日 as missing."""
    assert not names_municipality(address)
    assert _refusal(SearchCriteria(name=NAME, address=address)).startswith("生年月日")


@pytest.mark.parametrize("criteria", [
    SearchCriteria(sex="1"),
    SearchCriteria(name=NAME, sex="1"),
    SearchCriteria(birth_date="19800101", sex="1"),
    SearchCriteria(address="石川県金沢市", sex="1"),
    SearchCriteria(name=NAME, address="石", sex="1"),
    SearchCriteria(name="\u3000", birth_date="19800101", sex="1"),
], ids=["性別", "氏名+性別", "生年月日+性別", "住所+性別", "氏名+1-char 住所+性別", "blank 氏名"])
def test_sex_never_counts(criteria: SearchCriteria) -> None:
    """性別 never makes a search narrow, whatever it is given with."""
    _refusal(criteria)


def test_refusals_name_what_is_missing_fit_an_error_record_and_quote_nothing() -> None:
    """Each refusal starts with what is missing, fits the 200-byte ERROR detail, and quotes no
    value of the search."""
    cases = {
        SearchCriteria(address="石川県金沢市", birth_date="19800101"): "氏名 is missing",
        SearchCriteria(name=NAME): "生年月日 or 住所 is missing",
        SearchCriteria(name=NAME, address="石川県"): "生年月日 is missing and the 住所 names no 市区町村",
    }
    for criteria, missing in cases.items():
        message = _refusal(criteria)
        assert message.startswith(missing)
        assert len(message.encode("utf-8")) <= 200
        assert not any(v in message for v in ("髙橋", "19800101", "石川県金沢市"))


_NAMES = st.text(alphabet="髙橋太郎たかはしタカハシ\u3000 ", max_size=6)
_DATES = st.sampled_from(["", "19800101", "20010228"])
_ADDRESSES = st.builds(
    lambda pref, body: pref + body,
    st.sampled_from(["", "石川県", "東京都", "京都府", "北海道", "石川"]),
    st.text(alphabet="金沢市区町村郡広坂京都府一丁目 \u3000", max_size=8),
)


@given(name=_NAMES, birth=_DATES, address=_ADDRESSES, sex=st.sampled_from(["", "1", "2", "9"]))
def test_r3_is_name_plus_birth_date_or_a_municipality(name: str, birth: str, address: str,
                                                      sex: str) -> None:
    """Without identifiers, a search passes exactly when 氏名 is given and 生年月日 or a 住所
    naming a 市区町村 is; 性別 never changes the outcome."""
    def narrow(criteria: SearchCriteria) -> bool:
        try:
            check_narrow(criteria)
        except SearchTooBroad:
            return False
        return True

    expected = bool(name.strip()) and bool(birth or names_municipality(address))
    assert narrow(SearchCriteria(name=name, birth_date=birth, address=address, sex=sex)) is expected
    assert narrow(SearchCriteria(name=name, birth_date=birth, address=address)) is expected


@given(pref=st.sampled_from(["", "石川県", "東京都", "京都府"]),
       body=st.text(alphabet="金沢市区町村広坂京都一丁目番1", min_size=1, max_size=12), data=st.data())
def test_a_query_cut_from_an_address_finds_it(pref: str, body: str, data: st.DataObject) -> None:
    """Any beginning of an address (no 郡 in it) that names a 市区町村 matches that address:
    queries and records are cut by the same rule."""
    address = pref + body
    query = address[:data.draw(st.integers(1, len(address)))]
    if names_municipality(query):
        assert address_matches(query, address)


def test_address_matching_is_by_municipality() -> None:
    """A 住所 finds residents of the same 市区町村 only (not another prefecture's namesake, not
    the towns of a 郡 whose name it begins), a 郡 town with or without its 郡, and narrows
    within the 市区町村 by prefix."""
    assert not address_matches("石川県金沢市", "石川県小松市小馬出町")
    assert not address_matches("東京都府中市", "広島県府中市府川町")
    assert address_matches("府中市", "広島県府中市府川町")
    assert address_matches("石川県津幡町", "石川県河北郡津幡町加賀爪")
    assert address_matches("石川県河北郡津幡町加賀爪", "石川県津幡町加賀爪１番")
    assert not address_matches("山形県西村", "山形県西村山郡河北町谷地")
    assert not address_matches("石川県金沢市広坂", "石川県金沢市長町")


def test_seion_kana_ignores_voicing_marks() -> None:
    """A kana query with voicing marks dropped still finds the resident (清音化かな)."""
    other = Candidate("24846016224", "", "鈴木 次郎", "スズキ ジロウ", "19900202", "1", "石川県金沢市")
    assert matches(SearchCriteria(name="すすきしろう", birth_date="19900202"), other)
    assert not matches(SearchCriteria(name="すずきたろう", birth_date="19900202"), other)


# -- the answer ---------------------------------------------------------------------------------------


def test_first_hits_keeps_the_smallest_codes_and_counts_them_all() -> None:
    """The answer holds the ``limit`` smallest 住民票コード, ascending, and the count of every hit."""
    hits = [(f"{n:011d}", f"r{n}".encode()) for n in (9, 3, 7, 1, 5)]
    assert first_hits(iter(hits), 3) == (5, [b"r1", b"r3", b"r5"])
    assert first_hits(iter(hits), 10) == (5, [b"r1", b"r3", b"r5", b"r7", b"r9"])
    assert first_hits(iter([]), 3) == (0, [])


def _records(n: int) -> list[bytes]:
    codec = get_codec("honnin-kakunin")
    return [codec.encode(sample_honnin_kakunin(i)) for i in range(n)]


def test_a_search_answer_round_trips_with_its_counts() -> None:
    """An answer cut at 2 of 5 says truncated; a whole one does not; none matched is 0 records."""
    records = _records(2)
    cut = encode_search_answer(5, records)
    assert len(cut) == 2 * SEARCH_HIT.record_length
    assert cut[:10] == b"0000000051" and cut[10:10 + 898] == records[0]
    got = decode_search_answer(cut)
    assert (got.total, got.truncated) == (5, True)
    assert [r["juminhyo_code"] for r in got.records] == [
        sample_honnin_kakunin(i)["juminhyo_code"] for i in range(2)]
    whole = decode_search_answer(encode_search_answer(2, records))
    assert (whole.total, whole.truncated, len(whole.records)) == (2, False, 2)
    assert decode_search_answer(b"") == decode_search_answer(encode_search_answer(0, []))
    assert (decode_search_answer(b"").total, decode_search_answer(b"").truncated) == (0, False)


@pytest.mark.parametrize("hits", [
    [(5, "1"), (4, "1")],  # totals differ
    [(5, "1"), (5, "0")],  # flags differ
    [(5, "0"), (5, "0")],  # more matched than carried, yet not truncated
    [(2, "1"), (2, "1")],  # all carried, yet truncated
    [(1, "0"), (1, "0")],  # fewer matched than carried
])
def test_an_answer_whose_counts_do_not_fit_is_malformed(hits: list[tuple[int, str]]) -> None:
    """A receiver refuses an answer whose records disagree on total/truncated, or whose
    truncated does not say total > record_count."""
    body = b"".join(encode_body(SEARCH_HIT, {"total": t, "truncated": f, "record": r})
                    for (t, f), r in zip(hits, _records(len(hits)), strict=True))
    with pytest.raises(BadBody):
        decode_search_answer(body)
