"""The 町名 of Kanazawa (金沢市) that the synthetic population's addresses use.

:data:`TOWNS` holds real 町名 in their official forms (金沢市 町名一覧: no 﨑 or 髙 where the
official name has 崎 or 高), each with its highest 丁目 to the best of the project's knowledge,
or none: :mod:`.population` writes ``N丁目N番N号`` for a town with 丁目 and a 番地 for one without.
"""

from __future__ import annotations

from dataclasses import dataclass


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
