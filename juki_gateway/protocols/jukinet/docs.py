"""Writes docs/messages.md from the catalogue (``python -m juki_gateway.protocols.jukinet.docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

from juki_gateway.protocols.jukinet.messages import render_catalogue

DOC_PATH = Path(__file__).resolve().parents[3] / "docs" / "messages.md"


def main() -> int:
    """Regenerate the catalogue document; prints its path."""
    DOC_PATH.parent.mkdir(exist_ok=True)
    DOC_PATH.write_text(render_catalogue(), encoding="utf-8")
    print(DOC_PATH)
    return 0


if __name__ == "__main__":
    sys.exit(main())
