"""Store API for 本人確認情報: current rows, history, 消除者, the 個人番号 registry and 送付先情報.

Every function takes an open :class:`sqlalchemy.Connection` inside a transaction the caller owns
(``with engine.begin() as conn``), so one message's changes, its inbox row and its outbox rows
commit together. All of them are blocking: call them from the store's thread pool
(:class:`~juki_gateway.registry_store.asyncstore.AsyncStore`), never on the reactor thread.
Hot paths (``apply_honnin_kakunin``, ``load_residents``) use Core ``executemany``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Table, delete, insert, select, update

from juki_gateway.registry_store.engine import StoreError
from juki_gateway.registry_store.models import (
    DeletedResident,
    HonninKakunin,
    HonninKakuninHistory,
    KojinBango,
    Soufusaki,
    table_of,
)

LOOKUP_FIELDS = (
    "juminhyo_code",
    "kojin_bango",
    "name_kanji",
    "seion_kana",
    "birth_date",
    "sex",
    "municipality_code",
    "address",
    "change_reason",
    "change_date",
    "seq",
    "record",
)
CURRENT_COLUMNS = (*LOOKUP_FIELDS, "history_no", "updated_at")
HISTORY_COLUMNS = (*LOOKUP_FIELDS, "history_no", "recorded_at", "superseded_at")


_TEMPORAL = frozenset({"birth_date", "change_date", "updated_at", "recorded_at", "superseded_at"})


def _sqlite_text(value: object) -> object:
    # The text formats SQLAlchemy's SQLite Date/DateTime types write and read back.
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _driver_params(
    conn: Connection, columns: Sequence[str], rows: list[dict[str, object]]
) -> list[tuple[object, ...]]:
    """Rows as DB-API parameter tuples; psycopg takes dates as they are, sqlite3 gets text."""
    if conn.dialect.name != "sqlite":
        return [tuple(r[c] for c in columns) for r in rows]
    temporal = [i for i, c in enumerate(columns) if c in _TEMPORAL]
    out: list[tuple[object, ...]] = []
    for r in rows:
        values = [r[c] for c in columns]
        for i in temporal:
            values[i] = _sqlite_text(values[i])
        out.append(tuple(values))
    return out


def _insert_many(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[dict[str, object]]
) -> None:
    """executemany INSERT straight on the driver: hot paths skip SQLAlchemy's per-row work."""
    if not rows:
        return
    q = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = (f"INSERT INTO {q(table.name)} ({', '.join(q(c) for c in columns)}) "
           f"VALUES ({', '.join([mark] * len(columns))})")
    conn.exec_driver_sql(sql, _driver_params(conn, columns, rows))


def _update_many(
    conn: Connection, table: Table, columns: Sequence[str], key: str,
    rows: list[dict[str, object]],
) -> None:
    """executemany UPDATE … WHERE key = ? straight on the driver."""
    if not rows:
        return
    q = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = (f"UPDATE {q(table.name)} SET {', '.join(f'{q(c)} = {mark}' for c in columns)} "
           f"WHERE {q(key)} = {mark}")
    conn.exec_driver_sql(sql, _driver_params(conn, (*columns, key), rows))


class SearchTooBroad(StoreError):
    """A 本人確認情報 search names fewer than two basic items and no identifier (R3)."""

    code = "search_too_broad"
    wire_code = 9110


class UnknownResident(StoreError):
    """No current 本人確認情報 has the given 住民票コード."""

    code = "unknown_resident"
    wire_code = 9111


class KojinBangoInUse(StoreError):
    """The 個人番号 is already assigned to another resident."""

    code = "kojin_bango_in_use"
    wire_code = 9112


@dataclass(frozen=True, slots=True)
class HonninKakuninRow:
    """The store's view of one 本人確認情報: lookup columns plus the raw fixed-length record."""

    juminhyo_code: str
    kojin_bango: str | None
    name_kanji: str
    seion_kana: str
    birth_date: dt.date
    sex: str
    municipality_code: str
    address: str
    change_reason: str
    change_date: dt.date
    seq: int
    record: bytes

    def as_params(self) -> dict[str, object]:
        """The row as bind parameters named like the columns."""
        return {name: getattr(self, name) for name in LOOKUP_FIELDS}


def _row(mapping: object) -> HonninKakuninRow:
    m = mapping._mapping  # type: ignore[attr-defined]
    return HonninKakuninRow(**{name: m[name] for name in LOOKUP_FIELDS})


