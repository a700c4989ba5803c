"""Blocking, batched store operations of the Juki-net links (run them on the store thread).

Uses the registry store's tables (current 本人確認情報 + history, outbox, inbox, 個人番号,
送付先, provision records) with batched statements: one frame of N records costs a handful of
``executemany`` calls, not N round trips, which is what lets group commit reach thousands of
durable notifications per second on SQLite. Two tables of the Juki-net links are defined here
(issued 住民票コード at 機構, the CS's pool of unused codes) and the link leases come from the
registry store's migrations like the rest.

Every function takes the caller's transaction (``Connection``): a frame's changes, its inbox row
and the outbox rows that forward it commit together, so an ACK sent after the commit is never
for something that can still be lost (R4).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from juki_gateway.codecs.errors import CodecError
from juki_gateway.protocols.jukinet.consistency import DIGEST_SIZE, Entry
from juki_gateway.protocols.jukinet.errors import (
    JuminhyoCodeChangeRefused,
    KojinBangoNotAuthentic,
    SoufusakiMismatch,
)
from juki_gateway.protocols.jukinet.layouts import (
    HONNIN_KAKUNIN,
    MOVE_IN_NOTICE,
    SOUFUSAKI,
    codec_of,
    decode_body,
    field_slice,
    link_error,
)
from juki_gateway.protocols.jukinet.records import (
    JUMINHYO_CODE_CHANGE,
    REMOVAL_REASONS,
    SHIBOU,
    TENSHUTSU,
    code_change_of,
    old_juminhyo_code,
)
from juki_gateway.protocols.jukinet.sequencing import OutRecord
from juki_gateway.registry_store.models import (
    CodePoolEntry,
    DeletedResident,
    HonninKakunin,
    InboxEntry,
    IssuedJuminhyoCode,
    KikoShoriTsuban,
    KojinBango,
    LinkLease,
    OutboxMessage,
    ProvisionRecord,
    SeqCounter,
    Soufusaki,
    TenshutsuShomei,
    table_of,
)
from juki_gateway.registry_store.queues import inbox_last_seq, insert_ignore, pending_outbox_row
from juki_gateway.registry_store.residents import (
    LOOKUP_FIELDS,
    REPLACED,
    HonninKakuninRow,
    apply_honnin_kakunin,
    get_current,
    honnin_row,
)

#: 住民票コード 機構 ever handed out (never reused).
issued_juminhyo_code = table_of(IssuedJuminhyoCode)

#: The CS's 転出証明書情報 of residents who moved out (特例転入 answers them).
tenshutsu_shomei = table_of(TenshutsuShomei)

#: The CS's pool of unused 住民票コード received from 機構.
code_pool = table_of(CodePoolEntry)

#: 機構's (住民票コード, 処理通番) pairs, kept until the network has taken them.
kiko_shori_tsuban = table_of(KikoShoriTsuban)

_J_SLICE = field_slice(HONNIN_KAKUNIN, "juminhyo_code")
_SOUFUSAKI_NO = field_slice(SOUFUSAKI, "soufusaki_no")
_HK_OPERATOR = field_slice(HONNIN_KAKUNIN, "operator_id")
_HK_TERMINAL = field_slice(HONNIN_KAKUNIN, "terminal_id")
_SF_OPERATOR = field_slice(SOUFUSAKI, "operator_id")
_SF_TERMINAL = field_slice(SOUFUSAKI, "terminal_id")
_SF_JUMINHYO = field_slice(SOUFUSAKI, "juminhyo_code")


@functools.lru_cache(maxsize=1 << 16)
def _date(s: str) -> dt.date:
    # validated YYYYMMDD; dates repeat (birth dates, the day's changes), so they are cached
    return dt.date(int(s[:4]), int(s[4:6]), int(s[6:8]))


def row_from_record(record: bytes, seq: int) -> HonninKakuninRow:
    """The store row of one 本人確認情報 (validated once by the codec's fast path; the lookup
    columns come from the decoded items, the record itself is kept byte for byte)."""
    return row_from_items(decode_body(HONNIN_KAKUNIN, record), record, seq)


def rows_from_records(records: Sequence[bytes], first_seq: int) -> list[HonninKakuninRow]:
    """The store rows of a frame's records numbered from ``first_seq`` (each validated once by
    the codec's fast path); a refusal names the record's index in the frame.

    The per-record loop of every hop's reactor thread: names are bound once per frame and the
    row is built positionally from the decoded items (what :func:`row_from_items` does)."""
    decode = codec_of(HONNIN_KAKUNIN).decode
    date, row = _date, HonninKakuninRow
    rows: list[HonninKakuninRow] = []
    append = rows.append
    for i, r in enumerate(records):
        try:
            v = decode(r)
        except CodecError as exc:
            raise link_error(exc.located(record=i)) from None
        append(row(v["juminhyo_code"], v["kojin_bango"], v["kanji_name"], v["seion_kana_name"],
                   date(v["birth_date"]), v["sex"], v["lg_code"], v["address"],
                   v["change_reason"], date(v["change_date"]), first_seq + i, r))
    return rows


def row_from_items(v: dict[str, object], record: bytes, seq: int) -> HonninKakuninRow:
    """The store row of one decoded 本人確認情報 (``v``: the codec's items of ``record``)."""
    return HonninKakuninRow(
        juminhyo_code=str(v["juminhyo_code"]),
        kojin_bango=v["kojin_bango"],  # type: ignore[arg-type]
        name_kanji=str(v["kanji_name"]),
        seion_kana=str(v["seion_kana_name"]),
        birth_date=_date(str(v["birth_date"])),
        sex=str(v["sex"]),
        municipality_code=str(v["lg_code"]),
        address=str(v["address"]),
        change_reason=str(v["change_reason"]),
        change_date=_date(str(v["change_date"])),
        seq=seq,
        record=record,
    )


# -- sequenced links: inbox and outbox -------------------------------------------------------------


def last_applied(conn: Connection, receiver: str, sender: str) -> int:
    """The highest 更新順番号 ``receiver`` applied from ``sender``."""
    return inbox_last_seq(conn, receiver, sender)


class OutOfOrderCommit(Exception):
    """A frame's work reached the store out of order (an earlier frame's commit failed)."""


def check_next(conn: Connection, receiver: str, sender: str, first_seq: int) -> None:
    """Refuse to apply unless ``first_seq`` follows what the store has applied from ``sender``.

    The reactor-side sequencer already ensures this while commits succeed; after a failed
    commit, work queued behind it must not slip in, so the store itself is the last word.
    """
    if conn.dialect.name == "postgresql":
        # Instances sharing the store serialize per (receiver, sender): the second waits for the
        # first's commit, then (READ COMMITTED) sees its inbox row below.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                     {"k": f"inbox:{receiver}:{sender}"})
    applied = inbox_last_seq(conn, receiver, sender)
    if applied != first_seq - 1:
        raise OutOfOrderCommit(
            f"{receiver}: {sender} frame from 更新順番号 {first_seq} but {applied} is applied")


def record_applied(
    conn: Connection, receiver: str, sender: str, last_seq: int, msg_type: int, now: dt.datetime
) -> None:
    """Note that everything up to ``last_seq`` from ``sender`` is applied (one row per frame)."""
    conn.execute(
        insert(table_of(InboxEntry)),
        [{"receiver": receiver, "sender": sender, "seq": last_seq, "msg_type": msg_type,
          "applied_at": now}],
    )


def enqueue(
    conn: Connection, link: str, msg_type: int, records: Sequence[bytes], now: dt.datetime
) -> list[OutRecord]:
    """Number ``records`` with the link's next 更新順番号 and put them in the outbox.

    The run goes in as ONE outbox row (``seq`` = its first number, ``frame`` = the records
    back to back, all of the message type's record length, compressed: see :func:`pack_run`):
    one B-tree insert per frame instead of one per record.
    """
    if not records:
        return []
    c = table_of(SeqCounter)
    stmt = select(c.c.next_seq).where(c.c.link == link)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    first = conn.execute(stmt).scalar_one_or_none()
    if first is None:
        first = 1
        conn.execute(insert(c), [{"link": link, "next_seq": 1 + len(records)}])
    else:
        conn.execute(update(c).where(c.c.link == link).values(next_seq=first + len(records)))
    out = [OutRecord(first + i, msg_type, r) for i, r in enumerate(records)]
    run = b"".join(records)
    if len(run) != _record_length(msg_type) * len(records):
        raise ValueError(f"outbox run of message type 0x{msg_type:04X} holds records of another length")
    run = pack_run(run)
    if conn.dialect.name == "sqlite":
        ts = _sqlite_ts(now)
        conn.exec_driver_sql(_OUTBOX_SQL, [(link, first, msg_type, run, ts, ts)])
        return out
    conn.execute(insert(table_of(OutboxMessage)),
                 [pending_outbox_row(link, first, msg_type, run, now)])
    return out


def _record_length(msg_type: int) -> int:
    from juki_gateway.protocols.jukinet.messages import record_lengths

    n = record_lengths().get(msg_type, 0)
    if n <= 0:
        raise ValueError(f"message type 0x{msg_type:04X} carries no records")
    return n


#: Marks a compressed outbox run (a stored run of records starts with its first record, whose
#: first field is an ASCII number in every sequenced layout, never with this marker).
_PACKED = b"\x00JZ1"


def pack_run(run: bytes) -> bytes:
    """The stored form of an outbox run: zlib level 1 behind a marker.

    Fixed-length records are mostly padding (U+3000 in the text fields, spaces, zeros): a run
    of 本人確認情報 shrinks ~18× for ~2.5 µs of CPU per record. Every forwarding hop writes
    each run once into the WAL, once more into the database file at the checkpoint, and frees
    its pages at the ACK; at thousands of notifications per second those bytes were a third of
    what a prefecture wrote to disk.
    """
    return _PACKED + zlib.compress(run, 1)


def unpack_run(stored: bytes) -> bytes:
    """The records of a stored outbox run (runs stored uncompressed are returned as they are)."""
    if stored[:len(_PACKED)] == _PACKED:
        return zlib.decompress(stored[len(_PACKED):])
    return bytes(stored)


def _split(seq: int, msg_type: int, stored: bytes) -> list[OutRecord]:
    """The records of one outbox row, numbered from its ``seq``."""
    n = _record_length(msg_type)
    run = unpack_run(stored)
    return [OutRecord(seq + i, msg_type, run[k:k + n]) for i, k in enumerate(range(0, len(run), n))]


def _run_start(conn: Connection, link: str, number: int) -> int | None:
    """The first number of the outbox row holding ``number`` (or the last row before it)."""
    o = table_of(OutboxMessage)
    start = conn.execute(
        select(func.max(o.c.seq)).where(o.c.link == link, o.c.seq <= number)
    ).scalar_one_or_none()
    return None if start is None else int(start)


def load_outbox(conn: Connection, link: str) -> tuple[int, list[OutRecord]]:
    """(last acknowledged 更新順番号, unacknowledged records in order) of a link.

    A row only partly acknowledged comes back whole: its acknowledged head is resent and the
    peer acknowledges it again as a duplicate.
    """
    o = table_of(OutboxMessage)
    rows = conn.execute(
        select(o.c.seq, o.c.msg_type, o.c.frame)
        .where(o.c.link == link, o.c.state == "pending")
        .order_by(o.c.seq)
    ).all()
    if rows:
        out: list[OutRecord] = []
        for r in rows:
            out += _split(int(r.seq), int(r.msg_type), r.frame)
        return int(rows[0].seq) - 1, out
    c = table_of(SeqCounter)
    nxt = conn.execute(select(c.c.next_seq).where(c.c.link == link)).scalar_one_or_none()
    return (int(nxt) - 1 if nxt is not None else 0), []


def outbox_after(conn: Connection, link: str, after: int, limit: int = 5000) -> list[OutRecord]:
    """Outbox records of ``link`` numbered after ``after``, in order (another instance may have
    queued them; at most ``limit`` outbox rows are read); numbers are handed out under the
    counter's row lock, so what is visible is a gap-free run."""
    o = table_of(OutboxMessage)
    start = _run_start(conn, link, after + 1)
    rows = conn.execute(
        select(o.c.seq, o.c.msg_type, o.c.frame)
        .where(o.c.link == link, o.c.seq >= (start if start is not None else after + 1))
        .order_by(o.c.seq).limit(limit)
    ).all()
    out: list[OutRecord] = []
    for r in rows:
        out += [rec for rec in _split(int(r.seq), int(r.msg_type), r.frame) if rec.seq > after]
    return out


def take_lease(conn: Connection, link: str, holder: str, now: dt.datetime, until: dt.datetime) -> bool:
    """Take or renew the lease on ``link`` for ``holder`` until ``until``; False while another
    holder's lease has not expired at ``now``."""
    t = table_of(LinkLease)
    if insert_ignore(conn, t, {"link": link, "holder": holder, "expires_at": until}):
        return True
    res = conn.execute(
        update(t).where(t.c.link == link, or_(t.c.holder == holder, t.c.expires_at < now))
        .values(holder=holder, expires_at=until)
    )
    return int(res.rowcount) == 1


def settle(conn: Connection, link: str, upto: int, now: dt.datetime) -> int:
    """Drop the outbox rows of ``link`` whose records are all acknowledged up to ``upto``: they
    are durable at the next hop (and the records stay in this node's own file). Deleting is
    cheaper than rewriting each row with a new state and keeps the outbox as small as what is
    in flight; the link's sequence counter still says what was numbered. A row acknowledged only
    in part stays until the rest is. ``now`` is unused (callers settle at a given time).

    A row's last number is the next row's first minus one (a link's numbers are handed out
    without gaps, one row per run), or, for the newest row, the counter's next number minus one.
    """
    o = table_of(OutboxMessage)
    start = _run_start(conn, link, upto + 1)
    if start is None:
        return 0
    following = conn.execute(
        select(func.min(o.c.seq)).where(o.c.link == link, o.c.seq > start)
    ).scalar_one_or_none()
    if following is None:
        c = table_of(SeqCounter)
        following = conn.execute(select(c.c.next_seq).where(c.c.link == link)).scalar_one()
    last = int(following) - 1
    keep_from = start if last > upto else start + 1
    res = conn.execute(delete(o).where(o.c.link == link, o.c.seq < keep_from))
    return int(res.rowcount)


def mark_answered(conn: Connection, link: str, upto: int) -> None:
    """Note that the records of ``link`` up to ``upto`` were handed out (a link whose peer
    fetches: only those may be acknowledged). Kept in the rows' ``attempts``: a row starting at
    ``seq`` gets ``upto - seq + 1``, so :func:`answered_upto` reads ``upto`` back."""
    o = table_of(OutboxMessage)
    reach = upto - o.c.seq + 1
    conn.execute(update(o).where(o.c.link == link, o.c.seq <= upto, o.c.attempts < reach)
                 .values(attempts=reach))


def awaiting_fetch(conn: Connection) -> dict[str, tuple[int, dt.datetime | None]]:
    """Per link whose peer fetches (a CS's 転入通知 for its existing system, ``cs-X>kizon-juki``;
    a prefecture's for a CS of its own it has no link to, ``pref-N>cs-X``): how many records are
    not yet acknowledged (numbered from the oldest kept row on; a row acknowledged in part counts
    whole) and when the oldest kept row was queued."""
    o, c = table_of(OutboxMessage), table_of(SeqCounter)
    rows = conn.execute(
        select(o.c.link, func.min(o.c.seq), func.min(o.c.created_at), c.c.next_seq)
        .join(c, c.c.link == o.c.link)
        .where(o.c.state == "pending", o.c.link.like("%>%"))
        .group_by(o.c.link, c.c.next_seq)).all()
    return {str(r[0]): (int(r[3]) - int(r[1]), r[2]) for r in rows}


def answered_upto(conn: Connection, link: str) -> int:
    """The last number of ``link`` handed out (:func:`mark_answered`) and not yet settled, else
    the last number settled; 0 when nothing was ever handed out."""
    o = table_of(OutboxMessage)
    found = conn.execute(select(func.max(o.c.seq + o.c.attempts - 1)).where(
        o.c.link == link, o.c.attempts > 0)).scalar_one_or_none()
    if found is not None:
        return int(found)
    oldest = conn.execute(select(func.min(o.c.seq)).where(o.c.link == link)).scalar_one_or_none()
    if oldest is not None:
        return int(oldest) - 1  # everything before the oldest kept row was settled
    c = table_of(SeqCounter)
    following = conn.execute(select(c.c.next_seq).where(c.c.link == link)).scalar_one_or_none()
    return int(following) - 1 if following is not None else 0


def settle_soufusaki(conn: Connection, records: Sequence[bytes], now: dt.datetime) -> None:
    """Start the one-business-day clock of 送付先 records 機構 acknowledged (R9)."""
    s = table_of(Soufusaki)
    for r in records:
        conn.execute(
            update(s).where(s.c.soufusaki_no == r[_SOUFUSAKI_NO].decode("ascii")).values(sent_at=now)
        )


# -- applying what arrives ---------------------------------------------------------------------------


_OUTBOX_SQL = (
    "INSERT INTO outbox (link, seq, msg_type, frame, state, attempts, next_try_at, claimed_by, "
    "created_at, sent_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, NULL, ?, NULL)"
)


def _sqlite_ts(t: dt.datetime) -> str:
    # SQLAlchemy's storage format for DateTime on SQLite, so ORM readers see the same values.
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


#: Where a 本人確認情報 record carries its タイムスタンプ (item 36, 14 ASCII digits).
_HK_TIMESTAMP = field_slice(HONNIN_KAKUNIN, "timestamp")


def stale_rows(conn: Connection, rows: Sequence[HonninKakuninRow]) -> set[int]:
    """The rows (by index) older than the person's version from another municipality.

    Where updates about one person arrive from several senders (a prefecture from several CSs,
    機構 from several prefectures), they may arrive out of their real order: the old
    municipality's 転出 after the new one's 転入. A row from another municipality than the
    person's current version, whose (異動年月日, タイムスタンプ) is earlier than that version's,
    is stale: it must not become current, nor delete the person (a late 転出 would remove
    someone who has already moved in elsewhere). Rows of one municipality keep their sender's
    order. A 国内転出 from another municipality dated on or before the current version is stale
    whatever its タイムスタンプ: one leaves before one arrives, and the old municipality's 消除
    is made at 転出確定, after the new one's 転入 (docs/moves.md). A 住民票コード変更 is never
    stale (it is refused or applied as such)."""
    t = table_of(HonninKakunin)
    start = _HK_TIMESTAMP.start + 1  # SQL substr is 1-based
    width = _HK_TIMESTAMP.stop - _HK_TIMESTAMP.start
    codes = sorted({r.juminhyo_code for r in rows})
    state: dict[str, tuple[str, dt.date, bytes]] = {}
    for i in range(0, len(codes), 500):
        q = select(t.c.juminhyo_code, t.c.municipality_code, t.c.change_date,
                   func.substr(t.c.record, start, width).label("ts")).where(
            t.c.juminhyo_code.in_(codes[i:i + 500]))
        for r in conn.execute(q):
            state[r.juminhyo_code] = (r.municipality_code, r.change_date, bytes(r.ts))
    stale: set[int] = set()
    for i, row in enumerate(rows):
        ts = row.record[_HK_TIMESTAMP]
        now = state.get(row.juminhyo_code)
        if (now is not None and row.change_reason != JUMINHYO_CODE_CHANGE
                and row.municipality_code != now[0] and (
                    (row.change_date, ts) < now[1:]
                    or (row.change_reason == TENSHUTSU and row.change_date <= now[1]))):
            stale.add(i)
            continue
        state[row.juminhyo_code] = (row.municipality_code, row.change_date, ts)
    return stale


def apply_rows(conn: Connection, rows: Sequence[HonninKakuninRow], now: dt.datetime,
               *, across_senders: bool = False) -> set[int]:
    """Apply 本人確認情報 rows in order (the registry store's batched apply: superseded
    versions move to the history, the newest becomes current); a resident whose newest row in
    the batch is a 消除 (転出, 死亡 …) then leaves the current file for the 消除者 table
    (``delete_resident``: the 消除 record kept as the last version, a dead resident's 個人番号
    marked deceased). A 住民票コード変更 (:func:`change_juminhyo_code`) takes effect in its place:
    the rows before it are applied, then the change, then the rows after it.

    Raises :class:`JuminhyoCodeChangeRefused` (the caller's transaction is then rolled back)
    for a 住民票コード変更 this file cannot take, or a record of a 住民票コード one retired.

    ``across_senders`` (a prefecture, 機構): rows :func:`stale_rows` finds are not applied; their
    indexes are returned (the caller records them as received but superseded)."""
    stale = stale_rows(conn, rows) if across_senders else set()
    index_of = [i for i in range(len(rows)) if i not in stale]  # refusals name frame indexes
    if stale:
        rows = [rows[i] for i in index_of]
    changes = [i for i, r in enumerate(rows) if r.change_reason == JUMINHYO_CODE_CHANGE]
    start = 0
    for i in changes:
        _apply_run(conn, rows[start:i], index_of[start] if start < len(rows) else start, now)
        change_juminhyo_code(conn, rows[i], index_of[i], now)
        start = i + 1
    if start < len(rows):
        _apply_run(conn, rows[start:] if start else rows, index_of[start], now)
    return stale


def _apply_run(conn: Connection, rows: Sequence[HonninKakuninRow], first_index: int,
               now: dt.datetime) -> None:
    """Apply rows holding no 住民票コード変更 (``first_index``: the first one's index in the frame)."""
    if not rows:
        return
    newest = {r.juminhyo_code: r for r in rows}
    _restore_deleted(conn, rows, first_index, now)
    apply_honnin_kakunin(conn, rows, now)
    removed = [r for r in newest.values() if r.change_reason in REMOVAL_REASONS]
    if removed:
        delete_residents(conn, removed)


def change_juminhyo_code(conn: Connection, row: HonninKakuninRow, index: int,
                         now: dt.datetime) -> None:
    """Apply one 住民票コード変更 (``row``: its record, the new code in item 1 and the old in
    item 24; ``index``: its place in the frame, for a refusal): the old code leaves the current
    file for the 消除者 table, with this record as its last version (so its history stays under
    it, its 異動事由 saying why, and nothing finds it as current any more); every 個人番号 of the
    person moves to the new code; the record becomes the new code's first version.

    Refused (:class:`JuminhyoCodeChangeRefused`) unless the old code is a current resident of
    this file and the new code is neither current nor a 消除者 here."""
    old = code_change_of(index, row.juminhyo_code, row.record)
    if get_current(conn, old) is None:
        raise JuminhyoCodeChangeRefused(
            f"record {index}: its 旧住民票コード is not a current resident of this file")
    if _code_in_file(conn, row.juminhyo_code):
        raise JuminhyoCodeChangeRefused(
            f"record {index}: its new 住民票コード is already used in this file")
    final = dataclasses.replace(row, juminhyo_code=old)
    apply_honnin_kakunin(conn, [final], now)
    delete_residents(conn, [final])
    k = table_of(KojinBango)
    conn.execute(update(k).where(k.c.juminhyo_code == old).values(juminhyo_code=row.juminhyo_code))
    apply_honnin_kakunin(conn, [row], now)


def retired_juminhyo_code(conn: Connection, code: str) -> bool:
    """Whether a 住民票コード変更 retired this 住民票コード here (it is a 消除者 for that reason)."""
    d = table_of(DeletedResident)
    return conn.execute(select(d.c.juminhyo_code).where(
        d.c.juminhyo_code == code, d.c.change_reason == JUMINHYO_CODE_CHANGE)).first() is not None


def _code_in_file(conn: Connection, code: str) -> bool:
    """Whether a 住民票コード is current or a 消除者 in this file."""
    return any(conn.execute(select(t.c.juminhyo_code).where(t.c.juminhyo_code == code)).first()
               is not None for t in (table_of(HonninKakunin), table_of(DeletedResident)))


def delete_residents(conn: Connection, finals: Sequence[HonninKakuninRow]) -> None:
    """The batched form of ``residents.delete_resident`` for residents whose 消除 record
    (``finals``, already applied) is current: each current row moves to 消除者 with its
    異動年月日 as the deletion day, and a dead resident's 個人番号 is marked deceased (R10).
    Three driver-level executemany statements for the whole batch instead of three round trips
    per person (the hot path of update notifications: no per-row SQL compilation)."""
    sqlite = conn.dialect.name == "sqlite"
    q = conn.dialect.identifier_preparer.quote
    mark = "?" if sqlite else "%s"
    cols = ", ".join(q(c) for c in LOOKUP_FIELDS)
    d, t, k = (q(x.__tablename__) for x in (DeletedResident, HonninKakunin, KojinBango))

    def day(v: dt.date) -> object:
        return v.isoformat() if sqlite else v  # SQLAlchemy's Date text on SQLite

    conn.exec_driver_sql(
        f"INSERT INTO {d} ({cols}, deleted_on, deceased) SELECT {cols}, {mark}, {mark} "
        f"FROM {t} WHERE juminhyo_code = {mark}",
        [(day(r.change_date), r.change_reason == SHIBOU, r.juminhyo_code) for r in finals])
    conn.exec_driver_sql(f"DELETE FROM {t} WHERE juminhyo_code = {mark}",
                         [(r.juminhyo_code,) for r in finals])
    dead = [("deceased", day(r.change_date), r.kojin_bango)
            for r in finals if r.change_reason == SHIBOU and r.kojin_bango]
    if dead:
        conn.exec_driver_sql(
            f"UPDATE {k} SET status = {mark}, deceased_on = {mark} WHERE kojin_bango = {mark}", dead)


def _restore_deleted(conn: Connection, rows: Sequence[HonninKakuninRow], first_index: int,
                     now: dt.datetime) -> None:
    """消除者 who are written again (転入 back, 職権記載 …) return to the current file first, as
    their next version, so the new record supersedes their 消除 record like any other change
    and the history keeps one numbering per 住民票コード. A code a 住民票コード変更 retired never
    returns: its record is refused (:class:`JuminhyoCodeChangeRefused`, naming the record's
    index in the frame, ``first_index`` being that of ``rows[0]``).

    Runs for every batch of update notifications, and almost always finds nobody: the probe is
    one driver-level ``IN`` query per 900 codes (keys only); the rare returning resident is then
    handled row by row."""
    from juki_gateway.registry_store.models import HonninKakuninHistory

    d, h, t = table_of(DeletedResident), table_of(HonninKakuninHistory), table_of(HonninKakunin)
    codes = list(dict.fromkeys(r.juminhyo_code for r in rows))
    sqlite = conn.dialect.name == "sqlite"
    found: list[str] = []
    if sqlite:
        for i in range(0, len(codes), 900):
            chunk = codes[i:i + 900]
            found += [r[0] for r in conn.exec_driver_sql(
                f"SELECT juminhyo_code FROM deleted_resident WHERE juminhyo_code IN "
                f"({', '.join('?' * len(chunk))})", tuple(chunk))]
    elif codes:
        found = [r[0] for r in conn.exec_driver_sql(
            "SELECT juminhyo_code FROM deleted_resident WHERE juminhyo_code = ANY(%s)", (codes,))]
    if not found:
        return
    back = conn.execute(select(d).where(d.c.juminhyo_code.in_(found))).all()
    for row in back:
        m = row._mapping
        if m["change_reason"] == JUMINHYO_CODE_CHANGE:
            index = first_index + next(i for i, r in enumerate(rows)
                                       if r.juminhyo_code == m["juminhyo_code"])
            raise JuminhyoCodeChangeRefused(
                f"record {index}: its 住民票コード was retired by a 住民票コード変更")
        last = conn.execute(select(func.max(h.c.history_no))
                            .where(h.c.juminhyo_code == m["juminhyo_code"])).scalar_one_or_none()
        conn.execute(insert(t), [{**{c: m[c] for c in LOOKUP_FIELDS},
                                  "history_no": int(last or 0) + 1, "updated_at": now}])
        conn.execute(delete(d).where(d.c.juminhyo_code == m["juminhyo_code"]))


def store_soufusaki(conn: Connection, records: Sequence[bytes], now: dt.datetime,
                    numbers: Sequence[str] | None = None) -> None:
    """Keep 送付先 records (on the CS until sent; at 機構's card management as received, with
    ``numbers``: the 個人番号 to print, from 機構's own record)."""
    rows = []
    for i, r in enumerate(records):
        v = decode_body(SOUFUSAKI, r)
        rows.append({"soufusaki_no": v["soufusaki_no"], "juminhyo_code": v["juminhyo_code"],
                     "kojin_bango": numbers[i] if numbers is not None else v["kojin_bango"],
                     "created_at": now, "sent_at": None, "record": r})
    if rows:
        conn.execute(insert(table_of(Soufusaki)), rows)


def provision_row(
    *, kind: str, provider: str, recipient: str, subject: str, items: str, outcome: str,
    detail: str, now: dt.datetime, operator: str | None = None, terminal: str | None = None,
) -> dict[str, Any]:
    """One 情報提供等記録 row (R5) for :func:`record_provisions`."""
    return {"occurred_at": now, "kind": kind, "provider": provider, "recipient": recipient,
            "operator_id": operator or None, "terminal_id": terminal or None,
            "subject": subject[:20], "items": items, "outcome": outcome, "detail": detail}


def record_provisions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert 情報提供等記録 rows in one statement (a frame's records at once)."""
    if rows:
        conn.execute(insert(table_of(ProvisionRecord)), [dict(r) for r in rows])


def _generated_numbers(conn: Connection, codes: Sequence[str]) -> dict[str, str]:
    """The 個人番号 機構 generated for each of ``codes`` that still holds one (active, or a
    dead resident's): a number replaced by a 個人番号変更 is no longer that person's."""
    k = table_of(KojinBango)
    found: dict[str, str] = {}
    wanted = sorted(set(codes))
    for i in range(0, len(wanted), 500):
        chunk = wanted[i:i + 500]
        rows = conn.execute(select(k.c.juminhyo_code, k.c.kojin_bango)
                            .where(k.c.juminhyo_code.in_(chunk), k.c.status != REPLACED))
        found.update((r.juminhyo_code, r.kojin_bango) for r in rows)
    return found


def seed_generated_numbers(conn: Connection, pairs: Mapping[str, str], now: dt.datetime) -> int:
    """Record 個人番号 as generated by this 機構 in the past (``pairs``: 住民票コード → number),
    for simulated populations that existed before a run; skips codes that already have one and
    numbers already given to someone else. Returns how many were added."""
    k = table_of(KojinBango)
    known = _generated_numbers(conn, list(pairs))
    wanted = {c: n for c, n in pairs.items() if c not in known}
    taken: set[str] = set()
    numbers = sorted(wanted.values())
    for i in range(0, len(numbers), 500):
        taken.update(conn.execute(select(k.c.kojin_bango).where(
            k.c.kojin_bango.in_(numbers[i:i + 500]))).scalars())
    rows = [{"kojin_bango": n, "juminhyo_code": c, "status": "active", "assigned_at": now,
             "deceased_on": None} for c, n in wanted.items() if n not in taken]
    if rows:
        conn.execute(insert(k), rows)
    return len(rows)


def check_kojin_bango(conn: Connection, rows: Sequence[HonninKakuninRow]) -> None:
    """機構's authenticity check (III(2)2 リスク3): every 個人番号 a record carries must be the one
    this store generated for its person: for the 住民票コード it was registered under before
    the frame (:func:`number_owners`: a 住民票コード変更 in the frame moves it). Raises
    :class:`KojinBangoNotAuthentic` naming the first bad record's index in the frame (never
    the numbers)."""
    given = [i for i, r in enumerate(rows) if r.kojin_bango]
    if not given:
        return
    owners = number_owners(rows)
    generated = _generated_numbers(conn, [owners[i] for i in given])
    for i in given:
        if generated.get(owners[i]) != rows[i].kojin_bango:
            raise KojinBangoNotAuthentic(
                f"record {i}: its 個人番号 is not the one 機構 generated for its 住民票コード")


def number_owners(rows: Sequence[HonninKakuninRow]) -> list[str]:
    """For each row of a frame, the 住民票コード its person's 個人番号 is registered under before
    the frame is applied: its own, except after a 住民票コード変更 earlier in the frame (or in
    the row itself) gave the person this code, when it is the code that change replaced (a
    chain of changes followed back to its start)."""
    if not any(r.change_reason == JUMINHYO_CODE_CHANGE for r in rows):
        return [r.juminhyo_code for r in rows]
    was: dict[str, str] = {}  # new code → the code its number is under before the frame
    owners: list[str] = []
    for r in rows:
        if r.change_reason == JUMINHYO_CODE_CHANGE:
            old = old_juminhyo_code(r.record)
            if old is not None and old != r.juminhyo_code:
                was[r.juminhyo_code] = was.get(old, old)
        owners.append(was.get(r.juminhyo_code, r.juminhyo_code))
    return owners


#: The 基本4情報 as a 送付先 record and a 本人確認情報 record name them.
_SOUFUSAKI_BASIC4 = (("kanji_name", "氏名"), ("birth_date", "生年月日"), ("sex", "性別"),
                     ("address", "住所"))


def check_soufusaki(conn: Connection, records: Sequence[bytes]) -> list[str]:
    """機構's checks of 送付先 before card issuance (III(3)2): the 個人番号 is the one it
    generated, and the 基本4情報 equal its 本人確認情報 of that person. Returns, per record,
    the 個人番号 to print on the card (機構's own); raises :class:`KojinBangoNotAuthentic` or
    :class:`SoufusakiMismatch` naming the record and the differing items (never values)."""
    decoded = [decode_body(SOUFUSAKI, r) for r in records]
    codes = [str(v["juminhyo_code"]) for v in decoded]
    generated = _generated_numbers(conn, codes)
    numbers: list[str] = []
    for i, v in enumerate(decoded):
        code = str(v["juminhyo_code"])
        number = generated.get(code)
        given = v["kojin_bango"]
        if number is None or (given and given != number):
            raise KojinBangoNotAuthentic(
                f"送付先 record {i}: its 個人番号 is not one 機構 generated for its 住民票コード")
        current = get_current(conn, code)
        if current is None:
            raise SoufusakiMismatch(f"送付先 record {i}: 機構 has no 本人確認情報 of that person")
        mine = decode_body(HONNIN_KAKUNIN, current.record)
        differ = [label for item, label in _SOUFUSAKI_BASIC4
                  if str(mine[item] or "") != str(v[item] or "")]
        if differ:
            raise SoufusakiMismatch(
                f"送付先 record {i}: {'、'.join(differ)} differ from 機構's 本人確認情報")
        numbers.append(number)
    return numbers


_NOTICE_CODE = field_slice(MOVE_IN_NOTICE, "juminhyo_code")


def notice_subject(record: bytes) -> str:
    """The 住民票コード a 転入通知 record is about."""
    return record[_NOTICE_CODE].decode("ascii", "replace")


def received_provisions(
    kind: str, records: Sequence[bytes], *, provider: str, recipient: str, now: dt.datetime,
) -> list[dict[str, Any]]:
    """The provision rows of a sequenced frame's records as applied here: one per record,
    subject = its 住民票コード, operator and terminal = the record's 操作者ID and 操作端末ID
    (``kind``: ``update_notify`` for 本人確認情報, ``soufusaki`` for 送付先)."""
    if kind == "soufusaki":
        code, op, term, items = _SF_JUMINHYO, _SF_OPERATOR, _SF_TERMINAL, "送付先情報"
    else:
        code, op, term, items = _J_SLICE, _HK_OPERATOR, _HK_TERMINAL, "本人確認情報"
    return [provision_row(
        kind=kind, provider=provider, recipient=recipient,
        subject=r[code].decode("ascii", "replace"), items=items, outcome="provided", detail="",
        now=now, operator=r[op].decode("ascii", "replace").strip(),
        terminal=r[term].decode("ascii", "replace").strip()) for r in records]


def record_provision(
    conn: Connection, *, kind: str, provider: str, recipient: str, subject: str, items: str,
    outcome: str, detail: str, now: dt.datetime, operator: str | None = None,
    terminal: str | None = None,
) -> None:
    """One 情報提供等記録 (R5): a provision made or refused, with who asked where known."""
    record_provisions(conn, [provision_row(
        kind=kind, provider=provider, recipient=recipient, subject=subject, items=items,
        outcome=outcome, detail=detail, now=now, operator=operator, terminal=terminal)])


# -- 個人番号 and 住民票コード ------------------------------------------------------------------------


def kojin_bango_of(conn: Connection, juminhyo_code: str) -> str | None:
    """The 個人番号 already generated for a resident, if any."""
    k = table_of(KojinBango)
    return conn.execute(
        select(k.c.kojin_bango).where(k.c.juminhyo_code == juminhyo_code, k.c.status == "active")
    ).scalar_one_or_none()


def kojin_bango_used(conn: Connection, kojin_bango: str) -> bool:
    """Whether a 個人番号 was ever issued."""
    k = table_of(KojinBango)
    return conn.execute(select(k.c.kojin_bango).where(k.c.kojin_bango == kojin_bango)).first() is not None


def juminhyo_code_used(conn: Connection, code: str) -> bool:
    """Whether 機構 ever issued this 住民票コード."""
    t = issued_juminhyo_code
    return conn.execute(select(t.c.juminhyo_code).where(t.c.juminhyo_code == code)).first() is not None


def keep_shori_tsuban(conn: Connection, pairs: Sequence[tuple[str, str, str]],
                      now: dt.datetime) -> int:
    """機構 keeps (処理通番, 住民票コード, 市町村コード) pairs for the network (a 処理通番 already
    kept stays as it was); how many are new."""
    return sum(insert_ignore(conn, kiko_shori_tsuban, {
        "shori_tsuban": t, "juminhyo_code": c, "municipality_code": m, "received_at": now})
        for t, c, m in pairs)


def kept_shori_tsuban(conn: Connection, tsuban: Sequence[str]) -> list[str]:
    """The 住民票コード of those of ``tsuban`` 機構 still keeps."""
    k = kiko_shori_tsuban
    out: list[str] = []
    for i in range(0, len(tsuban), 500):
        out += [r.juminhyo_code for r in conn.execute(
            select(k.c.juminhyo_code).where(k.c.shori_tsuban.in_(tsuban[i:i + 500])))]
    return out


def take_shori_tsuban(conn: Connection, acknowledged: Sequence[str],
                      limit: int) -> list[tuple[str, str, str]]:
    """Forget the pairs the network acknowledged; the (処理通番, 住民票コード, 市町村コード) of up
    to ``limit`` still kept, oldest first (kept until acknowledged: a lost answer is sent again)."""
    k = kiko_shori_tsuban
    for i in range(0, len(acknowledged), 500):
        conn.execute(delete(k).where(k.c.shori_tsuban.in_(acknowledged[i:i + 500])))
    rows = conn.execute(select(k.c.shori_tsuban, k.c.juminhyo_code, k.c.municipality_code)
                        .order_by(k.c.received_at, k.c.shori_tsuban).limit(limit))
    return [(r.shori_tsuban, r.juminhyo_code, r.municipality_code) for r in rows]


def keep_tenshutsu_shomei(conn: Connection, juminhyo_code: str, new_municipality: str,
                          tokurei: bool, record: bytes, now: dt.datetime) -> None:
    """Keep a resident's 転出証明書情報 at the CS (a later one for the same person replaces it)."""
    t = tenshutsu_shomei
    conn.execute(delete(t).where(t.c.juminhyo_code == juminhyo_code))
    conn.execute(insert(t).values(juminhyo_code=juminhyo_code,
                                  new_municipality_code=new_municipality, tokurei=tokurei,
                                  record=record, received_at=now))


def tenshutsu_shomei_of(conn: Connection, juminhyo_code: str) -> tuple[str, bool, bytes] | None:
    """(転出先 市町村コード, 特例転出, record) of the 転出証明書情報 kept for a 住民票コード."""
    t = tenshutsu_shomei
    r = conn.execute(select(t.c.new_municipality_code, t.c.tokurei, t.c.record).where(
        t.c.juminhyo_code == juminhyo_code)).first()
    return None if r is None else (r.new_municipality_code, bool(r.tokurei), bytes(r.record))


def forget_tenshutsu_shomei(conn: Connection, codes: Sequence[str]) -> None:
    """The 転入通知 about these persons arrived: their 転出証明書情報 is no longer needed."""
    t = tenshutsu_shomei
    for i in range(0, len(codes), 500):
        conn.execute(delete(t).where(t.c.juminhyo_code.in_(codes[i:i + 500])))


def record_issued_codes(conn: Connection, codes: Sequence[str], municipality: str, now: dt.datetime) -> None:
    """Remember 住民票コード handed to a CS so that they are never handed out again."""
    conn.execute(
        insert(issued_juminhyo_code),
        [{"juminhyo_code": c, "municipality_code": municipality, "issued_at": now} for c in codes],
    )


def pool_add(conn: Connection, codes: Sequence[str], now: dt.datetime) -> None:
    """Put codes received from 機構 into the CS's pool."""
    if codes:
        conn.execute(insert(code_pool), [{"juminhyo_code": c, "received_at": now} for c in codes])


def pool_codes(conn: Connection) -> list[str]:
    """The CS's unused 住民票コード."""
    return [r[0] for r in conn.execute(select(code_pool.c.juminhyo_code))]


def pool_remove(conn: Connection, code: str) -> None:
    """Take a code out of the pool (it was handed to the existing system)."""
    conn.execute(delete(code_pool).where(code_pool.c.juminhyo_code == code))


# -- consistency check --------------------------------------------------------------------------------


def iter_entries(
    engine: Engine, municipality_code: str | None, *, batch: int = 5000, with_records: bool = False
) -> Iterator[Entry]:
    """The current file as (住民票コード, digest) in ascending order, streamed in key ranges.

    Reads in ``batch``-sized key ranges (keyset pagination) so memory stays flat and no
    long-lived cursor holds a read transaction open.
    """
    t = table_of(HonninKakunin)
    last = ""
    blake = hashlib.blake2b
    while True:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                # Driver-level read: the check walks whole files, row overhead matters.
                sql = "SELECT juminhyo_code, record FROM honnin_kakunin WHERE juminhyo_code > ?"
                params: tuple[object, ...] = (last,)
                if municipality_code is not None:
                    sql += " AND municipality_code = ?"
                    params += (municipality_code,)
                cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                rows = cur.execute(sql + f" ORDER BY juminhyo_code LIMIT {int(batch)}", params).fetchall()
                cur.close()
            else:
                q = select(t.c.juminhyo_code, t.c.record).where(t.c.juminhyo_code > last)
                if municipality_code is not None:
                    q = q.where(t.c.municipality_code == municipality_code)
                rows = conn.execute(q.order_by(t.c.juminhyo_code).limit(batch)).all()
        if not rows:
            return
        if with_records:
            for code, record in rows:
                yield Entry(code, blake(record, digest_size=DIGEST_SIZE).digest(), record)
        else:
            for code, record in rows:
                yield Entry(code, blake(record, digest_size=DIGEST_SIZE).digest())
        last = rows[-1][0]


def versions(conn: Connection) -> dict[str, list[bytes]]:
    """Every kept version of every resident's record, oldest first (history, then the current
    or, for a 消除者, the final record)."""
    from juki_gateway.registry_store.models import HonninKakuninHistory

    h = table_of(HonninKakuninHistory)
    out: dict[str, list[bytes]] = {}
    for code, rec in conn.execute(
        select(h.c.juminhyo_code, h.c.record).order_by(h.c.juminhyo_code, h.c.history_no)
    ):
        out.setdefault(code, []).append(rec)
    for table in (table_of(HonninKakunin), table_of(DeletedResident)):
        for code, rec in conn.execute(select(table.c.juminhyo_code, table.c.record)):
            out.setdefault(code, []).append(rec)
    return out


def count_versions(conn: Connection) -> int:
    """How many versions (history + current + 消除者) the file holds: one per applied change."""
    from juki_gateway.registry_store.models import HonninKakuninHistory

    n = conn.execute(select(func.count()).select_from(table_of(HonninKakuninHistory))).scalar_one()
    return int(n) + count_current(conn) + count_deleted(conn)


def count_deleted(conn: Connection) -> int:
    """How many 消除者 (deleted residents) the file holds."""
    d = table_of(DeletedResident)
    return int(conn.execute(select(func.count()).select_from(d)).scalar_one())


def deleted_records(conn: Connection) -> dict[str, bytes]:
    """Every 消除者's final record by 住民票コード (tests and small files only)."""
    d = table_of(DeletedResident)
    return {r[0]: r[1] for r in conn.execute(select(d.c.juminhyo_code, d.c.record))}


def count_current(conn: Connection) -> int:
    """How many residents the current file holds."""
    return int(conn.execute(select(func.count()).select_from(table_of(HonninKakunin))).scalar_one())


def current_records(conn: Connection) -> dict[str, bytes]:
    """Every current record by 住民票コード (tests and small files only)."""
    t = table_of(HonninKakunin)
    return {r[0]: r[1] for r in conn.execute(select(t.c.juminhyo_code, t.c.record))}


def juminhyo_of(record: bytes) -> str:
    """The 住民票コード of an update record without decoding the rest."""
    return record[_J_SLICE].decode("ascii")


# -- reads of the services (search, pool, consistency check) ----------------------------------


def search_rows(conn: Connection, *, juminhyo_code: str = "", kojin_bango: str = "",
                birth_date: dt.date | None = None) -> Iterator[HonninKakuninRow]:
    """The current 本人確認情報 rows narrowed by one indexed key (R3: the caller gives one)."""
    t = table_of(HonninKakunin)
    q = select(*(t.c[name] for name in LOOKUP_FIELDS))
    if juminhyo_code:
        q = q.where(t.c.juminhyo_code == juminhyo_code)
    elif kojin_bango:
        q = q.where(t.c.kojin_bango == kojin_bango)
    elif birth_date is not None:
        q = q.where(t.c.birth_date == birth_date)
    for r in conn.execute(q):
        yield honnin_row(r)


def juminhyo_code_known(conn: Connection, code: str) -> bool:
    """Whether this 住民票コード was ever issued by 機構 or is held by a current resident."""
    t = table_of(HonninKakunin)
    return juminhyo_code_used(conn, code) or conn.execute(
        select(t.c.juminhyo_code).where(t.c.juminhyo_code == code)).first() is not None


def records_of(conn: Connection, codes: Sequence[str], chunk: int = 500) -> dict[str, bytes]:
    """The current 本人確認情報 record of each 住民票コード found, read ``chunk`` codes at a time."""
    t = table_of(HonninKakunin)
    out: dict[str, bytes] = {}
    for i in range(0, len(codes), chunk):
        q = select(t.c.juminhyo_code, t.c.record).where(t.c.juminhyo_code.in_(codes[i:i + chunk]))
        out.update({r[0]: r[1] for r in conn.execute(q)})
    return out


def applied_heads(conn: Connection, receiver: str) -> dict[str, int]:
    """The highest 更新順番号 applied from each sender at ``receiver`` (what a node resumes from)."""
    i = table_of(InboxEntry)
    return {str(s): int(m) for s, m in conn.execute(
        select(i.c.sender, func.max(i.c.seq)).where(i.c.receiver == receiver).group_by(i.c.sender))}
