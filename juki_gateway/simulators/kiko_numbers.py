"""The population's 個人番号 as 機構 generated them before the run.

A simulated population stands for residents who lived in Kanazawa before the run starts: 機構
generated their 個人番号 long ago. 機構's authenticity check (docs/sequencing.md, 5114) refuses
any number it did not generate, so a run records the population's numbers in the 機構 node's
store first, and the number of every resident an event creates (a birth, a household moving in)
before that event is sent. This is the simulator standing in for the past, through the store of
a 機構 node hosted by the same working directory; against a 機構 elsewhere it cannot, and says
so in the run's notes.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable

from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.simulators.population import Resident


class Held(enum.Enum):
    """What 機構's file holds of a person other than a current record."""

    #: a 消除者 only
    DELETED = "消除者"
    #: current and a 消除者 at once (which must never be)
    BOTH = "current and 消除者"


class KikoNumbers:
    """Writes residents' 個人番号 into a 機構 store as generated there (blocking, short)."""

    def __init__(self, url: str) -> None:
        self.engine = create_store_engine(url, checkpoint="autocheckpoint")
        self.added = 0

    def register(self, residents: Iterable[Resident], now: dt.datetime | None = None) -> int:
        """Record these residents' numbers (idempotent); returns how many were new."""
        pairs = {r.juminhyo_code: r.kojin_bango for r in residents if r.kojin_bango}
        if not pairs:
            return 0
        when = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None)
        with self.engine.begin() as conn:
            added = st.seed_generated_numbers(conn, pairs, when)
        self.added += added
        return added

    def register_one(self, resident: Resident) -> None:
        """:meth:`register` for one resident (the driver's new-person hook)."""
        self.register([resident])

    def places(self, codes: list[str]) -> dict[str, tuple[str, str] | Held]:
        """(市町村コード, 住所) of each 住民票コード's current record at 機構, ``Held.DELETED``
        for a 消除者, ``Held.BOTH`` for a code current and deleted at once; a code 機構 holds
        neither way is absent."""
        from sqlalchemy import select

        from juki_gateway.registry_store.models import DeletedResident, HonninKakunin, table_of

        t, d = table_of(HonninKakunin), table_of(DeletedResident)
        with self.engine.connect() as conn:
            current = {r.juminhyo_code: (r.municipality_code, r.address) for r in conn.execute(
                select(t.c.juminhyo_code, t.c.municipality_code, t.c.address)
                .where(t.c.juminhyo_code.in_(codes)))}
            deleted = {r[0] for r in conn.execute(
                select(d.c.juminhyo_code).where(d.c.juminhyo_code.in_(codes)))}
        out: dict[str, tuple[str, str] | Held] = {c: Held.DELETED for c in deleted}
        out.update((c, Held.BOTH if c in deleted else w) for c, w in current.items())
        return out

    def close(self) -> None:
        """Release the store."""
        self.engine.dispose()
