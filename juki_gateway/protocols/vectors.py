"""``python -m juki_gateway.protocols.vectors [DIR]`` (``make vectors``): rewrite the golden vectors.

The record vectors come from the codec's tables and samples; the frame vectors (one per message
type of the Juki-net links, in ``tests/vectors/jukinet/``) also need the message catalogue, which
the codec does not know: this command hands it the catalogue built in :mod:`.catalogue`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from juki_gateway.codecs import vectors
from juki_gateway.protocols.catalogue import CATALOGUE


def main(argv: Sequence[str] | None = None) -> int:
    """Write every vector into DIR (default ``tests/vectors``) and print the paths written."""
    args = list(sys.argv[1:] if argv is None else argv)
    for path in vectors.write(Path(args[0]) if args else vectors.DEFAULT_DIR, CATALOGUE):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
