"""``make bench-codec``: parse and build rates of the fast codec, plain construct, and the floor.

For 本人確認情報 and 送付先情報, three implementations of the same layout, side by side in one run:

- ``codec``: the library's generated codec (``get_codec(...).decode/encode``);
- ``construct``: the construct reference path (a ``Struct`` of the same table with the same
  validation, ``reference.ReferenceCodec``);
- ``floor``: a hand-written ``struct.Struct`` unpack/pack + the same decoding and validation
  (``benchmarks/floor.py``).

Rates are CPU time of this process (``time.process_time``), so other processes on a shared
machine do not count against whoever runs while they do. The three are measured interleaved:
every round runs each implementation once (in a rotating order) on the same 30-record mix
(one period of the samples), repeated so that each takes about the same CPU time (calibrated
once), and ROUNDS rounds are taken. The statistic is the **median**: each rate is the median of
its per-round rates, and each ratio is the median of the per-round ratios of implementations
measured side by side in the same round, so a load spike during one measurement decides
nothing. The spread (25th-75th percentile) of each ratio is printed too. It prints a table and
``BENCH name=value`` lines; it never fails on speed.
"""

from __future__ import annotations

import statistics
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

PERIOD = 30  # records per pass: one period of the samples, the same mix for all three
ROUND_SECONDS = 0.012  # CPU time each implementation gets per round
ROUNDS = 61
CASES: tuple[tuple[str, Callable[[bytes], Any], Callable[[dict[str, Any]], bytes]], ...] = (
    ("honnin-kakunin", floor.parse_honnin, floor.build_honnin),
    ("soufusaki", floor.parse_soufusaki, floor.build_soufusaki),
)


def _passes(fn: Callable[[Any], Any], items: list[Any]) -> int:
    """How many passes over ``items`` take about ROUND_SECONDS of CPU time."""
    t0 = time.process_time()
    n = 0
    while time.process_time() - t0 < ROUND_SECONDS / 4:
        for x in items:
            fn(x)
        n += 1
    return max(1, round(n * ROUND_SECONDS / max(time.process_time() - t0, 1e-9)))


def _rate(fn: Callable[[Any], Any], items: list[Any], passes: int) -> float:
    t0 = time.process_time()
    for _ in range(passes):
        for x in items:
            fn(x)
    return passes * len(items) / max(time.process_time() - t0, 1e-9)


NAMES = ("codec", "construct", "floor")


def main() -> int:
    """Run every case and print the table and the BENCH lines."""
    cases: dict[tuple[str, str], dict[str, tuple[Callable[[Any], Any], list[Any], int]]] = {}
    for layout, floor_parse, floor_build in CASES:
        codec, ref = get_codec(layout), ReferenceCodec(layout)
        recs = [SAMPLERS[layout](i) for i in range(PERIOD)]
        blobs = [codec.encode(r) for r in recs]
        for r, b in zip(recs, blobs, strict=True):  # the three must agree before they are timed
            assert floor_build(r) == b == ref.encode(r)
            assert floor_parse(b) == codec.decode(b) == ref.decode(b)
        for op, items, fns in (("parse", blobs, (codec.decode, ref.decode, floor_parse)),
                               ("build", recs, (codec.encode, ref.encode, floor_build))):
            cases[op, layout] = {n: (fn, items, _passes(fn, items)) for n, fn in zip(NAMES, fns, strict=True)}

    rates: dict[tuple[str, str, str], list[float]] = {}
    for rnd in range(ROUNDS):
        for key, impls in cases.items():
            order = NAMES[rnd % 3:] + NAMES[: rnd % 3]
            for name in order:
                fn, items, passes = impls[name]
                rates.setdefault((*key, name), []).append(_rate(fn, items, passes))

    rows = []
    for op, layout in cases:
        c, k, f = (rates[op, layout, n] for n in NAMES)
        vs_floor = sorted(a / b for a, b in zip(c, f, strict=True))
        vs_construct = sorted(a / b for a, b in zip(c, k, strict=True))
        rows.append((op, layout, statistics.median(c), statistics.median(k), statistics.median(f),
                     vs_floor, vs_construct))

    def spread(xs: list[float], fmt: str) -> str:
        q1, q2, q3 = statistics.quantiles(xs, n=4)
        return f"{q2:{fmt}} ({q1:{fmt}}-{q3:{fmt}})"

    print(f"median of {ROUNDS} interleaved rounds (~{ROUND_SECONDS * 1000:.0f} ms CPU each per implementation); "
          "ratios: median of per-round ratios (25th-75th percentile)")
    print(f"{'op':6} {'layout':16} {'codec/s':>10} {'construct/s':>12} {'floor/s':>10} {'vs floor':>18} {'vs construct':>18}")
    for op, layout, c, k, f, vf, vk in rows:
        print(f"{op:6} {layout:16} {c:10.0f} {k:12.0f} {f:10.0f} {spread(vf, '.2f'):>18} {spread(vk, '.1f'):>18}")
    for op, layout, c, k, f, vf, vk in rows:
        key = f"codec.{op}.{layout.replace('-', '_')}"
        print(f"BENCH {key}.rate={c:.0f}")
        print(f"BENCH {key}.construct_rate={k:.0f}")
        print(f"BENCH {key}.floor_rate={f:.0f}")
        print(f"BENCH {key}.vs_floor={statistics.median(vf):.2f}")
        print(f"BENCH {key}.vs_construct={statistics.median(vk):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
