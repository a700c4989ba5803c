"""``[jukinet]`` in gateway.toml, the hosted nodes it gives the service tree, and the link switch."""

from __future__ import annotations

import datetime as dt
import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from twisted.internet.testing import MemoryReactorClock

from juki_gateway.cli import main
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import default_topology, load_config, parse_config
from juki_gateway.gateway.linkcontrol import read_held, set_held
from juki_gateway.gateway.service import GatewayService

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _config(tmp_path: Path, **changes: Any) -> Path:
    topo = default_topology(7100)
    topo.update(changes)
    path = tmp_path / "gateway.toml"
    path.write_text(tomli_w.dumps(topo))
    return path


def test_default_topology_hosts_three_nodes_with_their_own_stores(tmp_path: Path) -> None:
    """init's default hosts cs-172014, pref-17 and kiko, each with a SQLite file in the workdir."""
    config = load_config(_config(tmp_path))
    assert config.host_jukinet is True
    assert sorted(config.jukinet) == ["cs-172014", "kiko", "pref-17"]
    for name, settings in config.jukinet.items():
        assert settings.store_url == f"sqlite:///{tmp_path.resolve() / f'jukinet-{name}.sqlite3'}"
    assert [(lk.local, lk.peer, lk.port) for lk in config.links] == [
        ("cs-172014", "pref-17", 7102), ("pref-17", "kiko", 7103), ("kiko", "pref-17", 7102),
        ("pref-17", "cs-172014", 7101)]


def test_service_tree_gives_hosted_endpoints_nodes_and_node_links(tmp_path: Path) -> None:
    """The tree builds one node per Juki-net endpoint; their links are node links, not LinkServices."""
    config = load_config(_config(tmp_path))
    svc = GatewayService(config, MemoryReactorClock())
    assert sorted(svc.jukinet.nodes) == ["cs-172014", "kiko", "pref-17"]
    assert [p.node_id for p in svc.jukinet.nodes["cs-172014"].cfg.peers] == ["pref-17"]
    assert [p.node_id for p in svc.jukinet.nodes["pref-17"].cfg.peers] == ["kiko", "cs-172014"]
    assert svc.jukinet.nodes["cs-172014"].cfg.port is None  # the gateway's listener serves it
    assert sorted(svc.links) == ["cs-172014->pref-17", "kiko->pref-17", "pref-17->cs-172014",
                                 "pref-17->kiko"]
    assert all(hasattr(link, "link_up") for link in svc.links.values())
    assert svc.getServiceNamed("link-control") is not None


def test_jukinet_table_tunes_the_node(tmp_path: Path) -> None:
    """[jukinet.<endpoint>] window, commit_delay, commit_records and search_limit reach that
    endpoint's node."""
    config = load_config(_config(tmp_path, jukinet={
        "pref-17": {"window": 9000, "commit_delay": 0.01, "commit_records": 500, "search_limit": 20}}))
    nodes = GatewayService(config, MemoryReactorClock()).jukinet.nodes
    cfg = nodes["pref-17"].cfg
    assert (cfg.window, cfg.commit_delay, cfg.commit_records, cfg.search_limit) == (9000, 0.01, 500, 20)
    assert (nodes["kiko"].cfg.commit_records, nodes["kiko"].cfg.search_limit) == (3000, 100)  # defaults


def test_host_false_keeps_the_generic_frame_sessions(tmp_path: Path) -> None:
    """[jukinet] host = false: no nodes, and the links are the gateway's generic LinkServices."""
    config = load_config(_config(tmp_path, jukinet={"host": False}))
    svc = GatewayService(config, MemoryReactorClock())
    assert svc.jukinet.nodes == {} and not config.jukinet
    assert all(not hasattr(link, "link_up") for link in svc.links.values())


