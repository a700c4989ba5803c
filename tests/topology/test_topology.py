"""Topologies as data: the shipped files, the generated gateway.toml, PKI and the refusals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509

from juki_gateway.certs.identity import identity_from_certificate
from juki_gateway.cli import main
from juki_gateway.codecs.checkdigits import LG_CODE
from juki_gateway.errors import UsageError
from juki_gateway.gateway.config import default_topology, load_config, parse_config
from juki_gateway.gateway.initdir import init_workdir
from juki_gateway.gateway.topology import builtin_topologies, load_topology

HERE = Path(__file__).resolve().parent
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)

USER_TOPOLOGY = """
[topology]
name = "noto"

[[prefectures]]
code = "170003"
name = "石川県"

[[municipalities]]
code = "174611"
name = "穴水町"
population = 7890

[[municipalities]]
code = "174637"
name = "能登町"
population = 15687

[links]
generate = ["cs-prefecture", "prefecture-kiko"]

[[links.extra]]
local = "pref-17"
peer = "cs-174637"

[[allow]]
node = "kiko"
role = "municipal-cs"
org_prefix = "17"
"""


def test_shipped_topologies_are_listed() -> None:
    """The package ships kanazawa and hokuriku, read through importlib.resources."""
    assert {"kanazawa", "hokuriku"} <= set(builtin_topologies())


def test_init_without_topology_writes_todays_file_byte_for_byte(tmp_path: Path) -> None:
    """`init DIR` writes the same gateway.toml as the topology defined in Python did before
    topologies were data (that file, with the links back down from 機構 to the CS that the
    転入通知 flow added to the Python topology, kept as tests/topology/kanazawa-gateway-7100.toml)
    and issues the same twelve identities."""
    assert main(["init", str(tmp_path / "wd"), "--port-base", "7100"]) == 0
    written = (tmp_path / "wd" / "gateway.toml").read_text()
    assert written == (HERE / "kanazawa-gateway-7100.toml").read_text()
    pems = sorted(p.stem for p in (tmp_path / "wd" / "pki").glob("*.pem")
                  if p.stem not in ("ca", "crl"))
    assert pems == sorted(["cs-172014", "pref-17", "kiko", "ims-172014", "kizon-172014",
                           "renkei-172014", "ipnw", "cs-172031", "cs-162019", "op-alice",
                           "op-bob", "op-carol"])
    assert main(["init", str(tmp_path / "named"), "--topology", "kanazawa"]) == 0
    assert (tmp_path / "named" / "gateway.toml").read_text() == written


def test_hokuriku_has_every_municipality_of_both_prefectures() -> None:
    """hokuriku: 機構, 石川県 and 富山県, a CS for each of their 19 + 15 municipalities with valid
    codes, whose 2020 populations add up to each prefecture's census total."""
    t = load_topology("hokuriku")
    assert [(p.code, p.node) for p in t.prefectures] == [("170003", "pref-17"), ("160008", "pref-16")]
    by_pref = {p.number: [m for m in t.municipalities if m.prefecture == p.number]
               for p in t.prefectures}
    assert (len(by_pref["17"]), len(by_pref["16"])) == (19, 15)
    assert all(LG_CODE.is_valid(m.code) for m in t.municipalities)
    # 令和2年国勢調査: 石川県 1,132,526, 富山県 1,034,814
    assert sum(m.population for m in by_pref["17"]) == 1_132_526
    assert sum(m.population for m in by_pref["16"]) == 1_034_814
    names = {m.code: m.name for m in t.municipalities}
    assert names["172031"] == "小松市" and names["172120"] == "野々市市"
    assert names["162019"] == "富山市" and names["174637"] == "能登町" and names["163210"] == "舟橋村"
    jukinet = [e for e in t.endpoints if e.role in ("municipal-cs", "prefecture", "kiko")]
    assert len(jukinet) == 37
    assert [e.name for e in t.endpoints if e.role == "intermediate"] == ["ims-172014"]
    assert {c.name for c in t.clients} >= {f"kizon-{code}" for code in names}


