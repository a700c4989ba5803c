"""A Juki-net node's requests: correlating the ones it sends, dispatching the ones it serves.

A request (search, 個人番号 and its change, 住民票コード pool and draw, consistency check) carries a non-zero
依頼管理番号 in ``request_no`` that its response or ERROR echoes; sequenced frames carry 0, so the
two never mix on one connection. :meth:`Requests.send` numbers a request and returns a Deferred
for its answer (or, for a stream, hands every answer frame to ``on_frame`` until
:meth:`Requests.finish`); a link going down fails the requests waiting on it. The requests a
node serves are dispatched to :mod:`juki_gateway.gateway.jukinet.services`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, fail

from juki_gateway.codecs.frame import Frame
from juki_gateway.codecs.messages import MessageType, decode_error
from juki_gateway.errors import JukiError
from juki_gateway.protocols.jukinet.messages import JukinetMessage as M

if TYPE_CHECKING:
    from juki_gateway.gateway.jukinet.connection import NodeConnection
    from juki_gateway.gateway.jukinet.node import JukinetNode

ERROR = MessageType.ERROR

#: The frames that answer a request (matched by their request_no).
REQUEST_REPLIES = frozenset({ERROR, M.SEARCH_RESPONSE, M.KOJIN_BANGO_RESPONSE, M.POOL_RESPONSE,
                             M.KOJIN_BANGO_CHANGE_RESPONSE, M.JUMINHYO_CODE_DRAW_RESPONSE,
                             M.MOVE_IN_NOTICE_LIST, M.TENSHUTSU_SHOMEI_ACCEPTED,
                             M.TENSHUTSU_SHOMEI_RESPONSE, M.CONSISTENCY_DIFF,
                             M.CONSISTENCY_END})


class RemoteError(JukiError):
    """The peer answered a request with an ERROR frame."""

    code = "remote_error"

    def __init__(self, wire_code: int, name: str, detail: str) -> None:
        super().__init__(f"peer refused: {name} ({wire_code}): {detail}")
        self.remote_code = wire_code
        self.remote_name = name
        self.detail = detail


class LinkDown(JukiError):
    """No connection to the peer a request needs."""

    code = "link_down"


class Requests:
    """The requests one node has in flight, and the ones it serves (see the module docstring)."""

    def __init__(self, node: JukinetNode) -> None:
        self.node = node
        self.pending: dict[int, Callable[[Frame], None]] = {}  # request_no → answer handler
        self._peer: dict[int, str] = {}
        self._deferreds: dict[int, Deferred[Frame]] = {}
        self._numbers = itertools.count(1)
        self.last_request_no = 0

    # -- sending ----------------------------------------------------------------------------
    def send(self, peer: str, msg_type: int, body: bytes, record_count: int,
             on_frame: Callable[[Frame], None] | None = None, *, seq: int = 0) -> Deferred[Frame]:
        """Send a request on the link to ``peer`` (``seq``: the header's, where the request
        uses it); fires with the response frame.

        With ``on_frame`` every response frame with this request's number goes to it (streams),
        and the Deferred fires only through :meth:`finish`.
        """
        link = self.node.links.get(peer)
        if link is None or link.proto is None or link.proto.closed:
            return fail(LinkDown(f"{self.node.node_id} has no connection to {peer}"))
        rn = self.last_request_no = next(self._numbers)
        d: Deferred[Frame] = Deferred()

        def got(frame: Frame) -> None:
            if on_frame is not None and frame.msg_type != ERROR:
                on_frame(frame)
                return
            self._forget(rn)
            if frame.msg_type == ERROR:
                code, name, detail = decode_error(frame.body)
                d.errback(RemoteError(code, name, detail))
            else:
                d.callback(frame)

        self.pending[rn] = got
        self._peer[rn] = peer
        self._deferreds[rn] = d
        link.proto.send_frame(msg_type, body, record_count=record_count, request_no=rn, seq=seq)
        return d

    def answer(self, frame: Frame) -> bool:
        """Hand an answer frame to the request it names; False when it names none."""
        handler = self.pending.get(frame.header.request_no)
        if handler is None or frame.msg_type not in REQUEST_REPLIES:
            return False
        handler(frame)
        return True

    def finish(self, rn: int, frame: Frame) -> None:
        """Complete a streaming request."""
        d = self._forget(rn)
        if d is not None and not d.called:
            d.callback(frame)

    def fail(self, rn: int, exc: Exception) -> None:
        """Fail request ``rn`` (an unreadable answer, its link gone)."""
        d = self._forget(rn)
        if d is not None and not d.called:
            d.errback(exc)

    def link_down(self, peer: str) -> None:
        """The link to ``peer`` went down: every request waiting on it fails."""
        for rn, p in list(self._peer.items()):
            if p == peer:
                self.fail(rn, LinkDown(f"link to {peer} went down"))

    def _forget(self, rn: int) -> Deferred[Frame] | None:
        self.pending.pop(rn, None)
        self._peer.pop(rn, None)
        return self._deferreds.pop(rn, None)

    # -- serving ----------------------------------------------------------------------------
    def serve(self, proto: NodeConnection, frame: Frame) -> None:
        """A request a peer sent this node: the service of its type answers it."""
        from juki_gateway.gateway.jukinet import services

        mt = frame.msg_type
        if mt == M.SEARCH_REQUEST:
            services.serve_search(self.node, proto, frame)
        elif mt == M.KOJIN_BANGO_REQUEST:
            services.serve_kojin_bango(self.node, proto, frame)
        elif mt == M.KOJIN_BANGO_CHANGE_REQUEST:
            services.serve_kojin_bango_change(self.node, proto, frame)
        elif mt == M.POOL_REQUEST:
            services.serve_pool(self.node, proto, frame)
        elif mt == M.JUMINHYO_CODE_DRAW_REQUEST:
            services.serve_juminhyo_code_draw(self.node, proto, frame)
        elif mt == M.MOVE_IN_NOTICE_FETCH:
            services.serve_move_in_fetch(self.node, proto, frame)
        elif mt == M.TENSHUTSU_SHOMEI_NOTIFY:
            services.serve_tenshutsu_shomei_notify(self.node, proto, frame)
        elif mt == M.TENSHUTSU_SHOMEI_REQUEST:
            services.serve_tenshutsu_shomei_request(self.node, proto, frame)
        elif mt == M.SHORI_TSUBAN_FETCH:
            services.serve_shori_tsuban_fetch(self.node, proto, frame)
        elif mt in (M.CONSISTENCY_CHUNK, M.CONSISTENCY_END):
            services.serve_consistency(self.node, proto, frame)
