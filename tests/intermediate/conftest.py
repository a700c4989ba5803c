"""Fixtures for the store-backed intermediate-server tests: a migrated store, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.task import Clock

from juki_gateway.gateway.intermediate.service import ImsKeys, IntermediateService, OperatorIdentity
from juki_gateway.protocols.intermediate.fukuhon import encode_fukuhon
from juki_gateway.registry_store.anchor import AuditKey
from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.migrate import upgrade

from .helpers import FUKUHON, NETWORK_KEY, PROVIDER

START = 1795694400.0  # 2026-11-26 12:00:00 UTC (helpers.NOW)

ALICE = OperatorIdentity("op-alice", frozenset({"flag-operator", "reviewer"}))
BOB = OperatorIdentity("op-bob", frozenset({"flag-operator", "reviewer"}))
CAROL = OperatorIdentity("op-carol", frozenset({"auditor"}))

#: the audit anchor key of the services built here (tests check their heads with it)
AUDIT_KEY = AuditKey(b"\x2a" * 32)


def fukuhon_record(atena: str, values: dict[str, str] | None = None) -> bytes:
    """One fukuhon-juminhyo record (the codec's layout) for ``atena``."""
    return encode_fukuhon(atena, values if values is not None else FUKUHON)


def make_service(url: str, clock: Clock) -> IntermediateService:
    """A started service over the store at ``url``, migrated to head."""
    engine = create_store_engine(url)
    upgrade(url, engine=engine)
    own = ec.generate_private_key(ec.SECP256R1())
    svc = IntermediateService(engine, ImsKeys(own, NETWORK_KEY.public_key(), AUDIT_KEY), PROVIDER,
                              clock)
    svc.start()
    return svc


@pytest.fixture
def clock() -> Clock:
    """A clock at helpers.NOW."""
    c = Clock()
    c.advance(START)
    return c


@pytest.fixture
def service(store_url: str, clock: Clock) -> Iterator[IntermediateService]:
    """A service over a fresh store: a SQLite file, or a PostgreSQL schema (both params)."""
    svc = make_service(store_url, clock)
    yield svc
    svc.engine.dispose()