def test_hokuriku_allow_lists_follow_r2() -> None:
    """A CS accepts its own existing system, its prefecture and 機構; a prefecture its own CSs
    and 機構; 機構 prefectures, the network and (for their direct links) CSs."""
    t = load_topology("hokuriku")
    rules = {name: [(r.role, r.org, r.org_prefix) for r in rs] for name, rs in t.allow.items()}
    assert rules["cs-162019"] == [("kizon-juki", "162019", None), ("prefecture", "16", None),
                                  ("kiko", None, None)]
    assert rules["cs-174637"] == [("kizon-juki", "174637", None), ("prefecture", "17", None),
                                  ("kiko", None, None)]
    assert rules["pref-16"] == [("municipal-cs", None, "16"), ("kiko", None, None)]
    assert rules["pref-17"] == [("municipal-cs", None, "17"), ("kiko", None, None)]
    assert rules["kiko"] == [("prefecture", None, None), ("ipnw", None, None),
                             ("municipal-cs", None, None)]


def test_hokuriku_links_and_ports() -> None:
    """Links go CS → own prefecture → 機構 (and back down for 転入通知, CS → 機構 direct); the
    38 endpoints get distinct ports that skip admin and metrics and parse as a gateway.toml."""
    t = load_topology("hokuriku")
    links = set(t.links)
    for m in t.municipalities:
        pref = f"pref-{m.prefecture}"
        assert {(m.node, pref), (pref, m.node), (m.node, "kiko")} <= links
        other = "pref-16" if pref == "pref-17" else "pref-17"
        assert (m.node, other) not in links and (other, m.node) not in links
    assert {("pref-16", "kiko"), ("pref-17", "kiko"), ("kiko", "pref-16"), ("kiko", "pref-17")} <= links
    assert len(links) == len(t.links) == 34 * 3 + 4
    cfg = parse_config(t.gateway_toml(7100), Path("/srv/gw/gateway.toml"))
    ports = [e.port for e in cfg.endpoints]
    assert len(set(ports)) == 38 and {cfg.admin.port, cfg.metrics.port} == {7110, 7120}
    assert not {cfg.admin.port, cfg.metrics.port} & set(ports)
    assert ports[:4] == [7101, 7102, 7103, 7104] and max(ports) == 7140
    assert len(cfg.jukinet) == 37 and len(cfg.links) == 106
    assert {lk.port for lk in cfg.links if lk.peer == "kiko"} == {cfg.endpoint("kiko").port}


def test_kanazawa_ports_are_unchanged() -> None:
    """The default topology keeps endpoints on N+1..N+4, admin N+10 and metrics N+20."""
    t = default_topology(20000)
    assert [e["port"] for e in t["endpoints"]] == [20001, 20002, 20003, 20004]
    assert (t["admin"]["port"], t["metrics"]["port"]) == (20010, 20020)


def _bad(tmp_path: Path, text: str) -> str:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        load_topology(path)
    return info.value.message


@pytest.mark.parametrize(("change", "says"), [
    (('code = "174637"', 'code = "174636"'),
     "174636 is not a valid municipality 全国地方公共団体コード (its check digit should be 7, not 6)"),
    (('code = "170003"', 'code = "170004"'), "prefectures[0].code: 170004 is not a valid prefecture"),
    (('code = "174637"', 'code = "162019"'), "162019 (能登町) is in prefecture 16, which [[prefectures]] does not list"),
    (('code = "174637"', 'code = "174611"'), "each code listed once"),
    (('code = "174637"', 'code = "17463"'), "municipalities[1].code"),
    (('population = 7890', 'population = 0'), "population"),
    (('"prefecture-kiko"]', '"prefecture-kyoto"]'), "unknown kind 'prefecture-kyoto'"),
    (('peer = "cs-174637"', 'peer = "cs-172014"'), "links.extra[0].peer: 'cs-172014' is not an endpoint"),
    (('node = "kiko"', 'node = "ims-172014"'), "allow[0].node"),
    (('role = "municipal-cs"\norg_prefix', 'role = "mayor"\norg_prefix'), "unknown role 'mayor'"),
    (('population = 15687', 'population = 15687\ncity = true'), "unknown field `city`"),
])
def test_a_bad_topology_is_refused_naming_the_key(tmp_path: Path, change: tuple[str, str],
                                                  says: str) -> None:
    """Each mistake in a topology file is one UsageError naming the key (a wrong check digit
    names the right one)."""
    assert change[0] in USER_TOPOLOGY
    assert says in _bad(tmp_path, USER_TOPOLOGY.replace(change[0], change[1], 1))


