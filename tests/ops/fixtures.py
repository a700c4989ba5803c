"""Conformance targets for the tests: a correct and a broken Juki-net receiver, a broken ims.

Each is the real daemon service tree (mutual TLS, role authorization, frame sessions) started
in-process on the test reactor with port 0, with the sessions of one endpoint replaced:

* ``reference``: UPDATE_NOTIFY handled by the Juki-net :class:`InboundSequencer` (R4 as the
  protocol module defines it), committed at once;
* ``applies-duplicates``: every UPDATE_NOTIFY frame is applied, duplicates included, and the
  ACK names the count applied (the bug R4-duplicate must catch);
* ``refuses-odd-numbers``: the reference, except that a new odd 更新順番号 above 1 is refused
  with ERROR 5104 (content refused): R4-duplicate must fail saying so, not "applied twice";
* ``answers-flagged``: the real intermediate server, except that a query it would hold for a
  flagged person comes back ANSWERED (the bug R7-flagged-held must catch).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from juki_gateway.codecs.frame import Frame, encode_frame
from juki_gateway.codecs.messages import MessageType, encode_error
from juki_gateway.gateway.config import EndpointConfig, GatewayConfig
from juki_gateway.gateway.connection import AppFactory
from juki_gateway.gateway.metrics import GatewayMetrics
from juki_gateway.gateway.service import GatewayService, frame_app_factory
from juki_gateway.protocols.catalogue import LINK_MESSAGES
from juki_gateway.protocols.channel import Catalogue
from juki_gateway.protocols.intermediate.messages import QUERY_RESULT_LAYOUT, QueryStatus
from juki_gateway.protocols.jukinet.messages import JukinetMessage
from juki_gateway.protocols.jukinet.sequencing import InboundSequencer
from juki_gateway.protocols.session import FrameSession, HandlerRegistry, SessionInfo
from tests.gateway_support import REPO, Daemon, make_workdir, start_daemon


def _ack(info: SessionInfo, kind: str, seq: int) -> bytes:
    if kind == "ack":
        return encode_frame(MessageType.ACK, info.node, info.peer.name, seq=seq,
                            timestamp=info.timestamp())
    return encode_frame(MessageType.NACK, info.node, info.peer.name,
                        encode_error(5101, "sequence_gap", f"expected {seq}"), record_count=1,
                        seq=seq, timestamp=info.timestamp())


def jukinet_registry(mode: str) -> HandlerRegistry:
    """UPDATE_NOTIFY handling as ``mode`` says (see the module docstring)."""
    sequencers: dict[str, InboundSequencer] = {}
    applied: dict[str, int] = {}
    reg = HandlerRegistry()

    def on_update(frame: Frame, info: SessionInfo) -> Iterable[bytes]:
        sender = frame.header.sender
        if mode == "applies-duplicates":
            applied[sender] = applied.get(sender, 0) + frame.header.record_count
            return [_ack(info, "ack", applied[sender])]
        seq = sequencers.setdefault(sender, InboundSequencer())
        n = frame.header.seq
        if mode == "refuses-odd-numbers" and n > 1 and n % 2 and n == seq.expected:
            return [encode_frame(MessageType.ERROR, info.node, info.peer.name,
                                 encode_error(5104, "wrong_sender", "refused"), record_count=1,
                                 seq=n, timestamp=info.timestamp())]
        accepted = seq.receive(frame.header.seq, frame.header.record_count)
        if accepted is not None:
            seq.committed(accepted.last_seq)
        return [_ack(info, r.kind, r.seq) for r in seq.responses()]

    reg.register_handler(JukinetMessage.UPDATE_NOTIFY, on_update)
    return reg


def start_jukinet_target(config: GatewayConfig, reactor: Any, *, mode: str) -> GatewayService:
    """The daemon with cs-172014's sessions answering UPDATE_NOTIFY (see module docstring)."""
    registry = jukinet_registry(mode)
    metrics = GatewayMetrics()

    def factories(ep: EndpointConfig) -> AppFactory:
        if ep.name != "cs-172014":
            return frame_app_factory(ep, reactor)

        def make(conn_id: str, peer: Any) -> FrameSession:
            return FrameSession(node=ep.name, conn_id=conn_id, peer=peer, registry=registry,
                                seconds=reactor.seconds, catalogue=Catalogue(LINK_MESSAGES))

        return make

    service = GatewayService(config, reactor, metrics=metrics, app_factories=factories,
                             start_links=False)
    service.startService()
    return service


def start_answering_ims(config: GatewayConfig, reactor: Any) -> GatewayService:
    """The daemon with an intermediate server that answers held queries automatically."""
    from juki_gateway.gateway.service import makeService

    service = makeService(config, reactor, start_links=False)
    service.startService()

    def corrupt(_: object) -> None:  # once the server runs, before any query can reach it
        ims = service.intermediate.service
        honest = ims.handle_queries

        def leaky(bodies: list[bytes]) -> list[bytes]:
            out = []
            for body in honest(bodies):
                values = QUERY_RESULT_LAYOUT.decode(body)
                if str(values["status"]) == str(int(QueryStatus.HELD)):
                    values = {**values, "status": str(int(QueryStatus.ANSWERED)),
                              "reason_code": "0000"}
                    body = QUERY_RESULT_LAYOUT.encode(values)
                out.append(body)
            return out

        ims.handle_queries = leaky  # type: ignore[method-assign]

    service.intermediate.ready.addCallback(corrupt)
    return service


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The juki-gateway command in a subprocess (it runs its own reactor)."""
    return subprocess.run([sys.executable, "-m", "juki_gateway", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def chain_daemon(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Daemon]:
    """A serve process hosting the Juki-net chain (CS → prefecture → 機構) on loopback links,
    nothing seeded in its store; stopped cleanly at the end (for a module-scoped fixture)."""
    d = start_daemon(make_workdir(tmp_path_factory.mktemp(name), links=True), timeout=60)
    yield d
    assert d.stop() == 0


def bound(service: GatewayService, name: str) -> int:
    """The port endpoint ``name`` bound."""
    return service.listeners[name].bound_port()


__all__ = ["Path", "bound", "chain_daemon", "cli", "start_answering_ims", "start_jukinet_target"]
