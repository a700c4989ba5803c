"""The published figures of Kanazawa (金沢市) that the synthetic population follows.

:mod:`.population` draws its residents from these tables: the age structure, the sizes of
households, the share and nationalities of foreign residents, and the 町名 of addresses.
``docs/population.md`` lists the figures with their sources. They were written down from the
published statistics named below, not downloaded: every share is approximate (rounded, and
adjusted so that each table sums to 100), good for a simulator, not for citing.

Sources:

- age structure and household sizes: 令和2年国勢調査 (2020 census), 人口等基本集計, 金沢市
  (population 463,254; 0–14 years about 12 %, 65 and over about 26 %; 一般世帯 about 2.2
  persons on average, one-person households about 40 %). The split into five-year bands is the
  project's approximation that sums to those broad groups;
- foreign residents: 住民基本台帳 (resident register) figures of 金沢市 for 2023–2024, about
  5,500–6,000 foreign residents, 1.2–1.4 % of the population; nationalities in the order the
  city and the prefecture report them (中国, ベトナム, 韓国, フィリピン, インドネシア, ネパール …);
- 町名: 金沢市 町名一覧 (the city's list of 町名 with their 丁目), official forms; the highest
  丁目 of each town to the best of the project's knowledge.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Age bands (first age, last age, percent of residents): 令和2年国勢調査, 金沢市, approximate.
#: 0–14: 12.4 %, 15–64: 61.2 %, 65 and over: 26.4 %; the last band ends at 105 by choice.
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (0, 4, 3.8), (5, 9, 4.2), (10, 14, 4.4),
    (15, 19, 4.9), (20, 24, 6.0), (25, 29, 5.3), (30, 34, 5.5), (35, 39, 6.0),
    (40, 44, 6.6), (45, 49, 7.7), (50, 54, 6.9), (55, 59, 6.2), (60, 64, 6.1),
    (65, 69, 6.5), (70, 74, 7.0), (75, 79, 4.9), (80, 84, 3.9),
    (85, 89, 2.5), (90, 94, 1.2), (95, 99, 0.35), (100, 105, 0.05),
)
OLDEST = AGE_BANDS[-1][1]

#: Persons per 一般世帯 → percent of households: 令和2年国勢調査, 金沢市, approximate
#: (6 stands for 6 and more; the population draws 6 or 7).
HOUSEHOLD_SIZES: dict[int, float] = {1: 40.5, 2: 27.0, 3: 16.0, 4: 11.7, 5: 3.6, 6: 1.2}

#: Share of residents who are foreign residents (住民基本台帳, 金沢市, 2023–2024): about 1.3 %.
FOREIGN_SHARE = 0.013

#: Nationalities of foreign residents (ISO 3166-1 alpha-3) → weight (approximate shares, %).
NATIONALITIES: dict[str, float] = {
    "CHN": 27, "VNM": 22, "KOR": 12, "PHL": 8, "IDN": 7, "NPL": 6, "USA": 5, "TWN": 4,
    "IND": 3, "BRA": 3, "GBR": 3,
}


@dataclass(frozen=True, slots=True)
class Town:
    """A 町名 of Kanazawa in its official form, with how many 丁目 it has (0: none)."""

    name: str
    chome: int = 0


#: Real 町名 of Kanazawa in their official forms (金沢市 町名一覧). Towns with 丁目 carry their
#: highest 丁目; the others (``chome`` 0) are addressed by 番地 (``橋場町１２番地``).
TOWNS: tuple[Town, ...] = (
    # 旧市街 (city centre)
    Town("広坂", 2), Town("香林坊", 2), Town("片町", 2), Town("長町", 3), Town("尾張町", 2),
    Town("本町", 2), Town("東山", 3), Town("森山", 2), Town("彦三町", 2), Town("芳斉", 2),
    Town("菊川", 2), Town("本多町", 3), Town("石引", 4), Town("天神町", 2), Town("小立野", 5),
    Town("寺町", 5), Town("野町", 5), Town("元町", 2), Town("神田", 2), Town("城南", 2),
    Town("大手町"), Town("橋場町"), Town("兼六町"), Town("此花町"), Town("尾山町"),
    Town("木ノ新保町"), Town("武蔵町"), Town("上近江町"), Town("青草町"), Town("堀川町"),
    Town("昭和町"), Town("笠市町"), Town("三社町"), Town("桜町"), Town("扇町"),
    Town("瓢箪町"), Town("安江町"), Town("小将町"), Town("東兼六町"), Town("玉川町"),
    Town("幸町"), Town("十間町"), Town("南町"), Town("出羽町"), Town("若松町"),
    # 駅西・港 (west of the station and the port)
    Town("駅西本町", 6), Town("西念", 4), Town("鞍月", 5), Town("鞍月東", 2), Town("広岡", 3),
    Town("湊", 4), Town("金石西", 4),
    # 南部 (the south)
    Town("泉野町", 6), Town("有松", 5), Town("円光寺", 3), Town("笠舞", 3), Town("光が丘", 3),
    Town("窪", 7), Town("米泉町", 10), Town("西泉", 6), Town("新神田", 5), Town("増泉", 5),
    Town("平和町", 3), Town("久安", 6), Town("三馬", 3), Town("富樫", 3), Town("馬替", 3),
    Town("西金沢", 5), Town("八日市", 5), Town("高畠", 3), Town("入江", 3),
    # 東部・北部 (the east and the north)
    Town("鈴見台", 5), Town("太陽が丘", 3), Town("旭町", 3), Town("鳴和", 2), Town("崎浦町"),
    Town("高柳町"),
)

TOWN_NAMES: frozenset[str] = frozenset(t.name for t in TOWNS)
