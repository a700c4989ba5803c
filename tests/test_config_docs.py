"""docs/configuration.md names every key the configuration schema and the node JSON accept."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec

from juki_gateway.gateway import config
from juki_gateway.gateway.jukinet.node import NodeConfig

DOC = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")


def _keys(struct: type[msgspec.Struct]) -> list[str]:
    return [f.name for f in msgspec.structs.fields(struct)]


def test_every_gateway_toml_key_is_in_the_table() -> None:
    """Each table of the schema, and each key of each table, appears in the key table."""
    section = DOC.split("Default allow-lists")[0]
    tables = {"pki": config.PkiTable, "logs": config.LogsTable, "metrics": config.ListenerTable,
              "admin": config.ListenerTable, "timeouts": config.TimeoutsTable,
              "store": config.StoreTable, "limits": config.LimitsTable,
              "retention": config.RetentionTable,
              "[endpoints]": config.EndpointTable, "[links]": config.LinkTable,
              "jukinet.<endpoint>": config.NodeTable}
    assert set(_keys(config.FileSchema)) == {t.strip("[]").split(".")[0] for t in tables}
    for table, struct in tables.items():
        rows = [line for line in section.splitlines() if line.startswith(f"| `[{table}]")]
        assert rows, f"no row for [{table}]"
        for key in _keys(struct):
            assert any(f"`{key}`" in row or f"] {key}`" in row for row in rows), \
                f"[{table}] {key} is not documented"


def test_every_node_json_key_is_in_the_table() -> None:
    """Each field of a node's JSON configuration appears in its table."""
    section = DOC.split("## A node run on its own")[1]
    for field in dataclasses.fields(NodeConfig):
        assert f"`{field.name}`" in section, f"{field.name} is not documented"
