"""Splitting a topology over several daemons: what ``init --daemon`` writes and what it refuses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from juki_gateway.cli import main
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import load_config
from juki_gateway.gateway.initdir import init_split, init_workdir
from juki_gateway.gateway.topology import load_topology

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
HOKURIKU_SPLIT = [("kiko", "kiko"), ("ishikawa", "pref-17,cs-17*,ims-*"),
                  ("toyama", "pref-16, cs-16*")]


@pytest.fixture(scope="module")
def hokuriku_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("split") / "hk"
    topo = load_topology("hokuriku")
    init_split(root, NOW, port_base=7100, topology=topo, split=topo.split(HOKURIKU_SPLIT),
               store_urls={"kiko": "postgresql+psycopg://gw@db/kiko"})
    return root


def test_each_daemon_hosts_its_selection_and_reaches_the_others_at_their_ports(
        hokuriku_split: Path) -> None:
    """Every endpoint of hokuriku is hosted by exactly one daemon, on the port the one-daemon
    file gives it; each link to an endpoint of another daemon names that endpoint's port, host,
    role and organisation; every certificate comes from the one CA in DIR/pki."""
    topo = load_topology("hokuriku")
    whole = topo.gateway_toml(7100)
    port_of = {e["name"]: e["port"] for e in whole["endpoints"]}
    configs = {name: load_config(hokuriku_split / name / "gateway.toml")
               for name, _sel in HOKURIKU_SPLIT}
    hosted = {ep.name: name for name, cfg in configs.items() for ep in cfg.endpoints}
    assert sorted(hosted) == sorted(port_of)
    assert {n for n, d in hosted.items() if d == "toyama"} == {
        "pref-16", *(m.node for m in topo.municipalities if m.prefecture == "16")}
    links, pki = 0, (hokuriku_split / "pki").resolve()
    for name, cfg in configs.items():
        assert cfg.ca.resolve() == (hokuriku_split / "pki" / "ca.pem").resolve()
        for ep in cfg.endpoints:
            assert ep.port == port_of[ep.name] and ep.cert.parent.resolve() == pki
        for lk in cfg.links:
            links += 1
            assert lk.port == port_of[lk.peer]
            remote = hosted[lk.peer] != name
            assert (lk.peer_role is not None) == remote
            if remote:
                peer = configs[hosted[lk.peer]].endpoint(lk.peer)
                assert (lk.peer_role, lk.peer_org, lk.host) == (peer.role, peer.org, peer.host)
    assert links == len(topo.links)
    ports = [p for cfg in configs.values() for p in (cfg.admin.port, cfg.metrics.port)]
    assert ports == list(range(7141, 7147))  # after the highest endpoint offset (40)
    assert configs["kiko"].jukinet["kiko"].store_url == "postgresql+psycopg://gw@db/kiko"
    assert sorted(configs["kiko"].jukinet) == ["kiko"]
    assert (hokuriku_split / "pki" / "log-pseudonym.key").exists()
    assert not (hokuriku_split / "gateway.toml").exists()


def test_init_split_twice_keeps_everything(hokuriku_split: Path) -> None:
    topo = load_topology("hokuriku")
    report = init_split(hokuriku_split, NOW, port_base=7100, topology=topo,
                        split=topo.split(HOKURIKU_SPLIT),
                        store_urls={"kiko": "postgresql+psycopg://gw@db/kiko"})
    assert report.created == []


def test_a_host_per_daemon_is_where_its_endpoints_listen_and_are_reached(tmp_path: Path) -> None:
    topo = load_topology("kanazawa")
    split = topo.split([("kiko", "kiko"), ("rest", "*-17*,pref-*")], {"kiko": "10.0.0.9"})
    kiko = topo.daemon_toml(split, "kiko", 7100)
    rest = topo.daemon_toml(split, "rest", 7100)
    assert [e["host"] for e in kiko["endpoints"]] == ["10.0.0.9"]
    [to_kiko] = [lk for lk in rest["links"] if lk["peer"] == "kiko"]
    assert (to_kiko["host"], to_kiko["port"], to_kiko["peer_role"], to_kiko["peer_org"]) == (
        "10.0.0.9", 7103, "kiko", "jlis")
    assert {e["name"] for e in rest["endpoints"]} == {"cs-172014", "pref-17", "ims-172014"}


@pytest.mark.parametrize(("daemons", "hosts", "message"), [
    ([("kiko", "kiko"), ("x", "cs-18*")], {},
     "--daemon x: 'cs-18*' matches no endpoint of topology hokuriku"),
    ([("kiko", "kiko"), ("ishikawa", "pref-17,cs-17*")], {},
     "link kiko->pref-16: its peer pref-16 is hosted by no daemon"),
    ([("a", "kiko"), ("b", "kiko,pref-*,cs-*")], {},
     "--daemon b: endpoint kiko is already hosted by daemon a"),
    ([("a", "kiko"), ("a", "pref-*")], {}, "--daemon a: named twice"),
    ([("pki", "kiko")], {}, "--daemon pki: 'pki' is the shared directory"),
    ([("../up", "kiko")], {}, "a daemon's name is its directory's"),
    ([("a", " , ")], {}, "--daemon a: selects nothing"),
    ([("a", "*")], {"b": "10.0.0.1"}, "--host b: no --daemon of that name"),
])
def test_refused_selections(daemons: list[tuple[str, str]], hosts: dict[str, str],
                            message: str) -> None:
    with pytest.raises(UsageError) as err:
        load_topology("hokuriku").split(daemons, hosts)
    assert message in err.value.message


def test_a_peer_no_daemon_hosts_is_refused_naming_the_link() -> None:
    """A hosted node's link to an endpoint no daemon selected has no host to reach it at."""
    with pytest.raises(UsageError) as err:
        load_topology("hokuriku").split([("ishikawa", "pref-17,cs-17*")])
    assert err.value.message == (
        "link cs-172014->kiko: its peer kiko is hosted by no daemon, so ishikawa has no host to "
        "reach it at (select kiko in a --daemon)")


