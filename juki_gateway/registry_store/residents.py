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
from itertools import compress
from operator import itemgetter, ne
from typing import TypeVar

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
_K = TypeVar("_K")

#: The status of a 個人番号 (``kojin_bango.status``): its resident's own, a dead resident's
#: (kept, R10), or one a 個人番号変更 replaced with a new number (kept, never reused).
ACTIVE, DECEASED, REPLACED = "active", "deceased", "replaced"




def _sqlite_text(value: object) -> object:
    # The text formats SQLAlchemy's SQLite Date/DateTime types write and read back.
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _insert_many(
    conn: Connection, table: Table, columns: Sequence[str], params: list[tuple[object, ...]]
) -> None:
    """executemany INSERT of parameter tuples already in driver form."""
    if not params:
        return
    q = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO {q(table.name)} ({', '.join(q(c) for c in columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})", params)


def _update_many(
    conn: Connection, table: Table, columns: Sequence[str], key: str,
    params: list[tuple[object, ...]],
) -> None:
    """executemany UPDATE … SET columns WHERE key = ?, parameter tuples in driver form."""
    if not params:
        return
    q = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    conn.exec_driver_sql(
        f"UPDATE {q(table.name)} SET {', '.join(f'{q(c)} = {mark}' for c in columns)} "
        f"WHERE {q(key)} = {mark}", params)


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


def honnin_row(mapping: object) -> HonninKakuninRow:
    """A result row holding the LOOKUP_FIELDS columns, as a :class:`HonninKakuninRow`."""
    m = mapping._mapping  # type: ignore[attr-defined]
    return HonninKakuninRow(**{name: m[name] for name in LOOKUP_FIELDS})


def _driver_row(row: HonninKakuninRow, sqlite: bool) -> tuple[object, ...]:
    """The row's LOOKUP_FIELDS as driver parameters (dates as SQLAlchemy's SQLite text)."""
    if not sqlite:
        return (row.juminhyo_code, row.kojin_bango, row.name_kanji, row.seion_kana,
                row.birth_date, row.sex, row.municipality_code, row.address, row.change_reason,
                row.change_date, row.seq, row.record)
    birth, change = _DATE_TEXT.get(row.birth_date), _DATE_TEXT.get(row.change_date)
    return (row.juminhyo_code, row.kojin_bango, row.name_kanji, row.seion_kana,
            birth or _date_text(row.birth_date), row.sex, row.municipality_code, row.address,
            row.change_reason, change or _date_text(row.change_date), row.seq, row.record)


# SQLite text of the dates seen so far (at most one entry per calendar day: bounded by the
# range of birth and change dates, some 80,000 days), so a hot row costs no isoformat().
_DATE_TEXT: dict[dt.date, str] = {}


def _date_text(day: dt.date) -> str:
    text = _DATE_TEXT[day] = day.isoformat()
    return text


_SELECT_CHUNK = 900  # below SQLite's historic 999 bound-parameter limit

# The current table's columns that its lookup indexes cover: an UPDATE that does not SET them
# leaves those indexes alone, so they are SET only when their value changes.
INDEXED_FIELDS = ("kojin_bango", "name_kanji", "seion_kana", "birth_date")
_INDEXED_POS = tuple(LOOKUP_FIELDS.index(f) for f in INDEXED_FIELDS)
_PLAIN_POS = tuple(i for i in range(1, len(LOOKUP_FIELDS)) if i not in _INDEXED_POS)
_indexed_of = itemgetter(*_INDEXED_POS)
_plain_of = itemgetter(*_PLAIN_POS)


def _chunks(keys: list[_K]) -> Iterable[list[_K]]:
    for start in range(0, len(keys), _SELECT_CHUNK):
        yield keys[start : start + _SELECT_CHUNK]


def _current_keys(
    conn: Connection, codes: list[str], sqlite: bool
) -> dict[str, tuple[object, ...]]:
    """(address, history_no, *INDEXED_FIELDS) of the residents among ``codes`` that have a
    current row, as the driver returns them (compared with driver values, never
    type-processed). The address is the row's SQLite rowid, so that the history copy and the
    UPDATE go straight to the row instead of through the 住民票コード index; on PostgreSQL it is
    the 住民票コード itself."""
    q = conn.dialect.identifier_preparer.quote
    cols = ", ".join(q(c) for c in ("history_no", *INDEXED_FIELDS))
    table = q(table_of(HonninKakunin).name)
    cur = conn.connection.cursor()
    out: dict[str, tuple[object, ...]] = {}
    try:
        if sqlite:
            for chunk in _chunks(codes):
                cur.execute(f"SELECT juminhyo_code, rowid, {cols} FROM {table} WHERE "
                            f"juminhyo_code IN ({', '.join('?' * len(chunk))})", chunk)
                for r in cur.fetchall():
                    out[r[0]] = r[1:]
        else:
            cur.execute(f"SELECT juminhyo_code, juminhyo_code, {cols} FROM {table} "
                        "WHERE juminhyo_code = ANY(%s)", (codes,))
            for r in cur.fetchall():
                out[r[0]] = r[1:]
    finally:
        cur.close()
    return out


def _move_current_to_history(
    conn: Connection, addresses: list[object], stamp: object, sqlite: bool
) -> None:
    """Copy the current rows at ``addresses`` (see :func:`_current_keys`) into the history
    inside the database (the record bytes never travel through Python), superseded at
    ``stamp``."""
    if not addresses:
        return
    q = conn.dialect.identifier_preparer.quote
    src = ", ".join(q(c) for c in (*LOOKUP_FIELDS, "history_no", "updated_at"))
    dst = ", ".join(q(c) for c in HISTORY_COLUMNS)
    head = (f"INSERT INTO {q(table_of(HonninKakuninHistory).name)} ({dst}) "
            f"SELECT {src}, {{mark}} FROM {q(table_of(HonninKakunin).name)} ")
    cur = conn.connection.cursor()
    try:
        if sqlite:
            for chunk in _chunks(addresses):
                cur.execute(head.format(mark="?") + "WHERE rowid IN "
                            f"({', '.join('?' * len(chunk))})", (stamp, *chunk))
        else:
            cur.execute(head.format(mark="%s") + "WHERE juminhyo_code = ANY(%s)",
                        (stamp, addresses))
    finally:
        cur.close()


def apply_honnin_kakunin(
    conn: Connection, rows: Sequence[HonninKakuninRow], now: dt.datetime
) -> list[int]:
    """Insert or update current rows; each replaced version moves to the history. Returns the
    version numbers (``history_no``) the rows got.

    Rows are applied in the given order, so when a batch holds several versions of one resident
    the last one becomes current (the newest copy wins) and the others go to the history.

    The hot path of update notifications (called once per group-commit batch), so it works on
    driver tuples built once per row: one SELECT per 900 residents of their row addresses,
    version numbers and indexed columns; one INSERT … SELECT per 900 residents that copies their
    current rows into the (append-only) history inside the database; one executemany UPDATE
    per set of changed indexed columns, addressed by rowid on SQLite (the lookup indexes of
    unchanged columns are not touched); one executemany INSERT each for new residents and for
    versions superseded within the batch.
    """
    if not rows:
        return []
    sqlite = conn.dialect.name == "sqlite"
    stamp: object = _sqlite_text(now) if sqlite else now
    t = table_of(HonninKakunin)
    before = _current_keys(conn, list(dict.fromkeys([r.juminhyo_code for r in rows])), sqlite)
    # The newest version of each resident in the batch: (LOOKUP_FIELDS as driver values, no).
    state: dict[str, tuple[tuple[object, ...], int]] = {}
    superseded: list[tuple[object, ...]] = []  # versions replaced within this batch
    numbers: list[int] = []
    append = numbers.append
    for row in rows:
        code = row.juminhyo_code
        prev = state.get(code)
        if prev is not None:
            superseded.append((*prev[0], prev[1], stamp, stamp))
            hno = prev[1] + 1
        else:
            old = before.get(code)
            hno = 1 if old is None else old[1] + 1  # type: ignore[operator]
        state[code] = (_driver_row(row, sqlite), hno)
        append(hno)
    # Residents whose stored current row goes to the history, in row order (SQLite rowids
    # follow the table's physical order, so consecutive statements visit neighbouring pages).
    stored = sorted((before[code][0], code) for code in state if code in before)
    # History ids follow version order: stored versions first, then those of this batch.
    _move_current_to_history(conn, [address for address, _ in stored], stamp, sqlite)
    _insert_many(conn, table_of(HonninKakuninHistory), HISTORY_COLUMNS, superseded)
    # New residents in key order: consecutive inserts visit neighbouring leaves of the
    # 住民票コード index (the batch's own order only decided which version is the newest).
    if len(stored) < len(state):
        _insert_many(conn, t, CURRENT_COLUMNS, [
            (*values, hno, stamp) for code, (values, hno) in sorted(state.items())
            if code not in before])
    # One executemany per set of changed indexed columns, keyed by which of INDEXED_FIELDS
    # changed (a tuple of booleans, compared in C by map(ne, …)).
    groups: dict[tuple[bool, ...], list[tuple[object, ...]]] = {}
    for address, code in stored:
        values, hno = state[code]
        indexed = _indexed_of(values)
        changed = tuple(map(ne, indexed, before[code][2:]))
        params = groups.get(changed)
        if params is None:
            params = groups[changed] = []
        params.append((*compress(indexed, changed), *_plain_of(values), hno, stamp, address))
    plain = tuple(LOOKUP_FIELDS[p] for p in _PLAIN_POS)
    for changed, params in groups.items():
        _update_many(conn, t, (*compress(INDEXED_FIELDS, changed), *plain,
                               "history_no", "updated_at"),
                     "rowid" if sqlite else "juminhyo_code", params)
    return numbers


def load_residents(conn: Connection, rows: Iterable[HonninKakuninRow], now: dt.datetime) -> int:
    """Bulk-load residents that are not yet in the store (initial load); returns the count.

    Into an empty table the lookup indexes are dropped first and built once at the end, inside
    the same transaction (DDL is transactional on both engines): sorting once is several times
    faster than inserting 500k entries at random places in four B-trees.
    """
    t = table_of(HonninKakunin)
    empty = conn.execute(select(t.c.juminhyo_code).limit(1)).first() is None
    lookup_indexes = sorted(t.indexes, key=lambda i: str(i.name)) if empty else []
    for index in lookup_indexes:
        index.drop(conn)
    sqlite = conn.dialect.name == "sqlite"
    stamp: object = _sqlite_text(now) if sqlite else now
    batch: list[tuple[object, ...]] = []
    total = 0
    for r in rows:
        batch.append((*_driver_row(r, sqlite), 1, stamp))
        if len(batch) >= 10_000:
            _insert_many(conn, t, CURRENT_COLUMNS, batch)
            total += len(batch)
            batch = []
    _insert_many(conn, t, CURRENT_COLUMNS, batch)
    total += len(batch)
    for index in lookup_indexes:
        index.create(conn)
    return total


def get_current(conn: Connection, juminhyo_code: str) -> HonninKakuninRow | None:
    """The current 本人確認情報 of a resident, or None."""
    t = table_of(HonninKakunin)
    row = conn.execute(select(t).where(t.c.juminhyo_code == juminhyo_code)).first()
    return None if row is None else honnin_row(row)


def find_by_kojin_bango(conn: Connection, kojin_bango: str) -> HonninKakuninRow | None:
    """The current resident holding a 個人番号, or None."""
    t = table_of(HonninKakunin)
    row = conn.execute(select(t).where(t.c.kojin_bango == kojin_bango)).first()
    return None if row is None else honnin_row(row)


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
    return [honnin_row(r) for r in conn.execute(q.order_by(t.c.juminhyo_code).limit(limit))]


def history_of(
    conn: Connection, juminhyo_code: str
) -> list[tuple[int, dt.datetime, HonninKakuninRow]]:
    """Every kept version of a resident's 本人確認情報, oldest first, the current one last:
    (history no, when it became current, row)."""
    h = table_of(HonninKakuninHistory)
    rows = conn.execute(
        select(h).where(h.c.juminhyo_code == juminhyo_code).order_by(h.c.history_no)
    )
    out = [(r.history_no, r.recorded_at, honnin_row(r)) for r in rows]
    t = table_of(HonninKakunin)
    cur = conn.execute(select(t).where(t.c.juminhyo_code == juminhyo_code)).first()
    if cur is not None:
        out.append((cur.history_no, cur.updated_at, honnin_row(cur)))
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
        [{"kojin_bango": kojin_bango, "juminhyo_code": juminhyo_code, "status": ACTIVE,
          "assigned_at": now, "deceased_on": None}],
    )


