"""Renders ``docs/wire-format.md`` from the layout tables, code tables, errors and messages.

:func:`render` is given the message catalogue and the layouts to list (the codec knows neither
the links' message types nor their body layouts: ``protocols/catalogue.py`` builds both);
``python -m juki_gateway.docs`` (``make docs``) writes the document and ``--check`` fails when the
committed file differs. Nothing in the document is written by hand, so offsets, widths and codes
can never drift from the codec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from juki_gateway.codecs.checkdigits import CHECK_SCHEMES
from juki_gateway.codecs.codetables import CODE_TABLES
from juki_gateway.codecs.errors import ERROR_CLASSES, FatalFrameError
from juki_gateway.codecs.gaiji import PROFILES, SUBSTITUTES
from juki_gateway.codecs.messages import MessageSpec
from juki_gateway.codecs.schema import Field, GaijiPattern, Layout

#: The items whose width layouts once disagreed on, and why each has the width it has now
#: (rendered with the width, kind and layouts read from the tables).
ONE_WIDTH: tuple[tuple[str, str], ...] = (
    ("atena_no",
     "the 副本 is keyed by it and always had 15 digits, so every 副本 ever stored has one; the "
     "16-character alphanumeric form the 符号 request and the flags accepted (`A000000000000001`) "
     "could be given a 符号 and a flag but never match a 副本. No stored value is re-encoded"),
    ("setai_no",
     "the width of the 副本 registration, which every stored 世帯番号 came through; the "
     "`answer-items` record had 16 ASCII characters (space-padded), so its stored records lose "
     "only padding (store migration 0012 re-encodes them)"),
    ("relationship",
     "the 副本's code: a requester gets the code the municipality registered (never a free-text "
     "rendering of it) and reads it with the code table below"),
    ("nationality", "the 副本's code (ISO 3166-1 alpha-3), as for 続柄"),
    ("residence_status", "the 副本's code, as for 続柄"),
    ("residence_period", "the 副本's form, YYMM (years, months)"),
    ("foreign_resident_class", "the 副本's code, as in 送付先情報"),
    ("count", "one width for the number of 住民票コード asked for; a draw is still 1–100"),
)


def _one_width(layouts: list[Layout], aliases: Mapping[tuple[str, str], str]) -> list[str]:
    fields: dict[str, list[tuple[Layout, Field]]] = {}
    for layout in layouts:
        for f in layout.fields:
            fields.setdefault(aliases.get((layout.name, f.name), f.name), []).append((layout, f))
    out = [
        "## One width per item",
        "",
        "Every item has one width and one kind (for a code: one code table) in every layout that",
        "carries it; `tests/test_layout_consistency.py` checks this over every layout. The 副本 items",
        "of the intermediate server's `answer-items` record are built from the `fukuhon-juminhyo`",
        "fields that carry them (their identifiers in brackets), so an item is the same bytes when",
        "it is registered and when it is answered. Where layouts once disagreed:",
        "",
        "| item | width | kind | layouts | why |",
        "|---|---:|---|---|---|",
    ]
    for name, why in ONE_WIDTH:
        carried = fields.get(name, [])
        if not carried:
            continue
        f = carried[0][1]
        names = ", ".join(f"`{layout.name}`" + (f" (`{g.name}`)" if g.name != name else "")
                          for layout, g in carried)
        out.append(f"| {f.label} `{name}` | {f.width} | {f.kind.describe(f.width)} | {names} | {why} |")
    out += [
        "",
        "The frame header carries 依頼管理番号, 更新順番号 and 異常時更新順番号 as 8-byte binary",
        "integers, the envelope's form of these numbers, which holds every value of the records'",
        "decimal fields (16 and 12 digits). The frame header's `version` (版数 of the frame format)",
        "and the ERROR record's `detail` are other items than a permission list's `version` and a",
        "副本 registration result's `detail`.",
        "",
        "**通称 and 旧氏.** Today's 住民票 may hold a foreign resident's 通称 and, at a person's",
        "request, a 旧氏, and both reach today's 本人確認情報 and card. The `honnin-kakunin` and",
        "`soufusaki` layouts keep to the seed's item lists (別添2 (2) and (3), 36 and 59 items), which",
        "have neither, so a Juki-net peer built from those lists reads every record unchanged. The",
        "副本 is the project's own choice from 別添2 (1), which lists 通称 (54) and 旧氏情報 (105):",
        "`fukuhon-juminhyo` carries both as optional items with their 外字数, and the intermediate",
        "server provides them as 副本 items 15 (`tsusho`) and 16 (`kyuuji`).",
        "",
    ]
    return out


def _gaiji_pattern(layouts: list[Layout]) -> list[str]:
    out: list[str] = []
    for layout in layouts:
        labels = {f.name: f.label for f in layout.fields}
        for f in layout.fields:
            if not isinstance(f.derive, GaijiPattern):
                continue
            sources = f.derive.sources
            out += [
                f"## 外字パターン (`{layout.name}` item {f.no}, `{f.name}`)",
                "",
                f"{f.width} ASCII characters `0`/`1`, one per double-byte item of the record below, in",
                "this order. Position n is `1` exactly when that item holds at least one 外字 of the",
                "link's profile (its 外字数 is not 0), whether or not the 外字 has a 代替文字, and `0`",
                "otherwise (an empty optional item is `0`). The 外字フラグ is `1` exactly when some",
                "position is `1`. It says which items hold 外字, nothing more: how many is each",
                "item's 外字数; whether they all have a substitute is 代替文字変換結果, and where the",
                "substitutions are, the 代替文字 position items. The encoder derives it; a record",
                "whose pattern disagrees with its text is refused. A double-byte item without a",
                "外字数 (such as 市町村名) has no position.",
                "",
                "| position | field | item |",
                "|---:|---|---|",
                *[f"| {n} | `{src}` | {labels[src]} |" for n, src in enumerate(sources, start=1)],
                "",
            ]
    return out


def _notes(f: Field) -> str:
    parts = []
    if f.optional:
        parts.append("optional (empty form)")
    if f.derive is not None:
        parts.append(f"derived: {f.derive.describe()}")
    if f.note:
        parts.append(f.note)
    return "; ".join(parts)


def layout_section(layout: Layout, level: str = "##") -> list[str]:
    """The Markdown section of one layout table (also used by ``docs/intermediate.md``)."""
    out = [
        f"{level} Layout `{layout.name}` — {layout.label}",
        "",
        layout.description,
        "",
        f"Record length: **{layout.record_length}** bytes, {len(layout.fields)} items.",
        "",
        "| no | field | label | offset | width | kind | notes |",
        "|---:|---|---|---:|---:|---|---|",
    ]
    for f, off in zip(layout.fields, layout.offsets, strict=True):
        out.append(f"| {f.no} | `{f.name}` | {f.label} | {off} | {f.width} | {f.kind.describe(f.width)} | {_notes(f)} |")
    out.append("")
    return out


def render(catalogue: Mapping[int, MessageSpec], layouts: Iterable[Layout],
           aliases: Mapping[tuple[str, str], str] | None = None) -> str:
    """The whole document as Markdown: ``layouts`` in the order given, every message type of
    ``catalogue``; ``aliases`` names the item a (layout, field) carries where its identifier is
    another (the intermediate server's answer items)."""
    out: list[str] = [
        "# Wire format",
        "",
        "<!-- Generated by `make docs` (python -m juki_gateway.docs) from the layout tables. Do not edit. -->",
        "",
        "Every link carries frames: a fixed-length header (`frame-header`), then `record_count` fixed-length",
        "records of the message type's body layout, then an optional signature trailer (`trailer_length`",
        "bytes). Binary integers are big-endian. Records are ASCII and UTF-16BE fields, no separators.",
        "",
        "## Conventions",
        "",
        "- **Empty form** of an optional field: all spaces (0x20) for ASCII kinds, all U+3000 for",
        "  double-byte kinds; its JSON value is `null`. A required field may not be empty.",
        "- **Double-byte text** is UTF-16BE, right-padded with U+3000 (`30 00`); it never ends with U+3000,",
        "  and never holds ASCII, C0/C1 controls, half-width katakana or forms, the BOM or specials.",
        "  ASCII fields are left-aligned and right-padded with spaces unless they are fixed digits.",
        "- **Derived items** (外字数, 外字フラグ, 代替文字 and positions, 清音化かな, 項目長) are computed by the",
        "  encoder (and checked when a caller supplies them) and cross-checked by the decoder.",
        "- **項目長** is the byte length of the item's value without padding.",
        "- **外字** depend on the link profile:",
        "",
    ]
    for p in PROFILES.values():
        out.append(f"  - `{p.name}`: every character outside {p.charset} ({len(p.chars)} characters)")
    out += ["", "## Check digits", "", "| code | digits | weights | check digit by residue r = Σ mod 11 (r = 0..10) |", "|---|---|---|---|"]
    for s in CHECK_SCHEMES.values():
        out.append(f"| {s.label} (`{s.name}`) | {s.digits} | {','.join(map(str, s.weights))} | {' '.join(map(str, s.check_by_residue))} |")
    out += [
        "",
        "住民票コード's rule (weights 2..7 from the rightmost digit) is the project's documented assumption;",
        "the ordinance was not at hand.",
        "",
    ]
    tables = list(layouts)
    out += _one_width(tables, aliases or {})
    for layout in tables:
        out += layout_section(layout)
    out += _gaiji_pattern(tables)
    out += ["## Code tables", ""]
    for t in CODE_TABLES:
        out += [f"### `{t.name}` — {t.label}", ""]
        if t.rule:
            out += [f"Rule: {t.rule}.", ""]
        out += ["| code | meaning |", "|---|---|"]
        for code, meaning in (t.doc_codes or t.codes).items():
            out.append(f"| `{code}` | {meaning} |")
        out.append("")
    out += ["## 代替文字 substitution table", "", "| 外字 | code point | substitute |", "|---|---|---|"]
    for src, dst in SUBSTITUTES.items():
        out.append(f"| {src} | U+{ord(src):04X} | {dst} |")
    out += [
        "",
        "A 外字 without a substitute is kept as is, counted in 外字数 and flagged; nothing is replaced by '?'.",
        "",
        "## Message types",
        "",
        "| msg_type | name | body layout | profile | meaning |",
        "|---|---|---|---|---|",
    ]
    for msg_type, spec in sorted(catalogue.items()):
        body = "bytes" if spec.byte_body else spec.body_layout or "—"
        out.append(f"| 0x{msg_type:04X} | {spec.name} | {body} | {spec.profile} | {spec.description} |")
    out += [
        "",
        "## Error codes",
        "",
        "Fatal errors close the connection (the stream lost sync); the others reject one frame or record.",
        "",
        "| wire code | code | class | fatal | meaning |",
        "|---:|---|---|---|---|",
    ]
    for cls in ERROR_CLASSES:
        fatal = "yes" if issubclass(cls, FatalFrameError) else ""
        out.append(f"| {cls.wire_code} | `{cls.code}` | {cls.__name__} | {fatal} | {cls.summary} |")
    out.append("")
    return "\n".join(out)
