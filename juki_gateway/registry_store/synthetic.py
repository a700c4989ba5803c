"""Synthetic 本人確認情報 rows with valid check digits, for tests, benchmarks and demos.

Numbers derive from an integer ``n`` (no randomness, so runs are reproducible): 住民票コード is
the 10-digit ``n`` plus its mod-11 check digit, 個人番号 the 11-digit ``n`` plus its check digit.
"""

from __future__ import annotations

import datetime as dt

from juki_gateway.registry_store.residents import HonninKakuninRow

_JUMIN_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_KOJIN_WEIGHTS = (6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_SURNAMES = ("山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村")
GIVEN_NAMES = ("太郎", "花子", "一郎", "陽子", "健", "美咲", "翔", "結衣")
_KANA_S = ("ヤマダ", "サトウ", "スズキ", "タカハシ", "タナカ", "イトウ", "ワタナヘ", "ナカムラ")
_KANA_G = ("タロウ", "ハナコ", "イチロウ", "ヨウコ", "ケン", "ミサキ", "シヨウ", "ユイ")


def _check(digits: str, weights: tuple[int, ...]) -> str:
    r = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return "0" if r <= 1 else str(11 - r)


def juminhyo_code(n: int) -> str:
    """The 住民票コード built from ``n`` (10 digits + check digit)."""
    body = f"{n:010d}"
    return body + _check(body, _JUMIN_WEIGHTS)


def kojin_bango(n: int) -> str:
    """The 個人番号 built from ``n`` (11 digits + check digit)."""
    body = f"{n:011d}"
    return body + _check(body, _KOJIN_WEIGHTS)


def make_resident(
    n: int,
    *,
    seq: int = 1,
    address: str | None = None,
    change_date: dt.date = dt.date(2024, 4, 1),
    record_size: int = 512,
) -> HonninKakuninRow:
    """Resident ``n``: deterministic name, birth date and address; a ``record_size``-byte record."""
    s, g = n % len(_SURNAMES), (n // len(_SURNAMES)) % len(GIVEN_NAMES)
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=(n * 37) % 29_000)
    return HonninKakuninRow(
        juminhyo_code=juminhyo_code(n),
        kojin_bango=kojin_bango(n),
        name_kanji=_SURNAMES[s] + GIVEN_NAMES[g],
        seion_kana=_KANA_S[s] + _KANA_G[g],
        birth_date=birth,
        sex="1" if n % 2 else "2",
        municipality_code="172014",
        address=address or f"石川県金沢市広坂{n % 50 + 1}-{n % 7 + 1}-{n % 13 + 1}",
        change_reason="A01",
        change_date=change_date,
        seq=seq,
        record=(f"{n:011d}".encode() * (record_size // 11 + 1))[:record_size],
    )
