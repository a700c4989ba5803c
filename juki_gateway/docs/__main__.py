"""``python -m juki_gateway.docs [--check] [--root DIR]``: write or check the generated documents."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from juki_gateway.docs import DOCUMENTS, stale, write


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m juki_gateway.docs``."""
    listing = "\n".join(f"  {d.path}: {d.source}" for d in DOCUMENTS)
    parser = argparse.ArgumentParser(
        prog="python -m juki_gateway.docs",
        description="Regenerate every generated document from the tables the code runs on.",
        epilog=f"documents:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true",
                        help="write nothing; name each stale document and exit 1 if any is")
    parser.add_argument("--root", type=Path, default=Path("."), metavar="DIR",
                        help="the repository root the document paths are under (default: .)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the documents (exit 0), or with ``--check`` report the stale ones (exit 1 if any)."""
    args = build_parser().parse_args(argv)
    if args.check:
        outdated = stale(args.root)
        for path in outdated:
            print(f"stale: {path} (run `make docs`)", file=sys.stderr)
        return 1 if outdated else 0
    for path in write(args.root):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
