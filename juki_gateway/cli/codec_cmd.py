"""``juki-gateway codec …``: list layouts, encode JSON Lines, decode binary, explain bytes.

- ``codec layouts [--json]``: every layout with its record length and fields.
- ``codec encode --layout NAME [--profile P]``: JSON Lines on stdin → binary records on stdout,
  all or nothing: one bad line writes nothing and prints one line (input line, field, reason).
- ``codec decode --layout NAME [--profile P]``: binary on stdin → JSON Lines on stdout; bad input
  prints one line (record index, field, offset, reason).
- ``codec explain --layout NAME [--profile P] [FILE]``: item no., label, offset, width, raw hex
  and decoded value of every field, the table a reviewer reads.

Raw-bytes fields (keys, signatures, sealed boxes of the intermediate bodies) are hex strings in
JSON. Bad input exits 1 with one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from juki_gateway.codecs.errors import BadValueType, CodecError, RecordLengthError
from juki_gateway.codecs.fields import RawBytes
from juki_gateway.codecs.gaiji import PROFILES
from juki_gateway.codecs.record import RecordCodec, get_codec
from juki_gateway.errors import UsageError
from juki_gateway.protocols.catalogue import LAYOUTS

HEX_BYTES = 12


def register(subparsers: Any) -> None:
    """Add the ``codec`` command and its sub-commands."""
    codec = subparsers.add_parser("codec", help="fixed-length record codecs: layouts, encode, decode, explain")
    sub = codec.add_subparsers(dest="codec_command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("layouts", help="list every layout with its record length and fields")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_layouts)

    for name, func, text in (
        ("encode", cmd_encode, "JSON Lines on stdin -> binary records on stdout (all or nothing)"),
        ("decode", cmd_decode, "binary records on stdin -> JSON Lines on stdout"),
        ("explain", cmd_explain, "show every field of binary records: offset, width, raw hex, value"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--layout", required=True, metavar="NAME", help=f"one of: {', '.join(LAYOUTS)}")
        p.add_argument("--profile", default="jukinet", choices=sorted(PROFILES),
                       help="link profile deciding what counts as 外字 (default: jukinet)")
        if name == "explain":
            p.add_argument("file", nargs="?", type=Path, help="binary input (default: stdin)")
        p.set_defaults(func=func)


def _codec(args: argparse.Namespace) -> RecordCodec:
    return get_codec(args.layout, args.profile)


def _fail(message: str, exc: CodecError) -> int:
    print(f"juki-gateway: error [{exc.code}]: {message}", file=sys.stderr)
    return exc.exit_code


def layouts_as_data() -> list[dict[str, Any]]:
    """Every layout with its fields, as the JSON the ``layouts --json`` command prints."""
    return [
        {
            "name": layout.name,
            "label": layout.label,
            "record_length": layout.record_length,
            "fields": [
                {"no": f.no, "name": f.name, "label": f.label, "offset": off, "width": f.width,
                 "kind": f.kind.kind_name, "optional": f.optional, "derived": f.derive is not None}
                for f, off in zip(layout.fields, layout.offsets, strict=True)
            ],
        }
        for layout in LAYOUTS.values()
    ]


def cmd_layouts(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the layouts as a table or JSON."""
    out = out or sys.stdout
    data = layouts_as_data()
    if args.json:
        json.dump(data, out, ensure_ascii=False, indent=1)
        out.write("\n")
        return 0
    for layout in data:
        out.write(f"{layout['name']} ({layout['label']}): {layout['record_length']} bytes, "
                  f"{len(layout['fields'])} fields\n")
        for f in layout["fields"]:
            flags = ("optional " if f["optional"] else "") + ("derived" if f["derived"] else "")
            out.write(f"  {f['no']:>3} {f['name']:34} {f['offset']:>5} {f['width']:>4}  "
                      f"{f['kind']:16} {f['label']} {flags}\n")
    return 0


