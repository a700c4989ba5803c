"""Golden test vectors: sample records encoded per layout and profile, written to tests/vectors/.

``python -m juki_gateway.codecs.vectors [DIR]`` (``make vectors``) rewrites them from the layout
tables and the samples in ``samples.py``; ``tests/test_vectors.py`` fails when they are stale.
Each vector is a pair: ``NAME.bin`` (the records back to back) and ``NAME.jsonl`` (one decoded
record per line, derived items included).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.samples import SAMPLERS

COUNT = 6
DEFAULT_DIR = Path("tests/vectors")
VECTORS: tuple[tuple[str, str], ...] = (
    ("honnin-kakunin", "jukinet"),
    ("honnin-kakunin", "intermediate"),
    ("soufusaki", "jukinet"),
    ("fukuhon-juminhyo", "intermediate"),
)


def to_jsonl(records: list[dict[str, Any]]) -> str:
    """One JSON object per line, non-ASCII kept readable, keys in layout order."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def build() -> dict[str, tuple[bytes, str]]:
    """vector name → (binary records, JSON lines), from the tables and the samples."""
    out: dict[str, tuple[bytes, str]] = {}
    for layout, profile in VECTORS:
        codec = get_codec(layout, profile)
        data = codec.encode_many(SAMPLERS[layout](i) for i in range(COUNT))
        out[f"{layout}.{profile}"] = (data, to_jsonl(codec.decode_many(data)))
    return out


def write(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Write every vector into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, (data, text) in build().items():
        (directory / f"{name}.bin").write_bytes(data)
        (directory / f"{name}.jsonl").write_text(text, encoding="utf-8")
        paths += [directory / f"{name}.bin", directory / f"{name}.jsonl"]
    return paths


if __name__ == "__main__":
    for p in write(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DIR):
        print(p)
