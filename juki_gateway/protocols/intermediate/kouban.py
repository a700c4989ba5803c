"""The 主務省令第2条 table rows under which this municipality provides 住民票関係情報 (seed I 6 ②).

Data, not code: one row per 項番 (the 60 rows whose 情報提供者 is 市町村長 and whose
利用特定個人情報 includes 住民票関係情報). The seed's section II(2)5 details the requester
(情報照会者) and purpose for the rows listed there; for the others the excerpt gives only the
number, and the row carries empty text. Permission lists may name only these 項番.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KoubanRow:
    """One row of the 主務省令第2条 table: its number, requester and purpose (may be empty)."""

    kouban: int
    requester: str
    purpose: str


KOUBAN_TABLE: tuple[KoubanRow, ...] = (
    KoubanRow(
        1,
        "厚生労働大臣",
        "健康保険法第5条第2項の規定により厚生労働大臣が行うこととされた健康保険に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        2,
        "全国健康保険協会",
        "健康保険法による保険給付の支給に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        3, "健康保険組合", "健康保険法による保険給付の支給に関する事務であって主務省令で定めるもの"
    ),
    KoubanRow(5, "", ""),
    KoubanRow(7, "", ""),
    KoubanRow(
        11,
        "都道府県知事",
        "児童福祉法による養育里親若しくは養子縁組里親の登録、里親の認定又は障害児入所給付費、高額障害児入所給付費若しくは特定入所障害児食費等給付費の支給に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        13,
        "都道府県知事",
        "児童福祉法による小児慢性特定疾病医療費の支給に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        15,
        "市町村長",
        "児童福祉法による障害児通所給付費、特例障害児通所給付費、高額障害児通所給付費、障害児相談支援給付費若しくは特例障害児相談支援給付費の支給又は障害福祉サービスの提供に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        20,
        "都道府県知事又は市町村長",
        "児童福祉法による負担能力の認定又は費用の徴収に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        28,
        "市町村長",
        "予防接種法による給付の支給又は実費の徴収に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        37,
        "市町村長",
        "身体障害者福祉法による障害福祉サービス、障害者支援施設等への入所等の措置又は費用の徴収に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        39,
        "都道府県知事",
        "精神保健及び精神障害者福祉に関する法律による入院措置又は費用の徴収に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        48,
        "市町村長",
        "地方税法その他の地方税に関する法律及びこれらの法律に基づく条例又は森林環境税及び森林環境譲与税に関する法律による地方税又は森林環境税の賦課徴収に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        53,
        "公営住宅法第2条第16号に規定する事業主体である都道府県知事又は市町村長",
        "公営住宅法による公営住宅の管理に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        57,
        "日本私立学校振興・共済事業団",
        "私立学校教職員共済法による短期給付又は年金である給付の支給に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        58,
        "厚生労働大臣又は共済組合等",
        "厚生年金保険法による年金である保険給付又は一時金の支給に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        59,
        "文部科学大臣又は都道府県教育委員会",
        "特別支援学校への就学奨励に関する法律による特別支援学校への就学のため必要な経費の支弁に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(
        63,
        "都道府県教育委員会又は市町村教育委員会",
        "学校保健安全法による医療に要する費用についての援助に関する事務であって主務省令で定めるもの",
    ),
    KoubanRow(65, "", ""),
    KoubanRow(66, "", ""),
    KoubanRow(69, "", ""),
    KoubanRow(73, "", ""),
    KoubanRow(75, "", ""),
    KoubanRow(76, "", ""),
    KoubanRow(81, "", ""),
    KoubanRow(83, "", ""),
    KoubanRow(84, "", ""),
    KoubanRow(86, "", ""),
    KoubanRow(87, "", ""),
    KoubanRow(91, "", ""),
    KoubanRow(92, "", ""),
    KoubanRow(96, "", ""),
    KoubanRow(106, "", ""),
    KoubanRow(108, "", ""),
    KoubanRow(110, "", ""),
    KoubanRow(112, "", ""),
    KoubanRow(115, "", ""),
    KoubanRow(118, "", ""),
    KoubanRow(124, "", ""),
    KoubanRow(129, "", ""),
    KoubanRow(130, "", ""),
    KoubanRow(132, "", ""),
    KoubanRow(136, "", ""),
    KoubanRow(137, "", ""),
    KoubanRow(138, "", ""),
    KoubanRow(141, "", ""),
    KoubanRow(142, "", ""),
    KoubanRow(144, "", ""),
    KoubanRow(149, "", ""),
    KoubanRow(150, "", ""),
    KoubanRow(151, "", ""),
    KoubanRow(152, "", ""),
    KoubanRow(155, "", ""),
    KoubanRow(156, "", ""),
    KoubanRow(158, "", ""),
    KoubanRow(160, "", ""),
    KoubanRow(163, "", ""),
    KoubanRow(164, "", ""),
    KoubanRow(165, "", ""),
    KoubanRow(166, "", ""),
)

KOUBAN_NUMBERS: frozenset[int] = frozenset(row.kouban for row in KOUBAN_TABLE)


def kouban_row(kouban: int) -> KoubanRow | None:
    """The table row for a 項番, or None when this municipality provides nothing under it."""
    for row in KOUBAN_TABLE:
        if row.kouban == kouban:
            return row
    return None