def test_a_second_intermediate_server_is_refused(tmp_path: Path) -> None:
    """A daemon hosts one intermediate server: two municipalities with one are refused."""
    text = USER_TOPOLOGY.replace("population = 7890", "population = 7890\nintermediate = true")
    text = text.replace("population = 15687", "population = 15687\nintermediate = true")
    assert "hosts one intermediate server" in _bad(tmp_path, text)


def test_unknown_topology_name_lists_the_shipped_ones() -> None:
    """`--topology kyoto` names the topologies there are."""
    with pytest.raises(UsageError, match=r"no topology named 'kyoto'.*hokuriku, kanazawa"):
        load_topology("kyoto")


def test_init_accepts_a_users_topology_file(tmp_path: Path) -> None:
    """`init DIR --topology PATH` writes that topology: its nodes, extra link and allow rule,
    and a certificate for every identity."""
    path = tmp_path / "noto.toml"
    path.write_text(USER_TOPOLOGY)
    wd = tmp_path / "wd"
    assert main(["init", str(wd), "--topology", str(path), "--port-base", "21000"]) == 0
    cfg = load_config(wd / "gateway.toml")
    assert [(e.name, e.port) for e in cfg.endpoints] == [
        ("cs-174611", 21001), ("cs-174637", 21002), ("pref-17", 21003), ("kiko", 21004)]
    assert [lk.name for lk in cfg.links] == ["cs-174611->pref-17", "cs-174637->pref-17",
                                             "pref-17->kiko", "pref-17->cs-174637"]
    assert cfg.endpoint("kiko").allow[-1].org_prefix == "17"
    cert = x509.load_pem_x509_certificate((wd / "pki" / "kizon-174637.pem").read_bytes())
    ident = identity_from_certificate(cert)
    assert (ident.name, ident.role, ident.org) == ("kizon-174637", "kizon-juki", "174637")


def test_init_refuses_another_topology_over_an_existing_directory(tmp_path: Path) -> None:
    """A directory made for kanazawa is not silently given hokuriku's certificates: init names
    the conflict, and --force replaces the configuration."""
    wd = tmp_path / "wd"
    init_workdir(wd, NOW, port_base=7100)
    with pytest.raises(UsageError, match="other endpoints than topology hokuriku"):
        init_workdir(wd, NOW, port_base=7100, topology=load_topology("hokuriku"))
    assert not (wd / "pki" / "cs-174637.pem").exists()
    assert main(["init", str(wd), "--topology", "hokuriku", "--force"]) == 0
    assert len(load_config(wd / "gateway.toml").endpoints) == 38
    assert (wd / "pki" / "cs-174637.pem").exists()
    assert main(["init", str(wd), "--topology", "hokuriku"]) == 0  # same topology: kept


def test_port_base_must_leave_room_for_the_whole_topology(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """hokuriku needs N+40: a base that leaves no room is refused before anything is written."""
    assert main(["init", str(tmp_path / "wd"), "--topology", "hokuriku", "--port-base", "65500"]) == 2
    assert "N+1..N+40" in capsys.readouterr().err
    assert not (tmp_path / "wd").exists()
