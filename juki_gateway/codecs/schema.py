"""The layout model: a record layout is a table of :class:`Field` rows, and nothing else.

A :class:`Field` is (item number, identifier, Japanese label, width in bytes, kind, optional,
derivation). Offsets are never written by hand: :class:`Layout` computes them from the widths.
A :class:`Derivation` marks a dependent item (外字数, 外字フラグ, 代替文字 and its positions,
清音化かな, 項目長): the encoder computes it from its source items, the decoder cross-checks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from juki_gateway.codecs.fields import Gen, Kind
from juki_gateway.codecs.gaiji import Profile
from juki_gateway.codecs.kana import SEION_TABLE, seion_kana


class Derivation:
    """How a dependent item follows from its source items."""

    label = "derived"

    def __init__(self, *sources: str) -> None:
        self.sources: tuple[str, ...] = sources

    def compute(self, values: Sequence[Any], profile: Profile) -> Any:
        """The item's value given its sources' values (in ``sources`` order)."""
        raise NotImplementedError

    def gen(self, args: Sequence[str], g: Gen) -> str:
        """A source expression computing the item from the source variables ``args``."""
        me = g.const(self, "drv")
        return f"{me}.compute(({', '.join(args)},), _PROFILE)"

    def describe(self) -> str:
        """One line for the wire-format document."""
        return f"{self.label} of {', '.join(self.sources)}"


class GaijiCount(Derivation):
    """外字数: how many characters of the source are outside the profile's character set."""

    label = "外字数 (count of 外字)"

    def compute(self, values: Sequence[Any], profile: Profile) -> int:
        return profile.gaiji_count(values[0])

    def gen(self, args: Sequence[str], g: Gen) -> str:
        a = args[0]
        known = g.text_gaiji.get(a)
        if known is not None:
            return f"({known} if {a} else 0)"
        return f"(len(_GAIJI_FINDALL({a})) if {a} else 0)"


class GaijiFlag(Derivation):
    """外字フラグ: '1' when any source holds a 外字, else '0'."""

    label = "外字フラグ ('1' if any 外字)"

    def compute(self, values: Sequence[Any], profile: Profile) -> str:
        return "1" if any(profile.gaiji_count(v) for v in values) else "0"

    def gen(self, args: Sequence[str], g: Gen) -> str:
        known = g.gaiji_counts
        cond = " or ".join(
            known[s] if s in known else f"({a} and _GAIJI_SEARCH({a}))"
            for s, a in zip(self.sources, args, strict=True)
        )
        return f"('1' if {cond} else '0')"


class GaijiPattern(Derivation):
    """外字パターン: one '0'/'1' per source, '1' where that source holds a 外字."""

    label = "外字パターン (per-source 外字 flags)"

    def compute(self, values: Sequence[Any], profile: Profile) -> str:
        return "".join("1" if profile.gaiji_count(v) else "0" for v in values)

    def gen(self, args: Sequence[str], g: Gen) -> str:
        known = g.gaiji_counts
        parts = [
            f"('1' if {known[s]} else '0')" if s in known else f"('1' if {a} and _GAIJI_SEARCH({a}) else '0')"
            for s, a in zip(self.sources, args, strict=True)
        ]
        return "(" + " + ".join(parts) + ")"


class SeionKana(Derivation):
    """清音化かな: the kana with voicing marks removed and small kana enlarged."""

    label = "清音化かな"

    def compute(self, values: Sequence[Any], profile: Profile) -> str | None:
        return seion_kana(values[0]) if values[0] else None

    def gen(self, args: Sequence[str], g: Gen) -> str:
        t = g.const(SEION_TABLE, "seion")
        return f"({args[0]}.translate({t}) if {args[0]} else None)"


class ItemLength(Derivation):
    """項目長: the byte length of the source's value on the wire, without padding."""

    label = "項目長 (bytes of the value without padding)"

    def compute(self, values: Sequence[Any], profile: Profile) -> int:
        return len(values[0].encode("utf-16-be")) if values[0] else 0

    def gen(self, args: Sequence[str], g: Gen) -> str:
        a = args[0]
        known = g.text_bytes.get(a)
        if known is not None:
            return f"(({known}) if {a} else 0)"
        return f"(len({a}.encode('utf-16-be')) if {a} else 0)"




