"""The admin port's message types: operator requests and their answers, one JSON body per frame.

An ``ADMIN_REQUEST`` frame carries a byte body of UTF-8 JSON ``{"action": …, "args": {…}}``;
the ``ADMIN_RESPONSE`` frame answers it with ``{"ok": true, "result": …}`` or ``{"ok": false,
"code": …, "wire_code": …, "message": …}``. These types travel on the admin port only, never on
a link. The session that serves them is ``juki_gateway/intermediate/admin.py``; the command
line's client is ``juki_gateway/intermediate/client.py``.
"""

from __future__ import annotations

from enum import IntEnum


class AdminMessageType(IntEnum):
    """Admin-port message types (byte bodies of UTF-8 JSON)."""

    ADMIN_REQUEST = 0x06A1
    ADMIN_RESPONSE = 0x06A2