def apply_honnin_kakunin(
    conn: Connection, rows: Sequence[HonninKakuninRow], now: dt.datetime
) -> list[int]:
    """Insert or update current rows; each replaced version moves to the history. Returns the
    version numbers (``history_no``) the rows got.

    Rows are applied in the given order, so when a batch holds several versions of one resident
    the last one becomes current (the newest copy wins) and the others go to the history.
    """
    if not rows:
        return []
    t = table_of(HonninKakunin)
    codes = list({r.juminhyo_code for r in rows})
    # The current version of each resident in the batch: (params, history_no, updated_at).
    state: dict[str, tuple[dict[str, object], int, dt.datetime]] = {}
    for start in range(0, len(codes), 500):
        chunk = codes[start : start + 500]
        for r in conn.execute(select(t).where(t.c.juminhyo_code.in_(chunk))):
            m = r._mapping
            state[r.juminhyo_code] = (
                {name: m[name] for name in LOOKUP_FIELDS}, r.history_no, r.updated_at)
    existing = set(state)
    history: list[dict[str, object]] = []
    numbers: list[int] = []
    for row in rows:
        old = state.get(row.juminhyo_code)
        if old is None:
            hno = 1
        else:
            params, old_no, became_current = old
            history.append({**params, "history_no": old_no, "recorded_at": became_current,
                            "superseded_at": now})
            hno = old_no + 1
        state[row.juminhyo_code] = (row.as_params(), hno, now)
        numbers.append(hno)
    touched = {r.juminhyo_code for r in rows}
    new_rows = [{**state[c][0], "history_no": state[c][1], "updated_at": now}
                for c in touched if c not in existing]
    upd_rows = [{**state[c][0], "history_no": state[c][1], "updated_at": now}
                for c in touched if c in existing]
    _insert_many(conn, table_of(HonninKakuninHistory), HISTORY_COLUMNS, history)
    _insert_many(conn, t, CURRENT_COLUMNS, new_rows)
    _update_many(conn, t, CURRENT_COLUMNS[1:], "juminhyo_code", upd_rows)
    return numbers


def load_residents(conn: Connection, rows: Iterable[HonninKakuninRow], now: dt.datetime) -> int:
    """Bulk-load residents that are not yet in the store (initial load); returns the count."""
    t = table_of(HonninKakunin)
    batch: list[dict[str, object]] = []
    total = 0
    for r in rows:
        p = r.as_params()
        p["history_no"] = 1
        p["updated_at"] = now
        batch.append(p)
        if len(batch) >= 10_000:
            _insert_many(conn, t, CURRENT_COLUMNS, batch)
            total += len(batch)
            batch = []
    _insert_many(conn, t, CURRENT_COLUMNS, batch)
    total += len(batch)
    return total


def get_current(conn: Connection, juminhyo_code: str) -> HonninKakuninRow | None:
    """The current 本人確認情報 of a resident, or None."""
    t = table_of(HonninKakunin)
    row = conn.execute(select(t).where(t.c.juminhyo_code == juminhyo_code)).first()
    return None if row is None else _row(row)


def find_by_kojin_bango(conn: Connection, kojin_bango: str) -> HonninKakuninRow | None:
    """The current resident holding a 個人番号, or None."""
    t = table_of(HonninKakunin)
    row = conn.execute(select(t).where(t.c.kojin_bango == kojin_bango)).first()
    return None if row is None else _row(row)


def search_residents(
    conn: Connection,
    *,
    name_kanji: str | None = None,
    seion_kana: str | None = None,
    birth_date: dt.date | None = None,
    address: str | None = None,
    limit: int = 100,
) -> list[HonninKakuninRow]:
    """Residents matching a name (kanji or 清音化かな) plus a birth date or an address (R3)."""
    if not (name_kanji or seion_kana) or (birth_date is None and not address):
        raise SearchTooBroad(
            "a search needs a name plus a birth date or an address (氏名+生年月日 or 氏名+住所)"
        )
    t = table_of(HonninKakunin)
    q = select(t)
    if name_kanji:
        q = q.where(t.c.name_kanji == name_kanji)
    if seion_kana:
        q = q.where(t.c.seion_kana == seion_kana)
    if birth_date is not None:
        q = q.where(t.c.birth_date == birth_date)
    if address:
        q = q.where(t.c.address == address)
    return [_row(r) for r in conn.execute(q.order_by(t.c.juminhyo_code).limit(limit))]


