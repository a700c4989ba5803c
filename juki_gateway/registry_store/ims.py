"""Every statement the intermediate server runs: flags, held queries, permission lists, spent
permits, the 符号 map, 副本 and its provision records.

Blocking functions over a ``Connection`` inside a transaction the caller owns, as everywhere
in this package. The server (``juki_gateway.gateway.intermediate``) calls them on its store
thread; they return rows and plain values, and the server maps them to its domain objects.
Reads of a batch's people go ``CHUNK`` identifiers at a time (bounded ``IN`` lists).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from juki_gateway.registry_store.ims_models import (
    ims_flag,
    ims_flag_member,
    ims_fugo_request,
    ims_held,
    ims_permission_list,
    ims_used_permit,
)
from juki_gateway.registry_store.models import FugoMap, Fukuhon, ProvisionRecord, table_of

CHUNK = 500
fugo_map = table_of(FugoMap)
fukuhon = table_of(Fukuhon)
provision_record = table_of(ProvisionRecord)


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    wanted = sorted(set(values))
    for i in range(0, len(wanted), CHUNK):
        yield wanted[i : i + CHUNK]


# -- what the server loads at start -----------------------------------------------------------
def latest_permission_list(conn: Connection) -> bytes | None:
    """The newest permission list kept (its signed bytes), if any."""
    row = conn.execute(
        select(ims_permission_list.c.data).order_by(ims_permission_list.c.version.desc())
    ).first()
    return bytes(row.data) if row is not None else None


def used_permits(conn: Connection, not_before: dt.datetime) -> dict[str, dt.datetime]:
    """Spent permit ids whose permit expires at or after ``not_before``, with that expiry
    (replays of them are refused; the others' permits have expired)."""
    u = ims_used_permit
    rows = conn.execute(select(u.c.permit_id, u.c.expires_at).where(u.c.expires_at >= not_before))
    return {r.permit_id: r.expires_at for r in rows}


def fugo_atena_map(conn: Connection) -> dict[str, str]:
    """符号 → 団体内統合宛名番号, for every 符号 issued."""
    return {r.fugo: r.atena_no for r in conn.execute(select(fugo_map.c.fugo, fugo_map.c.atena_no))}


def fugo_requests(conn: Connection) -> list[tuple[str, str, str | None]]:
    """(依頼番号, 団体内統合宛名番号, 処理通番 or None) of every 符号 request kept."""
    r = ims_fugo_request
    return [(row.request_id, row.atena_no, row.shori_tsuban) for row in conn.execute(
        select(r.c.request_id, r.c.atena_no, r.c.shori_tsuban))]


def add_fugo_request(conn: Connection, request_id: str, atena_no: str, now: dt.datetime) -> None:
    """Keep a new 符号 request (its 処理通番 comes later)."""
    conn.execute(insert(ims_fugo_request), {"request_id": request_id, "atena_no": atena_no,
                                            "shori_tsuban": None, "requested_at": now})


def set_shori_tsuban(conn: Connection, request_id: str, shori_tsuban: str) -> None:
    """Record the 処理通番 the network issued for a 符号 request."""
    r = ims_fugo_request
    conn.execute(update(r).where(r.c.request_id == request_id).values(shori_tsuban=shori_tsuban))


# -- permission list, 符号 -------------------------------------------------------------------------
def keep_permission_list(conn: Connection, version: int, issued: str, data: bytes,
                         now: dt.datetime) -> None:
    """Keep a distributed permission-list version."""
    conn.execute(insert(ims_permission_list),
                 {"version": version, "issued": issued, "data": data, "received_at": now})


def add_fugo(conn: Connection, fugo: str, atena_no: str, now: dt.datetime) -> None:
    """Record the 符号 issued for a 団体内統合宛名番号."""
    add_fugos(conn, {fugo: atena_no}, now)


def add_fugos(conn: Connection, atena_by_fugo: Mapping[str, str], now: dt.datetime) -> None:
    """Record many issued 符号 (符号 → 団体内統合宛名番号) in one statement."""
    if atena_by_fugo:
        conn.execute(insert(fugo_map), [{"fugo": f, "atena_no": a, "created_at": now}
                                        for f, a in atena_by_fugo.items()])


# -- 副本 ------------------------------------------------------------------------------------------
def replace_fukuhon(conn: Connection, records: Mapping[str, bytes], koban: str,
                    now: dt.datetime, setai: Mapping[str, str | None]) -> None:
    """Store each 団体内統合宛名番号's 副本 record (with its 世帯番号 from ``setai``),
    replacing the one it had."""
    for atena_no, record in records.items():
        conn.execute(fukuhon.delete().where(fukuhon.c.atena_no == atena_no))
        conn.execute(insert(fukuhon), {"atena_no": atena_no, "koban": koban, "record": record,
                                       "updated_at": now, "setai_no": setai.get(atena_no)})


def household_of(conn: Connection, atena_no: str) -> list[str]:
    """The other people whose 副本 carries the same 世帯番号 as ``atena_no``'s (none when it
    has no 副本 or no 世帯番号)."""
    setai = select(fukuhon.c.setai_no).where(fukuhon.c.atena_no == atena_no,
                                             fukuhon.c.setai_no.is_not(None))
    rows = conn.execute(select(fukuhon.c.atena_no).distinct().where(
        fukuhon.c.setai_no.in_(setai.scalar_subquery()), fukuhon.c.atena_no != atena_no
    ).order_by(fukuhon.c.atena_no))
    return [r.atena_no for r in rows]


def all_fukuhon(conn: Connection) -> list[tuple[str, bytes]]:
    """Every 副本 record, in 団体内統合宛名番号 order."""
    rows = conn.execute(select(fukuhon.c.atena_no, fukuhon.c.record).order_by(fukuhon.c.atena_no))
    return [(r.atena_no, bytes(r.record)) for r in rows]


def fukuhon_of(conn: Connection, atenas: Iterable[str], koban: str) -> dict[str, bytes]:
    """The 副本 record (項番 ``koban``) of each of these people that has one."""
    found: dict[str, bytes] = {}
    for chunk in _chunks(atenas):
        rows = conn.execute(select(fukuhon.c.atena_no, fukuhon.c.record).where(
            fukuhon.c.atena_no.in_(chunk), fukuhon.c.koban == koban))
        found.update((r.atena_no, bytes(r.record)) for r in rows)
    return found


# -- flags -----------------------------------------------------------------------------------------
def add_flag(conn: Connection, row: Mapping[str, Any], members: Sequence[str] = ()) -> None:
    """Store a new flag and the accompanying people it covers."""
    conn.execute(insert(ims_flag), dict(row))
    if members:
        conn.execute(insert(ims_flag_member),
                     [{"flag_id": row["flag_id"], "atena_no": m} for m in members])


def flag_members(conn: Connection, flag_ids: Iterable[str]) -> dict[str, list[str]]:
    """The accompanying people of each of these flags (flags without any are absent)."""
    found: dict[str, list[str]] = {}
    for chunk in _chunks(flag_ids):
        rows = conn.execute(select(ims_flag_member).where(ims_flag_member.c.flag_id.in_(chunk))
                            .order_by(ims_flag_member.c.flag_id, ims_flag_member.c.atena_no))
        for r in rows:
            found.setdefault(r.flag_id, []).append(r.atena_no)
    return found


def covered_atenas(conn: Connection, *, except_state: str) -> set[str]:
    """Everyone a flag not in ``except_state`` covers: flagged people and accompanying ones."""
    live = select(ims_flag.c.flag_id).where(ims_flag.c.state != except_state)
    people = set(conn.execute(select(ims_flag.c.atena_no).where(
        ims_flag.c.state != except_state)).scalars())
    people.update(conn.execute(select(ims_flag_member.c.atena_no).where(
        ims_flag_member.c.flag_id.in_(live))).scalars())
    return people


def flag_by_id(conn: Connection, flag_id: str) -> Row[Any] | None:
    """One flag's row."""
    return conn.execute(select(ims_flag).where(ims_flag.c.flag_id == flag_id)).first()


def update_flag(conn: Connection, flag_id: str, row: Mapping[str, Any]) -> None:
    """Overwrite one flag's row."""
    conn.execute(update(ims_flag).where(ims_flag.c.flag_id == flag_id).values(**row))


def flag_rows(conn: Connection, *, except_state: str | None = None) -> list[Row[Any]]:
    """Every flag (but those in ``except_state``), oldest request first."""
    q = select(ims_flag).order_by(ims_flag.c.requested_at, ims_flag.c.flag_id)
    if except_state is not None:
        q = q.where(ims_flag.c.state != except_state)
    return list(conn.execute(q))


def flags_of(conn: Connection, atenas: Iterable[str]) -> dict[str, list[Row[Any]]]:
    """Every flag row covering each of these people, as the flagged person or an accompanying
    one (a batch's flags in two reads per chunk)."""
    found: dict[str, list[Row[Any]]] = {}
    for chunk in _chunks(atenas):
        for r in conn.execute(select(ims_flag).where(ims_flag.c.atena_no.in_(chunk))):
            found.setdefault(r.atena_no, []).append(r)
        member = ims_flag_member
        for r in conn.execute(
            select(ims_flag, member.c.atena_no.label("member"))
            .join(member, member.c.flag_id == ims_flag.c.flag_id)
            .where(member.c.atena_no.in_(chunk))
        ):
            found.setdefault(r.member, []).append(r)
    return found


# -- held queries, spent permits, provision records ----------------------------------------------
def add_held(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store held queries (with the content that would be sent)."""
    conn.execute(insert(ims_held), [dict(r) for r in rows])


def held_rows(conn: Connection, *, state: str | None = None) -> list[Row[Any]]:
    """Held queries (in ``state`` when given), oldest first."""
    q = select(ims_held).order_by(ims_held.c.held_at, ims_held.c.held_id)
    if state is not None:
        q = q.where(ims_held.c.state == state)
    return list(conn.execute(q))


def held_by_id(conn: Connection, held_id: str) -> Row[Any] | None:
    """One held query's row."""
    return conn.execute(select(ims_held).where(ims_held.c.held_id == held_id)).first()


def decide_held(conn: Connection, held_id: str, state: str, operator: str,
                now: dt.datetime) -> None:
    """Record an operator's decision on a held query (``released`` or ``refused``)."""
    conn.execute(update(ims_held).where(ims_held.c.held_id == held_id)
                 .values(state=state, decided_by=operator, decided_at=now))


def spend_permits(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record permit ids as spent (``permit_id``, ``used_at``, the permit's ``expires_at``)."""
    conn.execute(insert(ims_used_permit), [dict(r) for r in rows])


def purge_used_permits(conn: Connection, before: dt.datetime, *, dry_run: bool = False) -> int:
    """Delete (or with ``dry_run`` count) the spent permit ids whose permit expired before
    ``before``."""
    u = ims_used_permit
    where = u.c.expires_at < before
    if dry_run:
        return int(conn.execute(select(func.count()).select_from(u).where(where)).scalar_one())
    return int(conn.execute(delete(u).where(where)).rowcount)


def add_provisions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record what was provided, held or refused, to whom (R6)."""
    conn.execute(insert(provision_record), [dict(r) for r in rows])


def provision_rows(conn: Connection, *, person: str | None, since: dt.datetime | None,
                   limit: int) -> list[dict[str, Any]]:
    """The intermediate server's provision records, newest first."""
    pr = provision_record
    q = select(pr).where(pr.c.kind == "intermediate").order_by(pr.c.id.desc()).limit(limit)
    if person is not None:
        q = q.where(pr.c.subject == person)
    if since is not None:
        q = q.where(pr.c.occurred_at >= since)
    return [dict(r._mapping) for r in conn.execute(q)]


# -- gauges ----------------------------------------------------------------------------------------
def counts_by_state(conn: Connection) -> tuple[dict[str, int], dict[str, int]]:
    """How many flags and how many held queries are in each state (counts only)."""
    flags = {str(s): int(n) for s, n in conn.execute(
        select(ims_flag.c.state, func.count()).group_by(ims_flag.c.state))}
    held = {str(s): int(n) for s, n in conn.execute(
        select(ims_held.c.state, func.count()).group_by(ims_held.c.state))}
    return flags, held
