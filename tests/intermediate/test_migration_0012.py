"""Store migration 0012: stored answer-items records move to one width per item (both engines).

The 副本 (``fukuhon.record``) and held queries' content (``ims_held_query.content``) stored in the
old layout are re-encoded: every value kept, 世帯番号 12 digits, the codes as codes, 通称 and 旧氏
blank; down again gives the old bytes back, and is refused when a 通称 or 旧氏 would be lost. An
upgrade is refused while ipnw has not acknowledged a QUERY_RESULT sealed in the old layout.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from juki_gateway.protocols.intermediate.items import ANSWER_ITEMS_LAYOUT, ITEM_KEYS
from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.ims_models import ims_held
from juki_gateway.registry_store.migrate import current_revision, downgrade, upgrade
from juki_gateway.registry_store.models import Fukuhon, OutboxMessage, table_of

from .helpers import FUKUHON

#: the migration module (Alembic loads its own copy: its errors are matched by name)
M0012: Any = importlib.import_module(
    "juki_gateway.registry_store.migrations.versions.0012_answer_items_one_width"
)
FOREIGN = {**FUKUHON, "jumin_kubun": "2", "kokuseki": "VNM", "zairyu_shikaku": "05",
           "zairyu_kikan": "0300", "zairyu_manryo": "20290331", "ho30_45": "1",
           "zokugara": "06030000"}
fukuhon = table_of(Fukuhon)
outbox = table_of(OutboxMessage)
T0 = dt.datetime(2027, 1, 1)


def answer_items_v1(values: Mapping[str, str]) -> bytes:
    """An answer-items record as revisions before 0012 stored it."""
    return bytes(M0012.join(M0012.V1, dict(values), "test"))


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """The store at revision 0011 with two 副本 and one held query in the old layout."""
    eng = create_store_engine(store_url)
    upgrade(store_url, "0011", engine=eng)
    with eng.begin() as conn:
        for atena, values in (("172014000000101", FUKUHON), ("172014000000102", FOREIGN)):
            conn.execute(insert(fukuhon).values(atena_no=atena, koban="*", updated_at=T0,
                                                record=answer_items_v1(values),
                                                setai_no=values["setai_no"]))
        conn.execute(insert(ims_held).values(
            held_id="h-1", permit_id="p-1", requester="mhlw-000001", atena_no="172014000000102",
            kouban=1, items="shimei", reason_code=6201, flag_ids="fl-1", permit=b"x",
            content=answer_items_v1({"shimei": FOREIGN["shimei"], "kokuseki": "VNM"}),
            state="held", held_at=T0))
    yield eng
    eng.dispose()


def _records(eng: Engine) -> list[bytes]:
    with eng.begin() as conn:
        stored = conn.execute(select(fukuhon.c.record).order_by(fukuhon.c.atena_no)).scalars()
        return [*map(bytes, stored), bytes(conn.execute(select(ims_held.c.content)).scalar_one())]


def test_upgrade_reencodes_every_stored_record_keeping_every_value(
    engine: Engine, store_url: str
) -> None:
    before = _records(engine)
    upgrade(store_url, "0012", engine=engine)
    after = _records(engine)
    assert [len(r) for r in after] == [ANSWER_ITEMS_LAYOUT.length] * 3 == [536] * 3
    blank = {key: None for key in ITEM_KEYS}
    assert ANSWER_ITEMS_LAYOUT.decode(after[0]) == {**blank, **FUKUHON}
    assert ANSWER_ITEMS_LAYOUT.decode(after[1]) == {**blank, **FOREIGN}
    assert ANSWER_ITEMS_LAYOUT.decode(after[2]) == {
        **blank, "shimei": FOREIGN["shimei"], "kokuseki": "VNM"}
    downgrade(store_url, "0011", engine=engine)
    assert _records(engine) == before


def test_downgrade_refuses_to_lose_a_tsusho(engine: Engine, store_url: str) -> None:
    upgrade(store_url, "0012", engine=engine)
    with engine.begin() as conn:
        conn.execute(update(fukuhon).where(fukuhon.c.atena_no == "172014000000102").values(
            record=ANSWER_ITEMS_LAYOUT.encode({**FOREIGN, "tsusho": "中村　ジョン"})))
    with pytest.raises(RuntimeError, match="fukuhon row 2: tsusho would be lost"):
        downgrade(store_url, "0011", engine=engine)
    assert current_revision(engine) == "0012"


def test_upgrade_waits_for_ipnw_to_take_results_sealed_in_the_old_layout(
    engine: Engine, store_url: str
) -> None:
    with engine.begin() as conn:
        conn.execute(insert(outbox).values(link="ipnw", seq=1, msg_type=0x0632, frame=b"f",
                                           state="pending", attempts=1, next_try_at=T0,
                                           created_at=T0))
    before = _records(engine)
    with pytest.raises(RuntimeError, match="1 QUERY_RESULT frame"):
        upgrade(store_url, "0012", engine=engine)
    assert current_revision(engine) == "0011" and _records(engine) == before
    with engine.begin() as conn:  # ipnw acknowledged it: the upgrade goes through
        conn.execute(update(outbox).values(state="sent", sent_at=T0))
    upgrade(store_url, "0012", engine=engine)
    assert current_revision(engine) == "0012"


def test_a_value_that_does_not_fit_stops_the_upgrade_without_naming_it(
    engine: Engine, store_url: str
) -> None:
    with engine.begin() as conn:
        conn.execute(update(fukuhon).where(fukuhon.c.atena_no == "172014000000101").values(
            record=answer_items_v1({**FUKUHON, "zokugara": "子"})))
    with pytest.raises(RuntimeError) as info:
        upgrade(store_url, "0012", engine=engine)
    assert type(info.value).__name__ == "RecordNotConvertible"
    assert "fukuhon row 1, item zokugara" in str(info.value)
    assert "子" not in str(info.value) and "172014000000101" not in str(info.value)
    assert current_revision(engine) == "0011"


def test_a_record_the_old_codec_wrote_goes_up_and_comes_back_byte_for_byte(store_url: str) -> None:
    """The migration's frozen old layout is the one the codec used before 0012: the answer-items
    record that codec wrote (the test vector of revision da1a307, kept as a fixture) is split
    and joined back unchanged, re-encoded by the upgrade into a record today's layout decodes
    with the same name, date of birth and address, and given back byte for byte by a downgrade."""
    from pathlib import Path

    golden = (Path(__file__).parent / "fixtures" / "answer-items-before-0012.bin").read_bytes()
    assert len(golden) == sum(width for _key, width, _kind in M0012.V1) == 562
    old = M0012.split(M0012.V1, golden, "fixture")
    assert answer_items_v1(old) == golden
    eng = create_store_engine(store_url)
    try:
        upgrade(store_url, "0011", engine=eng)
        with eng.begin() as conn:
            conn.execute(insert(fukuhon).values(atena_no="172014000000201", koban="*",
                                                updated_at=T0, record=golden,
                                                setai_no=old["setai_no"].strip()))
        upgrade(store_url, "0012", engine=eng)
        with eng.begin() as conn:
            record = bytes(conn.execute(select(fukuhon.c.record)).scalar_one())
        new = ANSWER_ITEMS_LAYOUT.decode(record)
        for key in ("shimei", "seinengappi", "jusho", "setai_no"):
            assert new[key] == old[key].rstrip(" \u3000"), key
        downgrade(store_url, "0011", engine=eng)
        with eng.begin() as conn:
            assert bytes(conn.execute(select(fukuhon.c.record)).scalar_one()) == golden
    finally:
        eng.dispose()
