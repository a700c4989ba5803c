"""The layers import downward only: the pure core and the store never reach into the daemon."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "juki_gateway"

#: Each layer, and the packages it may not import (those above it).
ABOVE: dict[str, tuple[str, ...]] = {
    "codecs": ("protocols", "registry_store", "gateway", "cli", "simulators", "docs"),
    "protocols": ("registry_store", "gateway", "cli", "simulators", "docs"),
    "certs": ("registry_store", "gateway", "cli", "simulators", "docs"),
    "registry_store": ("gateway", "cli", "simulators", "docs"),
    "gateway": ("cli", "simulators", "docs"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    """No module of ``layer`` imports (even inside a function) a package above it."""
    banned = tuple(f"juki_gateway.{p}" for p in ABOVE[layer])
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in _imports(path):
            assert not name.startswith(banned), f"{path.relative_to(PACKAGE)} imports {name}"
