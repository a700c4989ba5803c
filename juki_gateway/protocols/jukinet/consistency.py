"""The consistency check (整合性確認) diff over two sorted streams, with flat memory, sans-IO.

The CS streams its whole 本人確認情報 file as (住民票コード, digest) entries in ascending
住民票コード order, in chunks; the peer walks its own file in the same order beside it
(a merge join) and answers each chunk with the differences it can already decide. Nothing but
the current entry of each side is held, so memory does not grow with the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from juki_gateway.protocols.jukinet.errors import UnsortedStream

DIGEST_SIZE = 16


def record_digest(record: bytes) -> bytes:
    """The digest both sides compare for one record (BLAKE2b-128 of its encoded bytes)."""
    return hashlib.blake2b(record, digest_size=DIGEST_SIZE).digest()


class Entry(NamedTuple):
    """One record of a file in the check: its 住民票コード and digest (a tuple: files are big)."""

    juminhyo_code: str
    digest: bytes
    record: bytes = b""  # the peer keeps its record here so a difference can show its items


class DiffKind(StrEnum):
    """How the two files differ for one 住民票コード."""

    MISSING_AT_PEER = "M"  # the CS holds it, the peer does not
    MISSING_AT_CS = "E"  # the peer holds it, the CS does not
    DIFFERS = "D"  # both hold it with different items


@dataclass(frozen=True, slots=True)
class Diff:
    """One difference found by the check."""

    kind: DiffKind
    juminhyo_code: str
    peer_record: bytes = b""


class _Sorted:
    """Wraps an entry iterator and insists on strictly ascending codes."""

    def __init__(self, entries: Iterable[Entry], side: str) -> None:
        self._it = iter(entries)
        self._side = side
        self._last = ""

    def next(self) -> Entry | None:
        e = next(self._it, None)
        if e is not None:
            if e.juminhyo_code <= self._last:
                raise UnsortedStream(
                    f"{self._side} stream not ascending: {e.juminhyo_code} after {self._last}"
                )
            self._last = e.juminhyo_code
        return e


class StreamComparer:
    """The peer's side: feed the CS's chunks, get the differences decided so far."""

    def __init__(self, local: Iterable[Entry]) -> None:
        self._local = _Sorted(local, "local")
        self._remote_last = ""
        self._head = self._local.next()
        self.compared = 0
        self.finished = False

    def feed(self, chunk: Sequence[Entry]) -> list[Diff]:
        """Compare one chunk of the CS's stream against the local file."""
        out: list[Diff] = []
        for e in chunk:
            code = e.juminhyo_code
            if code <= self._remote_last:
                raise UnsortedStream(f"remote stream not ascending: {code} after {self._remote_last}")
            self._remote_last = code
            self.compared += 1
            while self._head is not None and self._head.juminhyo_code < code:
                out.append(Diff(DiffKind.MISSING_AT_CS, self._head.juminhyo_code, self._head.record))
                self._head = self._local.next()
            if self._head is not None and self._head.juminhyo_code == code:
                if self._head.digest != e.digest:
                    out.append(Diff(DiffKind.DIFFERS, code, self._head.record))
                self._head = self._local.next()
            else:
                out.append(Diff(DiffKind.MISSING_AT_PEER, code))
        return out

    def finish(self) -> list[Diff]:
        """The CS's stream ended: whatever the peer still holds is missing at the CS."""
        out: list[Diff] = []
        while self._head is not None:
            out.append(Diff(DiffKind.MISSING_AT_CS, self._head.juminhyo_code, self._head.record))
            self._head = self._local.next()
        self.finished = True
        return out


def diff_streams(cs: Iterable[Entry], peer: Iterable[Entry], chunk: int = 1000) -> Iterator[Diff]:
    """All differences between two sorted streams (the CS's and the peer's), lazily."""
    comparer = StreamComparer(peer)
    batch: list[Entry] = []
    for e in cs:
        batch.append(e)
        if len(batch) >= chunk:
            yield from comparer.feed(batch)
            batch = []
    yield from comparer.feed(batch)
    yield from comparer.finish()
