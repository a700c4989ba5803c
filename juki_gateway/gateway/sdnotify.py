"""systemd's service notification protocol (``sd_notify``), for ``Type=notify`` units.

systemd hands the service the address of a unix datagram socket in ``$NOTIFY_SOCKET`` (a path,
or ``@name`` for the abstract namespace) and waits for ``READY=1`` before it counts the unit as
started (so ``systemctl start`` returns, and units ordered ``After=`` it start, only once every
endpoint listens). ``serve`` sends ``READY=1`` with a ``STATUS=`` line once every listener is
bound, and ``STOPPING=1`` when a stop request arrives. Without ``$NOTIFY_SOCKET`` (not run by
systemd) nothing is sent. The protocol is one datagram of ``KEY=VALUE`` lines; see
sd_notify(3).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

ENV = "NOTIFY_SOCKET"


def notify_address(environ: Mapping[str, str]) -> str | None:
    """The socket address ``$NOTIFY_SOCKET`` names (``@`` → abstract), or None when unset.

    Other address families systemd may pass (``vsock:``) are not supported: None.
    """
    raw = environ.get(ENV, "")
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return None


def sd_notify(*states: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``states`` (``"READY=1"``, ``"STATUS=…"`` …) as one datagram to ``$NOTIFY_SOCKET``.

    True when sent, False when there is no socket to send to. An ``OSError`` (the manager went
    away, the socket is not ours) is the caller's to log: the daemon runs on regardless.
    """
    address = notify_address(os.environ if environ is None else environ)
    if address is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall("\n".join(states).encode("utf-8"))
    return True
