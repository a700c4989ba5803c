"""Reference server for ``make bench-tls``: asyncio + stdlib ``ssl`` with the project's framing.

Same mutual-TLS requirements as a gateway endpoint (client certificate required, CA-verified,
TLS 1.2+) and the same sans-IO frame channel as the gateway's sessions
(:class:`~juki_gateway.protocols.channel.FrameChannel`: header identity checks, PONG cache,
the same error policy), so the benchmark compares like with like. It answers every PING with a
PONG (``FrameChannel.drive``), writing all answers to one read in a single ``transport.write``.
Run as ``python -m benchmarks.asyncio_frame_server PKI_DIR``; prints ``port: N`` when ready.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
from pathlib import Path
from typing import Any

from juki_gateway.protocols.channel import ChannelApp, FrameChannel, TimestampSource

NODE = "cs-172014"


def peer_name(peercert: Any) -> str:
    """The common name of the client certificate (``ssl.SSLObject.getpeercert()`` form)."""
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


#: The channel's handler: PING is answered by the channel; every other frame is ignored (the
#: base application's defaults), a refused one gets the channel's default ERROR.
_HANDLER = ChannelApp()


class PingServer(asyncio.Protocol):
    """Answers PING with PONG."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.channel = FrameChannel(local=NODE, peer=peer_name(transport.get_extra_info("peercert")),
                                    timestamp=TimestampSource(time.time))

    def data_received(self, data: bytes) -> None:
        channel = self.channel
        channel.receive_data(data)
        out = channel.drive(_HANDLER)
        if out:
            self.transport.write(b"".join(out))  # type: ignore[attr-defined]
        if channel.closing:
            self.transport.close()


async def main(pki: Path) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki / f"{NODE}.pem", pki / f"{NODE}.key")
    ctx.load_verify_locations(pki / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = await asyncio.get_running_loop().create_server(PingServer, "127.0.0.1", 0, ssl=ctx)
    print(f"port: {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
