"""The one message catalogue: every frame type of every link and of the admin port, built once.

Each link keeps its table of entries beside its protocol; this module imports them all and
merges them into :data:`CATALOGUE`, an immutable mapping, at import time and nowhere else:

* the frame envelope's own types (ERROR, PING, PONG, ACK, NACK), ``codecs/messages.py``;
* the Juki-net links (0x01xx), ``protocols/jukinet/messages.py``;
* the intermediate-server links (0x06xx), ``protocols/intermediate/messages.py``;
* the admin port (0x06A1–0x06A2), ``protocols/intermediate/admin_messages.py``.

Two tables claiming one type number, or an entry whose body layout the codec does not know,
stop the import. The links' body layouts are codec layouts, registered with the codec when the
tables above are imported; :data:`LAYOUTS` lists them all, in a fixed order, once that is done.
The codec never reaches up for these tables: the frame decoders (through
:class:`~juki_gateway.protocols.channel.Catalogue`), the generated documents
(``python -m juki_gateway.docs``), the golden vectors and the ``codec`` command are handed what
they need from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from juki_gateway.codecs import layouts as codec_layouts
from juki_gateway.codecs.messages import BASE_MESSAGES, MessageSpec, record_lengths
from juki_gateway.codecs.schema import Layout
from juki_gateway.protocols.intermediate.admin_messages import ADMIN_MESSAGES
from juki_gateway.protocols.intermediate.messages import IMS_MESSAGES
from juki_gateway.protocols.jukinet.messages import JUKINET_MESSAGES


def build_catalogue(*tables: Mapping[int, MessageSpec]) -> Mapping[int, MessageSpec]:
    """One immutable catalogue, in type order, from the tables given; a type number taken by two
    tables is refused, and so is an entry whose body layout the codec does not know."""
    merged: dict[int, MessageSpec] = {}
    for table in tables:
        for msg_type, spec in table.items():
            if int(msg_type) in merged:
                raise ValueError(f"message type 0x{int(msg_type):04X} is already taken")
            spec.layout  # noqa: B018 -- raises UnknownLayout for an unregistered body layout
            merged[int(msg_type)] = spec
    return MappingProxyType(dict(sorted(merged.items())))


#: Every message type of the project: envelope, Juki-net, intermediate server, admin port.
CATALOGUE: Mapping[int, MessageSpec] = build_catalogue(
    BASE_MESSAGES, JUKINET_MESSAGES, IMS_MESSAGES, ADMIN_MESSAGES
)

#: Every type a link carries (Juki-net or intermediate server): the catalogue without the admin
#: port's types. Every link decodes all of them, so a type of another link gets the receiving
#: role's refusal rather than "unknown type" (2111).
LINK_MESSAGES: Mapping[int, MessageSpec] = MappingProxyType(
    {t: spec for t, spec in CATALOGUE.items() if t not in ADMIN_MESSAGES}
)


def link_record_lengths() -> dict[int, int]:
    """msg_type → body record length (0 = no body, 1 = a byte body) of every type a link carries."""
    return record_lengths(LINK_MESSAGES)


def _every_layout() -> Mapping[str, Layout]:
    registered = sorted(n for n in codec_layouts.LAYOUTS if n not in codec_layouts.CODEC_LAYOUT_NAMES)
    names = (*codec_layouts.CODEC_LAYOUT_NAMES, *registered)
    return MappingProxyType({name: codec_layouts.LAYOUTS[name] for name in names})


#: Every layout the codec runs, by name: the codec's own in table order, then the links' by
#: name (so the order does not depend on which link module was imported first).
LAYOUTS: Mapping[str, Layout] = _every_layout()
