"""The project's code tables (brief §4): 性別, 続柄, 異動事由, flags and the other coded items.

Each is a :class:`~juki_gateway.codecs.fields.CodeTable`; ``docs/wire-format.md`` lists them.
The 続柄 table is generated: a relationship is a chain of up to four steps joined by の
(子の妻, 妻の母, 子の子の夫 …), each step a 2-digit base code, padded with ``00``.
"""

from __future__ import annotations

from itertools import product

from juki_gateway.codecs.fields import CodeTable

SEX = CodeTable(
    "sex", "性別 (JIS X 0303)", {"0": "不明", "1": "男", "2": "女", "9": "適用不能"}
)

FLAG = CodeTable("flag", "フラグ", {"0": "なし", "1": "あり"})

RECORD_STATUS = CodeTable(
    "record_status", "レコード状況フラグ", {"0": "現存", "1": "消除", "2": "履歴"}
)

#: 異動事由, grouped as 記載 (1x), 消除 (2x) and 修正 (3x) after the 住民記録システム標準仕様書.
CHANGE_REASON = CodeTable(
    "change_reason",
    "異動事由",
    {
        "10": "記載: 国内転入",
        "11": "記載: 国外転入",
        "12": "記載: 出生",
        "13": "記載: 職権記載",
        "14": "記載: 帰化",
        "15": "記載: 国籍取得",
        "16": "記載: 外国人住民の記載",
        "17": "記載: 特例転入",
        "20": "消除: 国内転出",
        "21": "消除: 国外転出",
        "22": "消除: 死亡",
        "23": "消除: 職権消除",
        "24": "消除: 失踪宣告",
        "25": "消除: 国籍喪失",
        "30": "修正: 転居",
        "31": "修正: 職権修正",
        "32": "修正: 誤記修正",
        "33": "修正: 個人番号の変更請求",
        "34": "修正: 住民票コードの変更請求",
        "35": "修正: 世帯変更",
        "36": "修正: 世帯主変更",
        "37": "修正: 続柄変更",
        "38": "修正: 氏名変更",
        "39": "修正: 住居表示変更",
    },
)

CHANGE_REASON_DETAIL = CodeTable(
    "change_reason_detail",
    "異動事由詳細",
    {
        "00": "詳細なし",
        "01": "本人届出",
        "02": "代理人届出",
        "03": "職権",
        "04": "法務省通知",
        "05": "他市町村通知",
        "06": "裁判の確定",
    },
)

_ALONE = {"01": "世帯主", "90": "縁故者", "91": "同居人"}
_STEPS = {
    "02": "夫",
    "03": "妻",
    "04": "夫(未届)",
    "05": "妻(未届)",
    "06": "子",
    "07": "父",
    "08": "母",
    "09": "兄",
    "10": "姉",
    "11": "弟",
    "12": "妹",
}


def _relationships() -> dict[str, str]:
    codes = {code + "000000": label for code, label in _ALONE.items()}
    for n in range(1, 5):
        for chain in product(_STEPS, repeat=n):
            code = "".join(chain).ljust(8, "0")
            codes[code] = "の".join(_STEPS[c] for c in chain)
    return codes


RELATIONSHIP = CodeTable(
    "relationship",
    "続柄",
    _relationships(),
    rule="8 digits: one step code, or up to four step codes joined by の (e.g. 0603 = 子の妻), "
    "right-padded with 00; 世帯主, 縁故者 and 同居人 stand alone",
    doc_codes={**_ALONE, **_STEPS},
)

PRINT_CLASS = CodeTable(
    "print_class", "印刷区分", {"0": "通常", "1": "再送付", "2": "再印刷"}
)

FOREIGN_CLASS = CodeTable(
    "foreign_resident_class",
    "第30条の45に規定する区分",
    {
        "1": "中長期在留者",
        "2": "特別永住者",
        "3": "一時庇護許可者",
        "4": "仮滞在許可者",
        "5": "出生による経過滞在者",
        "6": "国籍喪失による経過滞在者",
    },
)

SUBSTITUTE_RESULT = CodeTable(
    "substitute_result",
    "代替文字変換結果",
    {"0": "外字なし", "1": "全外字を代替文字に変換", "2": "代替文字のない外字あり"},
)

RESIDENT_CLASS = CodeTable("resident_class", "住民区分", {"1": "日本人住民", "2": "外国人住民"})

RESIDENCE_STATUS = CodeTable(
    "residence_status",
    "在留資格",
    {
        "01": "永住者",
        "02": "日本人の配偶者等",
        "03": "永住者の配偶者等",
        "04": "定住者",
        "05": "技術・人文知識・国際業務",
        "06": "留学",
        "07": "技能実習",
        "08": "特定技能",
        "09": "家族滞在",
        "10": "経営・管理",
        "11": "高度専門職",
        "12": "特定活動",
    },
)

CODE_TABLES: tuple[CodeTable, ...] = (
    SEX,
    FLAG,
    RECORD_STATUS,
    CHANGE_REASON,
    CHANGE_REASON_DETAIL,
    RELATIONSHIP,
    PRINT_CLASS,
    FOREIGN_CLASS,
    SUBSTITUTE_RESULT,
    RESIDENT_CLASS,
    RESIDENCE_STATUS,
)