class SubstituteText(Derivation):
    """代替文字: the source with every 外字 that has a substitute replaced by it."""

    label = "代替文字 text"

    def compute(self, values: Sequence[Any], profile: Profile) -> str | None:
        return profile.substitute(values[0])[0]

    def gen(self, args: Sequence[str], g: Gen) -> str:
        return f"{g.substitutes[self.sources[0]]}[0]"


class SubstitutePositions(Derivation):
    """代替文字位置情報: the 1-based character positions where a substitute was used."""

    label = "代替文字 positions"

    def compute(self, values: Sequence[Any], profile: Profile) -> list[int]:
        return profile.substitute(values[0])[1]

    def gen(self, args: Sequence[str], g: Gen) -> str:
        return f"{g.substitutes[self.sources[0]]}[1]"


class SubstituteResult(Derivation):
    """代替文字変換結果: '0' no 外字, '1' every 外字 substituted, '2' some 外字 kept as is."""

    label = "代替文字変換結果 (0 none, 1 all substituted, 2 some kept)"

    def compute(self, values: Sequence[Any], profile: Profile) -> str:
        if not any(profile.gaiji_count(v) for v in values):
            return "0"
        return "2" if any(profile.substitute(v)[2] for v in values) else "1"

    def gen(self, args: Sequence[str], g: Gen) -> str:
        subs = [g.substitutes[s] for s in self.sources]
        any_gaiji = " or ".join(f"{s}[1] or {s}[2]" for s in subs)
        kept = " or ".join(f"{s}[2]" for s in subs)
        return f"('0' if not ({any_gaiji}) else ('2' if ({kept}) else '1'))"


#: derivations that need ``profile.substitute`` of their sources (computed once per record)
SUBSTITUTING: tuple[type[Derivation], ...] = (SubstituteText, SubstitutePositions, SubstituteResult)


@dataclass(frozen=True, slots=True)
class Field:
    """One row of a layout table."""

    no: int
    name: str
    label: str
    width: int
    kind: Kind
    optional: bool = False
    derive: Derivation | None = None
    note: str = ""

    def __post_init__(self) -> None:
        self.kind.check_width(self.width)


@dataclass(frozen=True)
class Layout:
    """A fixed-length record layout: its fields in wire order, offsets computed from widths."""

    name: str
    label: str
    fields: tuple[Field, ...]
    description: str = ""
    offsets: tuple[int, ...] = field(init=False)
    record_length: int = field(init=False)
    derive_order: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        offsets: list[int] = []
        pos = 0
        for f in self.fields:
            offsets.append(pos)
            pos += f.width
        object.__setattr__(self, "offsets", tuple(offsets))
        object.__setattr__(self, "record_length", pos)
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"layout {self.name}: duplicate field names")
        for f in self.fields:
            if f.derive is not None:
                for s in f.derive.sources:
                    if s not in names:
                        raise ValueError(f"layout {self.name}: {f.name} derives from unknown {s}")
        # derived items in dependency order (a 項目長 may measure a 代替文字 item)
        done = {f.name for f in self.fields if f.derive is None}
        order: list[int] = []
        pending = [i for i, f in enumerate(self.fields) if f.derive is not None]
        while pending:
            ready = [i for i in pending if set(self.fields[i].derive.sources) <= done]  # type: ignore[union-attr]
            if not ready:
                raise ValueError(f"layout {self.name}: circular derivations")
            for i in ready:
                order.append(i)
                done.add(self.fields[i].name)
            pending = [i for i in pending if i not in ready]
        object.__setattr__(self, "derive_order", tuple(order))

    @property
    def ident(self) -> str:
        """The layout's name as a Python identifier (``honnin-kakunin`` → ``honnin_kakunin``)."""
        return self.name.replace("-", "_")

    def field_named(self, name: str) -> Field:
        """The field called ``name``."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)
