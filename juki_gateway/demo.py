"""``make demo``: the main job end to end on the embedded defaults."""

from __future__ import annotations

import sys


def main() -> int:
    """Run the demo; grows with each capability of the gateway."""
    print("juki-gateway demo: nothing to show yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
