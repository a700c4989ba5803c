"""Every generated document of the project, and the one command that writes or checks them.

``python -m juki_gateway.docs`` (``make docs``) rewrites each document of :data:`DOCUMENTS`;
``--check`` writes nothing, names the stale ones and exits 1 (``tests/test_docs.py`` runs it).
Each renderer lives beside what it documents and is handed what it needs from the layers above
it; the codec's, for one, is given the message catalogue and the layouts built in
``juki_gateway/protocols/catalogue.py``:

* ``docs/wire-format.md``: layouts, code tables, codec errors, every message type
  (``juki_gateway/codecs/docs.py``);
* ``docs/messages.md``: the Juki-net message catalogue and the links' error codes
  (``juki_gateway/protocols/jukinet/docs.py``);
* ``docs/intermediate.md``: the intermediate server's wire format, decision, flags and codes
  (``juki_gateway/docs/intermediate.py``);
* ``docs/error-codes.md``: every wire code of the project, from the one error registry
  (:mod:`.error_codes`, ``juki_gateway/error_registry.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from juki_gateway.codecs import docs as wire_format
from juki_gateway.docs import error_codes, intermediate
from juki_gateway.protocols.catalogue import CATALOGUE, LAYOUTS
from juki_gateway.protocols.intermediate.items import ITEM_ALIASES
from juki_gateway.protocols.jukinet import docs as jukinet


@dataclass(frozen=True, slots=True)
class Document:
    """One generated document: where it lives (relative to the repository root), how it is
    rendered, and what it is rendered from (for ``--help``)."""

    path: str
    render: Callable[[], str]
    source: str


DOCUMENTS: tuple[Document, ...] = (
    Document("docs/wire-format.md",
             lambda: wire_format.render(CATALOGUE, LAYOUTS.values(), ITEM_ALIASES),
             "layout and code tables, codec errors, message catalogue"),
    Document("docs/messages.md", lambda: jukinet.render(CATALOGUE),
             "Juki-net message catalogue, link error codes"),
    Document("docs/intermediate.md", intermediate.render,
             "intermediate-server layouts, decision, flags, roles, codes"),
    Document("docs/error-codes.md", error_codes.render,
             "every wire code and code name, from the error registry"),
)


def stale(root: Path) -> list[Path]:
    """The documents under ``root`` that are missing or differ from what their tables render."""
    out: list[Path] = []
    for doc in DOCUMENTS:
        path = root / doc.path
        if not path.is_file() or path.read_text(encoding="utf-8") != doc.render():
            out.append(path)
    return out


def write(root: Path) -> list[Path]:
    """Render every document into ``root`` (folders made when missing); returns the paths."""
    out: list[Path] = []
    for doc in DOCUMENTS:
        path = root / doc.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc.render(), encoding="utf-8")
        out.append(path)
    return out