@pytest.mark.parametrize(("jukinet", "message"), [
    ({"ims-172014": {"store_url": "sqlite:///x.sqlite3"}}, "jukinet.ims-172014: names no"),
    ({"kiko": {"store": "x"}}, "jukinet.kiko: Object contains unknown field `store`"),
    ({"kiko": {"window": 0}}, "jukinet.kiko.window: Expected `int` >= 1"),
    ({"kiko": {"commit_records": True}}, "jukinet.kiko.commit_records: Expected `int`, got `bool`"),
    ({"kiko": {"search_limit": 0}}, "jukinet.kiko.search_limit: Expected `int` >= 1"),
    ({"kiko": {"search_limit": 1001}}, "jukinet.kiko.search_limit: Expected `int` <= 1000"),
    ({"host": "yes"}, "jukinet.host: Expected `bool`, got `str`"),
    ({"kiko": {"shared_store": True}}, "jukinet.kiko: shared_store needs a PostgreSQL store_url"),
])
def test_bad_jukinet_tables_are_usage_errors(tmp_path: Path, jukinet: dict[str, Any],
                                             message: str) -> None:
    """A [jukinet] table naming no Juki-net endpoint, or with a bad key or value, is refused."""
    topo = default_topology(7100)
    topo["jukinet"] = jukinet
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(topo, tmp_path / "gateway.toml")


def test_link_to_a_foreign_peer_needs_its_role_and_org(tmp_path: Path) -> None:
    """A node link whose peer is not an endpoint of this file must say the peer's role and org."""
    topo = default_topology(7100)
    topo["endpoints"] = [e for e in topo["endpoints"] if e["name"] == "cs-172014"]
    topo["jukinet"] = {"cs-172014": {}}
    topo["links"] = [{"local": "cs-172014", "peer": "pref-17", "port": 7102}]
    with pytest.raises(UsageError, match="give its peer_role and peer_org"):
        GatewayService(parse_config(topo, tmp_path / "gateway.toml"), MemoryReactorClock())
    topo["links"][0].update(peer_role="prefecture", peer_org="17")
    svc = GatewayService(parse_config(topo, tmp_path / "gateway.toml"), MemoryReactorClock())
    [peer] = svc.jukinet.nodes["cs-172014"].cfg.peers
    assert (peer.node_id, peer.role, peer.org, peer.port) == ("pref-17", "prefecture", "17", 7102)


def test_held_links_file_round_trip(tmp_path: Path) -> None:
    """Holding records who, when and why; releasing removes only that link."""
    set_held(tmp_path, "a->b", True, now=NOW, reason="window", operator="op-alice")
    set_held(tmp_path, "b->c", True, now=NOW)
    held = read_held(tmp_path)
    assert sorted(held) == ["a->b", "b->c"]
    assert (held["a->b"].operator, held["a->b"].reason, held["a->b"].since) == (
        "op-alice", "window", "2026-11-26T12:00:00Z")
    set_held(tmp_path, "a->b", False, now=NOW)
    assert sorted(read_held(tmp_path)) == ["b->c"]


def test_link_cli_holds_releases_and_refuses_unknown_links(tmp_path: Path) -> None:
    """`link hold|release|status` switch the file; an unknown link is a one-line usage error."""
    config = str(_config(tmp_path))

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["link", *args, "--config", config])
        return code, out.getvalue(), err.getvalue()

    code, out, _ = run("hold", "cs-172014->pref-17", "--reason", "test", "--operator", "op-bob")
    assert code == 0 and "held" in out and sorted(read_held(tmp_path)) == ["cs-172014->pref-17"]
    code, out, _ = run("status")
    assert "cs-172014->pref-17: held since" in out and "pref-17->kiko: in service" in out
    code, out, _ = run("release", "cs-172014->pref-17")
    assert code == 0 and read_held(tmp_path) == {}
    code, _, err = run("hold", "cs-172014->nowhere")
    assert code == 2 and "no link named 'cs-172014->nowhere'" in err and "Traceback" not in err
