"""Reading 情報提供等記録 (R5) back: every kind, from any store of the registry schema.

The writers are where the provisions happen (:mod:`.jukinet` for the Juki-net nodes,
:mod:`.ims` for the intermediate server); this module only lists. Blocking: CLI only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from juki_gateway.registry_store.models import ProvisionRecord, table_of

#: Every kind a provision record may have (``honnin_kakunin``: searches recorded before
#: schema 0008, shown as ``search``).
KINDS: tuple[str, ...] = ("update_notify", "soufusaki", "consistency", "move_in_notice",
                          "search", "kojin_bango", "intermediate")
_LEGACY = {"honnin_kakunin": "search"}


def iter_provisions(
    conn: Connection, *, kind: str | None = None, since: dt.datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Records in storage order, optionally of one kind and from a time on."""
    pr = table_of(ProvisionRecord)
    q = select(pr).order_by(pr.c.id)
    if kind is not None:
        kinds = [kind, *[old for old, new in _LEGACY.items() if new == kind]]
        q = q.where(pr.c.kind.in_(kinds))
    if since is not None:
        q = q.where(pr.c.occurred_at >= since)
    for r in conn.execute(q.execution_options(yield_per=5000)):
        row = dict(r._mapping)
        row["kind"] = _LEGACY.get(row["kind"], row["kind"])
        yield row
