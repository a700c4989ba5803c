"""The admin port's message types: operator requests and their answers, one JSON body per frame.

An ``ADMIN_REQUEST`` frame carries a byte body of UTF-8 JSON ``{"action": …, "args": {…}}``;
the ``ADMIN_RESPONSE`` frame answers it with ``{"ok": true, "result": …}`` or ``{"ok": false,
"code": …, "wire_code": …, "message": …}``. These types travel on the admin port only, never on
a link; their entries (:data:`ADMIN_MESSAGES`) join the one message catalogue built in
``juki_gateway/protocols/catalogue.py``. The session that serves them is
``juki_gateway/gateway/intermediate/admin.py``; the command line's client is
``juki_gateway/cli/admin_client.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

from juki_gateway.codecs.messages import MessageSpec, message_table
from juki_gateway.protocols.intermediate.bodies import PROFILE


class AdminMessageType(IntEnum):
    """Admin-port message types (byte bodies of UTF-8 JSON)."""

    ADMIN_REQUEST = 0x06A1
    ADMIN_RESPONSE = 0x06A2


#: The admin port's entries of the catalogue, by type (an immutable table).
ADMIN_MESSAGES: Mapping[int, MessageSpec] = message_table({
    AdminMessageType.ADMIN_REQUEST: MessageSpec(
        "ADMIN_REQUEST", None, "an operator's request: UTF-8 JSON (admin port only)", PROFILE,
        byte_body=True, direction="operator → intermediate server", responses="ADMIN_RESPONSE",
    ),
    AdminMessageType.ADMIN_RESPONSE: MessageSpec(
        "ADMIN_RESPONSE", None, "the result or the refusal: UTF-8 JSON (admin port only)", PROFILE,
        byte_body=True, direction="intermediate server → operator", responses="—",
    ),
})
