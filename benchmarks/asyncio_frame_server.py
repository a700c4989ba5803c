"""Reference server for ``make bench-tls``: asyncio + stdlib ``ssl`` with the codec's framing.

Same mutual-TLS requirements as a gateway endpoint (client certificate required, CA-verified,
TLS 1.2+) and the same frame functions (``FrameDecoder``, ``encode_frame``); it answers every
PING with a PONG, writing all answers to one read in a single ``transport.write``.
Run as ``python -m benchmarks.asyncio_frame_server PKI_DIR``; prints ``port: N`` when ready.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from pathlib import Path

from juki_gateway.codecs.frame import FrameDecoder, encode_frame
from juki_gateway.codecs.messages import MessageType


class PingServer(asyncio.Protocol):
    """Answers PING with PONG."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.decoder = FrameDecoder()

    def data_received(self, data: bytes) -> None:
        self.decoder.receive_data(data)
        out = []
        ts = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        while (ev := self.decoder.next_event()) is not None:
            if ev.header.msg_type == MessageType.PING:
                out.append(encode_frame(MessageType.PONG, "cs-172014", ev.header.sender, timestamp=ts))
        if out:
            self.transport.write(b"".join(out))  # type: ignore[attr-defined]


async def main(pki: Path) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki / "cs-172014.pem", pki / "cs-172014.key")
    ctx.load_verify_locations(pki / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = await asyncio.get_running_loop().create_server(PingServer, "127.0.0.1", 0, ssl=ctx)
    print(f"port: {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
