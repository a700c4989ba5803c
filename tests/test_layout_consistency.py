"""One width and one kind per item across every layout (docs/wire-format.md, "One width per item").

The check runs over every layout the codec knows (``LAYOUTS`` after the message catalogue has
registered the links' bodies): fields naming the same item must agree in width and kind (for a
code, the same code table). An item is named by its identifier; the 副本 answer items, whose
identifiers are the brief's item keys, name the ``fukuhon-juminhyo`` field they carry. The only
exceptions are the table below, each with its reason; a new layout is checked without anyone
having to list it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import pytest

from juki_gateway.codecs import codetables as ct
from juki_gateway.codecs.fields import Code, Digits, Number, UInt
from juki_gateway.codecs.schema import Field, Layout
from juki_gateway.codecs.textfields import AsciiToken
from juki_gateway.protocols.catalogue import LAYOUTS
from juki_gateway.protocols.intermediate.items import ANSWER_ITEMS_LAYOUT, ITEM_ALIASES

#: answer-items field -> the fukuhon-juminhyo field (the item) it carries
ALIASES = ITEM_ALIASES

#: (layout, field) -> why it is another item than the fields elsewhere sharing its identifier
DISTINCT: dict[tuple[str, str], str] = {
    ("frame-header", "version"): "版数: the frame format's version, not a permission list's 版",
    ("error", "detail"): "the readable detail of an ERROR, not a 副本 registration result's",
}

#: The frame header's binary integers name items that records carry as decimal digits: checked
#: instead that the binary field holds every value the decimal one can (see ENVELOPE_RULE).
ENVELOPE = "frame-header"
BINARY = (UInt,)
DECIMAL = (Number, Digits)


def item_of(layout: Layout, field: Field) -> str:
    """The item a field carries."""
    return ALIASES.get((layout.name, field.name), field.name)


def kind_of(field: Field) -> tuple[str, str]:
    """What must agree besides the width: the kind, and its description (code table, alphabet,
    check-digit scheme, character repertoire)."""
    return type(field.kind).__name__, field.kind.describe(field.width)


def disagreements(layouts: Iterable[Layout]) -> list[str]:
    """Every item carried in more than one (width, kind), with the layouts of each form."""
    forms: dict[str, dict[tuple[int, tuple[str, str]], list[str]]] = defaultdict(
        lambda: defaultdict(list))
    envelope: dict[str, Field] = {}
    for layout in layouts:
        for f in layout.fields:
            if (layout.name, f.name) in DISTINCT:
                continue
            if layout.name == ENVELOPE and isinstance(f.kind, BINARY):
                envelope[f.name] = f
                continue
            forms[item_of(layout, f)][(f.width, kind_of(f))].append(layout.name)
    out = [
        f"{item}: " + "; ".join(f"{w} bytes {k[1]} in {', '.join(sorted(names))}"
                                for (w, k), names in sorted(seen.items()))
        for item, seen in sorted(forms.items())
        if len(seen) > 1
    ]
    for name, f in sorted(envelope.items()):
        for width, _ in forms.get(name, {}):
            if 256 ** f.width <= 10 ** width - 1:
                out.append(f"{name}: the frame header's {f.width} bytes cannot hold {width} digits")
    return out


def test_every_layout_carries_each_item_in_one_width_and_kind() -> None:
    """The table-driven check over every layout: no item has two forms."""
    assert disagreements(LAYOUTS.values()) == []


def test_the_envelope_fields_are_the_only_binary_forms_of_record_items() -> None:
    """The frame header's 依頼管理番号 and 更新順番号 are binary forms of record items, and each
    holds every value of the record's decimal form (else the check above would say so)."""
    header = LAYOUTS[ENVELOPE]
    shared = {f.name for f in header.fields if isinstance(f.kind, BINARY)} & {
        item_of(layout, f) for layout in LAYOUTS.values() if layout.name != ENVELOPE
        for f in layout.fields if isinstance(f.kind, DECIMAL)
    }
    assert shared == {"request_no", "seq", "recovery_seq"}


def test_the_exceptions_still_exist() -> None:
    """Every listed exception names a real field (a stale entry would hide nothing, but lie)."""
    for layout, field in [*DISTINCT, *ALIASES]:
        assert field in {f.name for f in LAYOUTS[layout].fields}, (layout, field)


@pytest.mark.parametrize(
    ("drifted", "expect"),
    [
        (Field(1, "atena_no", "団体内統合宛名番号", 16, AsciiToken("0-9A-Za-z", "letters")),
         "atena_no: "),
        (Field(1, "setai_no", "世帯番号", 16, Digits()), "setai_no: "),
        (Field(1, "residence_status", "在留資格", 2, Code(ct.CHANGE_REASON)), "residence_status: "),
        (Field(1, "seq", "更新順番号", 20, Number()), "seq: the frame header's 8 bytes"),
    ],
)
def test_the_check_finds_a_drifted_layout(drifted: Field, expect: str) -> None:
    """A layout carrying an item in another width or kind is named, with every form seen."""
    layouts = [*LAYOUTS.values(), Layout("drifted", "ずれた", (drifted,))]
    found = [line for line in disagreements(layouts) if line.startswith(expect)]
    assert found and ("drifted" in found[0] or "frame header" in expect), found


def test_one_width_per_item_values() -> None:
    """The widths docs/wire-format.md names: 団体内統合宛名番号 15 digits, 世帯番号 12 digits, and
    the coded 副本 items in an answer as the 副本's codes."""
    answer = {f.name: f for f in ANSWER_ITEMS_LAYOUT.layout.fields}
    for layout in LAYOUTS.values():
        for f in layout.fields:
            if f.name == "atena_no":
                assert (f.width, type(f.kind)) == (15, Digits), layout.name
    assert (answer["setai_no"].width, type(answer["setai_no"].kind)) == (12, Digits)
    for key, table in (("zokugara", ct.RELATIONSHIP), ("zairyu_shikaku", ct.RESIDENCE_STATUS),
                       ("ho30_45", ct.FOREIGN_CLASS), ("seibetsu", ct.SEX),
                       ("jumin_kubun", ct.RESIDENT_CLASS)):
        kind = answer[key].kind
        assert isinstance(kind, Code) and kind.table is table, key