def cmd_encode(args: argparse.Namespace, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Encode JSON Lines; write nothing unless every line is valid."""
    codec = _codec(args)
    source = stdin or sys.stdin.buffer
    parts: list[bytes] = []
    for n, line in enumerate(source.read().decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            return _fail(f"input line {n}: not JSON: {exc.msg} at column {exc.colno}",
                         BadValueType("not JSON"))
        if not isinstance(rec, dict):
            return _fail(f"input line {n}: a record is a JSON object", BadValueType("not an object"))
        try:
            parts.append(codec.encode(_from_json(codec, rec)))
        except CodecError as exc:
            return _fail(f"input line {n}: field {exc.field or '-'}: {exc.reason}", exc)
    (stdout or sys.stdout.buffer).write(b"".join(parts))
    return 0


def cmd_decode(args: argparse.Namespace, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Decode binary records into JSON Lines; write nothing if any record is invalid."""
    codec = _codec(args)
    data = (stdin or sys.stdin.buffer).read()
    try:
        records = codec.decode_many(data)
    except CodecError as exc:
        return _fail(f"record {exc.record if exc.record is not None else 0}, field {exc.field or '-'}, "
                     f"offset {exc.offset}: {exc.reason}", exc)
    out = stdout or sys.stdout.buffer
    for rec in records:
        out.write(json.dumps(rec, ensure_ascii=False, default=_json_default).encode("utf-8") + b"\n")
    return 0


def _json_default(value: Any) -> str:
    """The JSON form of a value JSON has no type for: raw bytes as hex."""
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _from_json(codec: RecordCodec, rec: dict[str, Any]) -> dict[str, Any]:
    """``rec`` with the hex strings of raw-bytes fields turned into bytes."""
    out = dict(rec)
    for i, f in enumerate(codec.layout.fields):
        value = out.get(f.name)
        if isinstance(f.kind, RawBytes) and isinstance(value, str):
            try:
                out[f.name] = bytes.fromhex(value)
            except ValueError:
                raise BadValueType(f"{value[:20]!r}… is not hex", layout=codec.layout.name,
                                   field=f.name, offset=codec.layout.offsets[i]) from None
    return out


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns (full-width characters take two)."""
    cols = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(0, width - cols)


def _hex(raw: Any, width: int) -> str:
    if isinstance(raw, int):
        return f"{raw:0{2 * width}x}"
    shown = str(raw[:HEX_BYTES].hex(" "))
    return shown + (f" … ({width} bytes)" if width > HEX_BYTES else "")


#: What ``codec explain`` reads at most: the largest frame a link carries (8 MiB). It prints
#: several lines per field, so a larger input is a mistake (or an attack on the terminal).
EXPLAIN_LIMIT = 8 << 20


def cmd_explain(args: argparse.Namespace, stdin: BinaryIO | None = None, out: TextIO | None = None) -> int:
    """Print every field of every record; exit 1 after the first invalid record."""
    codec = _codec(args)
    out = out or sys.stdout
    try:
        if args.file is not None:
            with args.file.open("rb") as fh:
                data = fh.read(EXPLAIN_LIMIT + 1)
        else:
            data = (stdin or sys.stdin.buffer).read(EXPLAIN_LIMIT + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    if len(data) > EXPLAIN_LIMIT:
        raise UsageError(f"explain reads at most {EXPLAIN_LIMIT} bytes (one largest frame); "
                         "split the input, or use 'codec decode' for bulk")
    n = codec.record_length
    layout = codec.layout
    if not data or len(data) % n:
        return _fail(f"{len(data)} bytes is not a whole number of {n}-byte {layout.name} records",
                     RecordLengthError("bad length"))
    for r, start in enumerate(range(0, len(data), n)):
        raws = codec.split(data[start : start + n])
        out.write(f"{layout.name} record {r} ({codec.profile.name} profile, {n} bytes)\n")
        out.write(f"{'no':>3}  {_pad('label', 24)} {'offset':>6} {'width':>5}  {'raw hex':48} value\n")
        values: dict[str, Any] = {}
        failure: CodecError | None = None
        for i, (f, raw) in enumerate(zip(layout.fields, raws, strict=True)):
            try:
                value: Any = codec.decode_field(i, raw)
                values[f.name] = value
                shown = json.dumps(value, ensure_ascii=False, default=_json_default)
            except CodecError as exc:
                failure = failure or exc.located(record=r, shift=start)
                shown = f"!! {exc.reason}"
            out.write(f"{f.no:>3}  {_pad(f.label, 24)} {layout.offsets[i]:>6} {f.width:>5}  {_hex(raw, f.width):48} {shown}\n")
        if failure is None:
            try:
                codec.check_derived(values)
            except CodecError as exc:
                failure = exc.located(record=r, shift=start)
        if failure is not None:
            return _fail(f"record {r}, field {failure.field}, offset {failure.offset}: {failure.reason}", failure)
        out.write("derived items agree with their sources\n\n")
    return 0