def history_of(
    conn: Connection, juminhyo_code: str
) -> list[tuple[int, dt.datetime, HonninKakuninRow]]:
    """Every kept version of a resident's 本人確認情報, oldest first, the current one last:
    (history no, when it became current, row)."""
    h = table_of(HonninKakuninHistory)
    rows = conn.execute(
        select(h).where(h.c.juminhyo_code == juminhyo_code).order_by(h.c.history_no)
    )
    out = [(r.history_no, r.recorded_at, _row(r)) for r in rows]
    t = table_of(HonninKakunin)
    cur = conn.execute(select(t).where(t.c.juminhyo_code == juminhyo_code)).first()
    if cur is not None:
        out.append((cur.history_no, cur.updated_at, _row(cur)))
    return out


def delete_resident(
    conn: Connection,
    juminhyo_code: str,
    *,
    deleted_on: dt.date,
    deceased: bool,
    now: dt.datetime,
    final: HonninKakuninRow | None = None,
) -> None:
    """Remove a resident (消除): the last version moves to 消除者; a dead resident's 個人番号 is kept.

    ``final`` is the 消除 record itself (異動事由 死亡, 転出 …); it is appended to the history first.
    """
    if final is not None:
        apply_honnin_kakunin(conn, [final], now)
    current = get_current(conn, juminhyo_code)
    if current is None:
        raise UnknownResident(f"no current 本人確認情報 for 住民票コード {juminhyo_code}")
    conn.execute(
        insert(table_of(DeletedResident)),
        [{**current.as_params(), "deleted_on": deleted_on, "deceased": deceased}],
    )
    t = table_of(HonninKakunin)
    conn.execute(delete(t).where(t.c.juminhyo_code == juminhyo_code))
    if deceased and current.kojin_bango:
        mark_deceased(conn, current.kojin_bango, deceased_on=deleted_on)


def register_kojin_bango(
    conn: Connection, kojin_bango: str, juminhyo_code: str, now: dt.datetime
) -> None:
    """Record a newly assigned 個人番号; a number is never given to a second resident."""
    k = table_of(KojinBango)
    row = conn.execute(select(k.c.juminhyo_code).where(k.c.kojin_bango == kojin_bango)).first()
    if row is not None:
        if row.juminhyo_code == juminhyo_code:
            return
        raise KojinBangoInUse(f"個人番号 {kojin_bango} is already assigned")
    conn.execute(
        insert(k),
        [{"kojin_bango": kojin_bango, "juminhyo_code": juminhyo_code, "status": "active",
          "assigned_at": now, "deceased_on": None}],
    )


def mark_deceased(conn: Connection, kojin_bango: str, *, deceased_on: dt.date) -> None:
    """Mark a 個人番号 as belonging to a dead resident; the number itself is kept (R10)."""
    k = table_of(KojinBango)
    conn.execute(
        update(k).where(k.c.kojin_bango == kojin_bango).values(status="deceased", deceased_on=deceased_on)
    )


def kojin_bango_status(conn: Connection, kojin_bango: str) -> str | None:
    """``active``, ``deceased`` or ``replaced`` for a known 個人番号, else None."""
    k = table_of(KojinBango)
    return conn.execute(select(k.c.status).where(k.c.kojin_bango == kojin_bango)).scalar_one_or_none()


def add_soufusaki(
    conn: Connection,
    soufusaki_no: str,
    juminhyo_code: str,
    kojin_bango: str | None,
    record: bytes,
    now: dt.datetime,
) -> None:
    """Store a 送付先情報 extracted from the existing system, not yet sent."""
    conn.execute(
        insert(table_of(Soufusaki)),
        [{"soufusaki_no": soufusaki_no, "juminhyo_code": juminhyo_code, "kojin_bango": kojin_bango,
          "created_at": now, "sent_at": None, "record": record}],
    )


def mark_soufusaki_sent(conn: Connection, soufusaki_no: str, sent_at: dt.datetime) -> None:
    """Record when a 送付先情報 was sent to card management (starts its one-business-day clock)."""
    s = table_of(Soufusaki)
    conn.execute(update(s).where(s.c.soufusaki_no == soufusaki_no).values(sent_at=sent_at))