def replace_kojin_bango(
    conn: Connection, old: str, new: str, juminhyo_code: str, *, on: dt.date, now: dt.datetime
) -> None:
    """A 個人番号変更 (番号法 7条2項): ``new`` becomes the resident's active number and ``old``,
    theirs until now, is kept, marked replaced on ``on`` (never given again). A store that
    never recorded ``old`` (a CS that did not ask for it) records ``new`` alone."""
    register_kojin_bango(conn, new, juminhyo_code, now)
    k = table_of(KojinBango)
    conn.execute(update(k).where(k.c.kojin_bango == old, k.c.juminhyo_code == juminhyo_code)
                 .values(status=REPLACED, replaced_on=on))


def kojin_bango_row(conn: Connection, kojin_bango: str) -> tuple[str, str] | None:
    """(住民票コード, status) of a known 個人番号, else None."""
    k = table_of(KojinBango)
    row = conn.execute(select(k.c.juminhyo_code, k.c.status)
                       .where(k.c.kojin_bango == kojin_bango)).first()
    return None if row is None else (row.juminhyo_code, row.status)


def mark_deceased(conn: Connection, kojin_bango: str, *, deceased_on: dt.date) -> None:
    """Mark a 個人番号 as belonging to a dead resident; the number itself is kept (R10)."""
    k = table_of(KojinBango)
    conn.execute(
        update(k).where(k.c.kojin_bango == kojin_bango).values(status=DECEASED, deceased_on=deceased_on)
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
