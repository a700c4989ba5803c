"""The fast record codec: one specialised decode/encode function per layout and profile.

:func:`get_codec` turns a layout table into a :class:`RecordCodec`. Like ``namedtuple``, it
generates the Python source of a decoder and an encoder for that one layout (over a precompiled
``struct.Struct``, with every field's validation and every derived-item cross-check inlined)
and compiles it once. This is our own generated code from our own tables; it is *not* construct's
``compile()``, and it validates exactly as the reference path does (``tests/test_reference.py``
proves they agree on valid, random and corrupted input).

Errors: the generated functions only decide *whether* the bytes are valid. When they are not,
the codec re-runs the field-by-field path (:meth:`RecordCodec.locate_decode_error`), which raises
the :class:`CodecError` naming the layout, field, byte offset and reason. If that path accepts
what the fast path refused, the codec reports an internal error instead of hiding the bug.
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from juki_gateway.codecs.errors import (
    BadValueType,
    CodecError,
    DerivedMismatch,
    MissingField,
    RecordLengthError,
    UnknownField,
    UnknownLayout,
)
from juki_gateway.codecs.fields import Gen, Text
from juki_gateway.codecs.gaiji import JUKINET, PROFILES, Profile
from juki_gateway.codecs.layouts import LAYOUTS
from juki_gateway.codecs.schema import SUBSTITUTING, GaijiCount, Layout

Record = dict[str, Any]


def _indent(lines: list[str], n: int) -> list[str]:
    return [" " * n + line for line in lines]


class RecordCodec:
    """Decode and encode the records of one layout under one link profile."""

    def __init__(self, layout: Layout, profile: Profile = JUKINET) -> None:
        self.layout = layout
        self.profile = profile
        self.record_length = layout.record_length
        self.struct = struct.Struct(">" + "".join(f.kind.struct_code(f.width) for f in layout.fields))
        if self.struct.size != layout.record_length:
            raise ValueError(f"layout {layout.name}: struct size differs from the table")
        self.names: frozenset[str] = frozenset(f.name for f in layout.fields)
        self._fast_decode, self._fast_encode = self._generate()

    # -- public API ---------------------------------------------------------------------

    def decode(self, data: bytes) -> Record:
        """The record held by ``data`` (exactly one record); raises CodecError when invalid."""
        try:
            return self._fast_decode(data)
        except Exception:
            pass
        self.locate_decode_error(data)
        raise CodecError("internal: the fast decoder refused a valid record", layout=self.layout.name)

    def decode_many(self, data: bytes) -> list[Record]:
        """Every record of ``data``, which must be a whole number of records."""
        n = self.record_length
        if len(data) % n:
            raise RecordLengthError(
                f"{len(data)} bytes is not a whole number of {n}-byte records",
                layout=self.layout.name,
                offset=len(data) - len(data) % n,
                record=len(data) // n,
            )
        fast = self._fast_decode
        out: list[Record] = []
        view = memoryview(data)
        for i in range(0, len(data), n):
            chunk = bytes(view[i : i + n])
            try:
                out.append(fast(chunk))
            except Exception:
                try:
                    out.append(self.decode(chunk))
                except CodecError as exc:
                    raise exc.located(record=i // n, shift=i) from None
        return out

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The bytes of ``record`` (derived items computed, and checked when supplied)."""
        try:
            return self._fast_encode(record)
        except Exception:
            pass
        self.locate_encode_error(record)
        raise CodecError("internal: the fast encoder refused a valid record", layout=self.layout.name)

    def encode_many(self, records: Iterable[Mapping[str, Any]]) -> bytes:
        """The concatenated bytes of ``records``; a failure names the record's index."""
        parts: list[bytes] = []
        for i, rec in enumerate(records):
            try:
                parts.append(self.encode(rec))
            except CodecError as exc:
                raise exc.located(record=i) from None
        return b"".join(parts)

    # -- the field-by-field path (error location and explanation) -----------------------

    def split(self, data: bytes) -> list[Any]:
        """The raw values of each field (bytes, or ints for binary fields)."""
        if len(data) != self.record_length:
            raise RecordLengthError(
                f"{len(data)} bytes, a {self.layout.name} record is {self.record_length}",
                layout=self.layout.name,
                offset=min(len(data), self.record_length),
            )
        return list(self.struct.unpack(data))

    def decode_field(self, index: int, raw: Any) -> Any:
        """The value of field ``index`` from its raw value; raises a located CodecError."""
        f = self.layout.fields[index]
        try:
            if f.optional and raw == f.kind.empty(f.width):
                return None
            return f.kind.decode(raw, f.width, self.profile)
        except CodecError as exc:
            raise exc.located(layout=self.layout.name, field=f.name, offset=self.layout.offsets[index]) from None
        except Exception as exc:  # a kind's bug must still surface as a CodecError
            raise CodecError(f"cannot decode: {exc}", layout=self.layout.name, field=f.name,
                             offset=self.layout.offsets[index]) from None

    def check_derived(self, values: Mapping[str, Any]) -> None:
        """Raise DerivedMismatch at the first derived item that disagrees with its sources."""
        for i, f in enumerate(self.layout.fields):
            if f.derive is None:
                continue
            expected = f.derive.compute([values[s] for s in f.derive.sources], self.profile)
            if values[f.name] != expected:
                raise DerivedMismatch(
                    f"{f.label} is {values[f.name]!r} but {', '.join(f.derive.sources)} give {expected!r}",
                    layout=self.layout.name,
                    field=f.name,
                    offset=self.layout.offsets[i],
                )

    def locate_decode_error(self, data: bytes) -> Record:
        """Decode field by field; raise the located CodecError of the first fault."""
        raws = self.split(data)
        values = {f.name: self.decode_field(i, raw) for i, (f, raw) in enumerate(zip(self.layout.fields, raws, strict=True))}
        self.check_derived(values)
        return values

    def complete(self, record: Mapping[str, Any]) -> Record:
        """``record`` with derived items computed (and checked when supplied), unvalidated keys refused."""
        self.check_keys(record)
        values: Record = {}
        for f in self.layout.fields:
            if f.derive is None:
                v = record.get(f.name)
                if (v is None or v == "") and f.optional:
                    v = None
                values[f.name] = v
        for i in self.layout.derive_order:
            f = self.layout.fields[i]
            if f.derive is not None:
                expected = f.derive.compute([values[s] for s in f.derive.sources], self.profile)
                given = record.get(f.name)
                if given is not None and given != expected:
                    raise DerivedMismatch(
                        f"{f.label} given as {given!r} but {', '.join(f.derive.sources)} give {expected!r}",
                        layout=self.layout.name, field=f.name, offset=self.layout.offsets[i],
                    )
                values[f.name] = expected
        return values

    def check_keys(self, record: Mapping[str, Any]) -> None:
        """Raise when ``record`` is not a mapping of this layout's field names."""
        if not isinstance(record, Mapping):
            raise BadValueType("a record is a JSON object", layout=self.layout.name)
        for key in record:
            if key not in self.names:
                raise UnknownField(f"{key!r} is not a field of {self.layout.name}",
                                   layout=self.layout.name, field=str(key))

    def encode_primaries(self, record: Mapping[str, Any]) -> list[Any]:
        """Check the keys and encode the primary items (raw values; None where derived)."""
        self.check_keys(record)
        raws: list[Any] = [None] * len(self.layout.fields)
        for i, f in enumerate(self.layout.fields):
            if f.derive is None:
                v = record.get(f.name)
                raws[i] = self.encode_field(i, None if (v == "" and f.optional) else v)
        return raws

    def encode_field(self, index: int, value: Any) -> Any:
        """The raw value of field ``index``; raises a located CodecError."""
        f = self.layout.fields[index]
        try:
            if value is None and not f.kind.has_default:
                if f.optional:
                    return f.kind.empty(f.width)
                raise MissingField("required field missing")
            return f.kind.encode(value, f.width, self.profile)
        except CodecError as exc:
            raise exc.located(layout=self.layout.name, field=f.name, offset=self.layout.offsets[index]) from None

    def locate_encode_error(self, record: Mapping[str, Any]) -> bytes:
        """Encode field by field; raise the located CodecError of the first fault."""
        raws = self.encode_primaries(record)
        values = self.complete(record)
        for i, f in enumerate(self.layout.fields):
            if f.derive is not None:
                raws[i] = self.encode_field(i, values[f.name])
        return self.struct.pack(*raws)

    # -- code generation -----------------------------------------------------------------

    def _substitute_prelude(self, g: Gen, vs: list[str], idx: dict[str, int]) -> list[str]:
        """Compute ``profile.substitute`` once per source text that a 代替文字 item needs."""
        g.ns["_SUBST"] = self.profile.substitute
        g.substitutes = {}
        lines: list[str] = []
        for f in self.layout.fields:
            if isinstance(f.derive, SUBSTITUTING):
                for s in f.derive.sources:
                    if s not in g.substitutes:
                        var = g.substitutes[s] = f"_sub{idx[s]}"
                        lines.append(f"{var} = _SUBST({vs[idx[s]]})")
        return lines

    def _generate(self) -> tuple[Callable[[bytes], Record], Callable[[Mapping[str, Any]], bytes]]:
        g = Gen()
        g.ns["_PROFILE"] = self.profile
        g.ns["_GAIJI_FINDALL"] = self.profile.gaiji_re.findall
        g.ns["_GAIJI_SEARCH"] = self.profile.gaiji_re.search
        g.ns["_UNUSUAL"] = self.profile.unusual_re.search
        g.ns["_MUL"] = operator.mul
        g.ns["_unpack"] = self.struct.unpack
        g.ns["_pack"] = self.struct.pack
        g.ns["_NAMES"] = self.names
        fields = self.layout.fields
        idx = {f.name: i for i, f in enumerate(fields)}
        rs = [f"r{i}" for i in range(len(fields))]
        vs = [f"v{i}" for i in range(len(fields))]

        dec: list[str] = ["def _decode(data):", f"    {', '.join(rs)}, = _unpack(data)"]
        decoded: dict[tuple[type, int], list[int]] = {}  # required text fields decoded so far
        for i, f in enumerate(fields):
            if f.derive is not None:
                continue  # checked below against the canonical bytes of the computed value
            body = f.kind.gen_decode(f.width, rs[i], vs[i], g)
            if isinstance(f.kind, Text):
                # the same bytes as an earlier text field of the same kind and width (送付先 =
                # the resident's own address and name) decode to the same value: reuse it
                key = (type(f.kind), f.width)
                for j in reversed(decoded.get(key, [])):
                    copy = [f"{vs[i]} = {vs[j]}"]
                    for facts in (g.text_gaiji, g.text_bytes):
                        if vs[j] in facts:
                            copy.append(f"{facts[vs[i]]} = {facts[vs[j]]}")
                    body = [f"if {rs[i]} == {rs[j]}:", *_indent(copy, 4), "else:", *_indent(body, 4)]
                if not f.optional:
                    decoded.setdefault(key, []).append(i)
            if f.optional:
                empty = g.const(f.kind.empty(f.width), "empty")
                dec += [f"    if {rs[i]} == {empty}:", f"        {vs[i]} = None", "    else:"]
                dec += _indent(body, 8)
            else:
                dec += _indent(body, 4)
        # Derived items: compute the value from the decoded sources and require the wire bytes
        # to be exactly its canonical encoding (the same as decoding them and comparing values,
        # since every kind has one encoding per value), in dependency order.
        g.gaiji_counts = {}
        dec += _indent(self._substitute_prelude(g, vs, idx), 4)
        for i in self.layout.derive_order:
            f = fields[i]
            if f.derive is not None:
                args = [vs[idx[s]] for s in f.derive.sources]
                dec.append(f"    {vs[i]} = {f.derive.gen(args, g)}")
                canon = f.kind.gen_canonical(f.width, vs[i], g)
                if f.optional:
                    canon = f"({g.const(f.kind.empty(f.width), 'empty')} if {vs[i]} is None else {canon})"
                dec.append(f"    if {rs[i]} != {canon}: raise ValueError")
                if isinstance(f.derive, GaijiCount):
                    g.gaiji_counts[f.derive.sources[0]] = vs[i]
        dec.append("    return {" + ", ".join(f"{f.name!r}: {vs[i]}" for i, f in enumerate(fields)) + "}")

        g.text_gaiji = {}
        g.text_bytes = {}
        enc: list[str] = [
            "def _encode(rec):",
            "    if type(rec) is not dict or not rec.keys() <= _NAMES: raise ValueError",
            "    get = rec.get",
        ]
        for i, f in enumerate(fields):
            if f.derive is None:
                enc.append(f"    {vs[i]} = get({f.name!r})")
                body = f.kind.gen_encode(f.width, vs[i], rs[i], g)
                if f.optional:
                    empty = g.const(f.kind.empty(f.width), "empty")
                    enc += [f"    if {vs[i]} is None or {vs[i]} == '':", f"        {vs[i]} = None",
                            f"        {rs[i]} = {empty}", "    else:"]
                    enc += _indent(body, 8)
                else:
                    enc += _indent(body, 4)
        g.gaiji_counts = {}
        enc += _indent(self._substitute_prelude(g, vs, idx), 4)
        for i in self.layout.derive_order:
            f = fields[i]
            if f.derive is not None:
                args = [vs[idx[s]] for s in f.derive.sources]
                enc.append(f"    {vs[i]} = {f.derive.gen(args, g)}")
                if isinstance(f.derive, GaijiCount):
                    g.gaiji_counts[f.derive.sources[0]] = vs[i]
                enc.append(f"    _given = get({f.name!r})")
                enc.append(f"    if _given is not None and _given != {vs[i]}: raise ValueError")
                # a computed value is well-formed by construction: write its canonical bytes,
                # checking only that they fit (struct.pack would silently truncate)
                canon = f.kind.gen_canonical(f.width, vs[i], g)
                if f.optional:
                    canon = f"({g.const(f.kind.empty(f.width), 'empty')} if {vs[i]} is None else {canon})"
                enc.append(f"    {rs[i]} = {canon}")
                if f.kind.struct_code(f.width).endswith("s"):
                    enc.append(f"    if len({rs[i]}) != {f.width}: raise ValueError")
        enc.append(f"    return _pack({', '.join(rs)})")

        source = "\n".join(dec) + "\n\n" + "\n".join(enc) + "\n"
        self.source = source
        code = compile(source, f"<juki_gateway codec {self.layout.name}/{self.profile.name}>", "exec")
        exec(code, g.ns)
        return g.ns["_decode"], g.ns["_encode"]


_CACHE: dict[tuple[str, str], RecordCodec] = {}


def get_layout(name: str) -> Layout:
    """The layout called ``name`` (e.g. ``honnin-kakunin``); UnknownLayout otherwise."""
    layout = LAYOUTS.get(name) or LAYOUTS.get(name.replace("_", "-"))
    if layout is None:
        raise UnknownLayout(f"no layout {name!r}; known: {', '.join(sorted(LAYOUTS))}")
    return layout


def get_codec(layout_name: str, profile: str = "jukinet") -> RecordCodec:
    """The (cached) fast codec of a layout under a link profile (``jukinet`` or ``intermediate``)."""
    prof = PROFILES.get(profile)
    if prof is None:
        raise UnknownLayout(f"no link profile {profile!r}; known: {', '.join(sorted(PROFILES))}")
    layout = get_layout(layout_name)
    key = (layout.name, prof.name)
    codec = _CACHE.get(key)
    if codec is None:
        codec = _CACHE[key] = RecordCodec(layout, prof)
    return codec