def test_cli_split_refusals_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``init --daemon``: exit 2 with one line for a bad option; the report names each
    daemon's serve command, ports and what no daemon hosts."""
    d = tmp_path / "k"
    assert main(["init", str(d), "--daemon", "kiko"]) == 2
    assert "--daemon 'kiko': expected NAME=VALUE" in capsys.readouterr().err
    assert main(["init", str(d), "--host", "kiko=10.0.0.1"]) == 2
    assert "give the --daemon options too" in capsys.readouterr().err
    assert main(["init", str(d), "--daemon", "kiko=kiko", "--daemon", "chain=cs-*,pref-*",
                 "--store-url", "ims-172014=sqlite:///x.sqlite3"]) == 2
    assert "--store-url ims-172014: no daemon hosts" in capsys.readouterr().err
    assert main(["init", str(d), "--port-base", "65520", "--daemon", "kiko=kiko",
                 "--daemon", "chain=cs-*,pref-*"]) == 2
    assert "N+1..N+24" in capsys.readouterr().err
    assert main(["init", str(d), "--port-base", "7300", "--daemon", "kiko=kiko",
                 "--daemon", "chain=cs-*,pref-*"]) == 0
    out = capsys.readouterr().out
    assert "kiko: 1 endpoint(s) on 127.0.0.1, 1 link(s), admin 7321, metrics 7322: " \
           f"juki-gateway serve --config {d / 'kiko' / 'gateway.toml'}" in out
    assert "chain: 2 endpoint(s) on 127.0.0.1, 3 link(s), admin 7323, metrics 7324" in out
    assert "hosted by no daemon: ims-172014" in out
    assert load_config(d / "chain" / "gateway.toml").endpoint("pref-17").port == 7302
    # a daemon's directory made for another selection is refused
    assert main(["init", str(d), "--port-base", "7300", "--daemon", "kiko=kiko,pref-*",
                 "--daemon", "chain=cs-*"]) == 2
    assert "was made for other endpoints than daemon kiko's selection" in capsys.readouterr().err


def test_one_daemon_directory_and_split_do_not_mix(tmp_path: Path) -> None:
    init_workdir(tmp_path, NOW, port_base=7100)
    topo = load_topology("kanazawa")
    with pytest.raises(UsageError, match="is a one-daemon working directory"):
        init_split(tmp_path, NOW, port_base=7100, topology=topo,
                   split=topo.split([("all", "*")]))


def test_store_url_for_one_daemon_and_its_refusal(tmp_path: Path) -> None:
    topo = load_topology("kanazawa")
    init_workdir(tmp_path, NOW, port_base=7100, topology=topo,
                 store_urls={"kiko": "postgresql+psycopg://gw@db/kiko"})
    assert load_config(tmp_path / "gateway.toml").jukinet["kiko"].store_url == (
        "postgresql+psycopg://gw@db/kiko")
    with pytest.raises(UsageError, match="--store-url ims-172014: not a municipal-cs"):
        topo.gateway_toml(7100, {"ims-172014": "sqlite:///x.sqlite3"})


def test_a_refused_store_url_writes_nothing(tmp_path: Path) -> None:
    """A --store-url for an endpoint that is hosted but has no Juki-net node is refused before
    any daemon's file is written."""
    topo = load_topology("hokuriku")
    split = topo.split(HOKURIKU_SPLIT)
    with pytest.raises(UsageError, match="--store-url ims-172014: not a municipal-cs"):
        init_split(tmp_path / "hk", NOW, port_base=7100, topology=topo, split=split,
                   store_urls={"ims-172014": "sqlite:///x.sqlite3"})
    assert not (tmp_path / "hk").exists()
