"""docs/wire-format.md is generated from the tables and must be current."""

from __future__ import annotations

from pathlib import Path

from juki_gateway.codecs import docs
from juki_gateway.codecs.errors import ERROR_CLASSES

DOC = Path(__file__).resolve().parent.parent / "docs" / "wire-format.md"


def test_wire_format_doc_is_current() -> None:
    """The committed document equals what the tables produce (run `make docs` when not)."""
    assert DOC.read_text(encoding="utf-8") == docs.render()


def test_wire_codes_are_unique_four_digit_numbers() -> None:
    """Every error class has its own 4-digit wire code."""
    codes = [cls.wire_code for cls in ERROR_CLASSES]
    assert len(set(codes)) == len(codes)
    assert all(1000 <= c <= 9999 for c in codes)
    assert len({cls.code for cls in ERROR_CLASSES}) == len(codes)
