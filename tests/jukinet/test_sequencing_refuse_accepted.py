"""InboundSequencer.refuse_accepted: a frame refused by a check in the store, after acceptance."""

from __future__ import annotations

import pytest

from juki_gateway.protocols.jukinet.errors import KojinBangoNotAuthentic, LinkProtocolError
from juki_gateway.protocols.jukinet.sequencing import InboundSequencer


def test_refusal_after_acceptance_takes_the_place_of_later_replies() -> None:
    """Frames 1–2 committed; 3–4 and 5 accepted; 3–4 refused by the store: 3 is expected again,
    the ERROR naming 3 follows the ACK of 2, and nothing claims 4 or 5."""
    inb = InboundSequencer()
    for first, count in ((1, 2), (3, 2), (5, 1)):
        acc = inb.offer(first, count)
        assert acc is not None
        inb.accept(acc)
    inb.committed(2)
    err = KojinBangoNotAuthentic("record 0")
    assert inb.refuse_accepted(3, err) == 3
    assert [(r.kind, r.seq) for r in inb.responses()] == [("ack", 2), ("error", 3)]
    assert inb.expected == 3 and inb.refusals == 1
    assert inb.offer(5, 1) is None  # a later frame is now a gap
    assert [(r.kind, r.seq) for r in inb.responses()] == [("nack", 3)]
    acc = inb.offer(3, 2)  # the corrected resend is applied
    assert acc is not None and acc.apply_from == 3


def test_refusing_what_is_not_awaiting_commit_is_a_protocol_error() -> None:
    """Only numbers accepted and not yet durable can be refused after the fact."""
    inb = InboundSequencer()
    acc = inb.offer(1, 2)
    assert acc is not None
    inb.accept(acc)
    inb.committed(2)
    with pytest.raises(LinkProtocolError):
        inb.refuse_accepted(2, KojinBangoNotAuthentic("x"))
    with pytest.raises(LinkProtocolError):
        inb.refuse_accepted(3, KojinBangoNotAuthentic("x"))
