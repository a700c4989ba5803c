"""``make bench-codec``: parse and build rates of the fast codec, plain construct, and the floor.

For 本人確認情報 and 送付先情報, three implementations of the same layout, side by side in one run:

- ``codec``: the library's generated codec (``get_codec(...).decode/encode``);
- ``construct``: the construct reference path (a ``Struct`` of the same table with the same
  validation, ``reference.ReferenceCodec``);
- ``floor``: a hand-written ``struct.Struct`` unpack/pack + the same decoding and validation
  (``benchmarks/floor.py``).

Rates are measured in CPU time of this process (``time.process_time``), so other processes on
a shared machine do not count against whoever happens to run while they do; measurements are
interleaved (every implementation once per round, many short rounds, each about the same
length) and the best round counts. It prints a table and ``BENCH name=value`` lines; it never
fails on speed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import floor

from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.reference import ReferenceCodec
from juki_gateway.codecs.samples import SAMPLERS

BATCH = 60  # records per round for the codec and the floor (two periods of the samples)
SLOW_BATCH = 30  # records per round for construct (one period: the same mix of records)
ROUNDS = 25
CASES: tuple[tuple[str, Callable[[bytes], Any], Callable[[dict[str, Any]], bytes]], ...] = (
    ("honnin-kakunin", floor.parse_honnin, floor.build_honnin),
    ("soufusaki", floor.parse_soufusaki, floor.build_soufusaki),
)


def _rate(fn: Callable[[Any], Any], items: list[Any]) -> float:
    t0 = time.process_time()
    for x in items:
        fn(x)
    return len(items) / max(time.process_time() - t0, 1e-9)


def main() -> int:
    """Run every case and print the table and the BENCH lines."""
    rows: list[tuple[str, str, float, float, float]] = []
    for layout, floor_parse, floor_build in CASES:
        codec, ref = get_codec(layout), ReferenceCodec(layout)
        recs = [SAMPLERS[layout](i) for i in range(BATCH)]
        blobs = [codec.encode(r) for r in recs]
        for r, b in zip(recs, blobs, strict=True):  # the three must agree before they are timed
            assert floor_build(r) == b == ref.encode(r)
            assert floor_parse(b) == codec.decode(b) == ref.decode(b)
        impls = {
            "parse": {"codec": (codec.decode, blobs), "construct": (ref.decode, blobs[:SLOW_BATCH]),
                      "floor": (floor_parse, blobs)},
            "build": {"codec": (codec.encode, recs), "construct": (ref.encode, recs[:SLOW_BATCH]),
                      "floor": (floor_build, recs)},
        }
        best: dict[tuple[str, str], float] = {}
        for _ in range(ROUNDS):
            for op, group in impls.items():
                for name, (fn, items) in group.items():
                    best[op, name] = max(best.get((op, name), 0.0), _rate(fn, items))
        for op in ("parse", "build"):
            rows.append((op, layout, best[op, "codec"], best[op, "construct"], best[op, "floor"]))

    print(f"{'op':6} {'layout':16} {'codec/s':>10} {'construct/s':>12} {'floor/s':>10} {'vs floor':>9} {'vs construct':>13}")
    for op, layout, c, k, f in rows:
        print(f"{op:6} {layout:16} {c:10.0f} {k:12.0f} {f:10.0f} {c / f:9.2f} {c / k:13.1f}")
    for op, layout, c, k, f in rows:
        key = f"codec.{op}.{layout.replace('-', '_')}"
        print(f"BENCH {key}.rate={c:.0f}")
        print(f"BENCH {key}.construct_rate={k:.0f}")
        print(f"BENCH {key}.floor_rate={f:.0f}")
        print(f"BENCH {key}.vs_floor={c / f:.2f}")
        print(f"BENCH {key}.vs_construct={c / k:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
