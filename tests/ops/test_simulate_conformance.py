"""Simulators and the conformance suite against a real ``juki-gateway serve`` and broken targets."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

import juki_gateway.simulators.conformance_ims  # noqa: F401  (registers the ims cases)
from juki_gateway.certs.identity import PeerIdentity
from juki_gateway.certs.pki import CertificateAuthority
from juki_gateway.cli.admin_client import AdminClient
from juki_gateway.gateway.config import load_config
from juki_gateway.gateway.intermediate.service import OperatorIdentity
from juki_gateway.protocols.intermediate.fukuhon import encode_fukuhon
from juki_gateway.simulators.client import Identity
from juki_gateway.simulators.conformance import CASES, CONFORMANCE_PREFIX, Suite, Target
from juki_gateway.simulators.intermediate import fukuhon_items, network_fugo, prepare_store
from juki_gateway.simulators.population import build_population
from juki_gateway.simulators.scenario import SCENARIO_DIR, load_scenario
from tests.gateway_support import Daemon, make_workdir, start_daemon

from .fixtures import bound, chain_daemon, cli, start_answering_ims, start_jukinet_target

pytestmark = pytest.mark.timeout(240)
NOW = dt.datetime.now(dt.UTC)
JUKINET_FRAME_CASES = {"R1-no-certificate", "R1-unknown-ca", "R1-expired", "R2-wrong-role",
                       "R2-wrong-organisation", "R1-accepted-peer", "R4-frame-bad-magic",
                       "R4-frame-unknown-type", "R4-frame-body-length"}



@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """One serve process hosting the Juki-net chain on loopback links; nothing seeded in its store."""
    yield from chain_daemon(tmp_path_factory, "sim")


def endpoint_args(d: Daemon) -> list[str]:
    """--endpoint NAME=PORT for every port the daemon bound, its metrics listener included."""
    metrics = int(d.metrics_url.rsplit(":", 1)[1].split("/", 1)[0])
    return [f"--endpoint={n}={p}" for n, p in d.ports.items()] + [f"--endpoint=metrics={metrics}"]


def simulate(d: Daemon, scenario: str, duration: str | None, out: Path,
             timeout: float = 150) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``juki-gateway simulate`` against ``d``; the process and its JSON summary."""
    extra = ["--duration", duration] if duration is not None else []
    proc = cli("simulate", scenario, "--config", str(d.workdir / "gateway.toml"), *extra,
               "--no-progress", "--json", str(out), *endpoint_args(d), timeout=timeout)
    assert out.exists(), proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


def held(summary: dict[str, Any]) -> dict[str, bool]:
    """invariant name → held."""
    return {i["name"]: i["held"] for i in summary["invariants"]}


FUGO_OK = "every resident got its 符号 through the intermediate server"
REACHED_KIKO = "every acknowledged update reached 機構 exactly once (R4)"
MOVES = ("every 転入通知 delivered to Kanazawa was followed by its 消除",
         "every 転入通知 towards 野々市市 reached it",
         "機構 holds each moved person once, at their newest address")


def store_texts(url: str) -> list[str]:
    """Every text and bytes value of every table of the store at ``url`` (bytes as latin-1 and
    UTF-16BE, so a code inside a frame or a wide text field is found too)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    out: list[str] = []
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            for table in meta.tables.values():
                for row in conn.execute(sa.select(table)):
                    for v in row:
                        if isinstance(v, str):
                            out.append(v)
                        elif isinstance(v, bytes | memoryview):
                            raw = bytes(v)
                            out += [raw.decode("latin-1"), raw.decode("utf-16-be", "replace")]
    finally:
        engine.dispose()
    return out


def juminhyo_codes_of(url: str) -> set[str]:
    """The 住民票コード a Juki-net node's store holds: its records (current and past) and the
    subjects of what it received (updates, 処理通番通知)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.text(
                "SELECT juminhyo_code FROM honnin_kakunin UNION "
                "SELECT juminhyo_code FROM honnin_kakunin_history UNION "
                "SELECT subject FROM provision_record "
                "WHERE kind IN ('update_notify', 'shori_tsuban')"))}
    finally:
        engine.dispose()


def _refused_handshakes(daemon: Daemon) -> float:
    return sum(v for (metric, labels), v in daemon.scrape().items()
               if metric == "juki_gateway_handshakes_total" and dict(labels).get("result") == "refused")


def test_quickstart_scenario_against_serve_alone(served: Daemon, tmp_path: Path) -> None:
    """quickstart against one serve process: 符号 via the daemon (by 処理通番: the intermediate
    server never holds a 住民票コード), updates reach 機構, R4/R7/R8 hold."""
    refused_before = _refused_handshakes(served)
    proc, summary = simulate(served, "quickstart", "10", tmp_path / "q.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the run (its check that the daemon runs included) was refused no handshake
    assert _refused_handshakes(served) == refused_before
    inv = held(summary)
    assert inv[FUGO_OK] and inv[REACHED_KIKO] and inv["nothing lost (R4)"]
    assert inv["no automatic answer about a flagged person (R7)"]
    sc = load_scenario("quickstart")
    residents = len(build_population(sc.population, seed=sc.seed, as_of=sc.as_of).residents)
    assert summary["messages"]["FUGO_REQUEST"]["issued"] == residents
    assert summary["messages"]["FUKUHON_REGISTER"] == {"accepted": residents}
    assert summary["messages"]["UPDATE_NOTIFY"]["acked"] > 0
    # moves with 野々市市 to their end (docs/moves.md): 2 out with the card, 1 in
    assert all(inv[name] for name in MOVES), summary["invariants"]
    assert summary["moves"] == {
        "tenshutsu_shomei_registered": 2, "tenshutsu_shomei_fetched (172031)": 2,
        "move_in_notices_sent (172031)": 2, "move_in_notices_delivered": 2,
        "tenshutsu_kakutei": 2, "shojo_sent": 2,
        "move_in_notices_sent": 1, "move_in_notices_delivered (172031)": 1,
        "tenshutsu_kakutei (172031)": 1, "shojo_sent (172031)": 1}
    assert "RESULT: all invariants held" in proc.stdout
    # every provision left a record (R5): the CS's updates where they were applied, and the
    # intermediate server's answers; subjects pseudonymised, never a 住民票コード
    listed = cli("provisions", "list", "--json", "--config", str(served.workdir / "gateway.toml"))
    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    keys = {"kind", "node", "provider", "recipient", "subject", "items", "outcome", "operator",
            "at"}
    assert all(keys <= set(r) for r in records)
    updates = [r for r in records if r["kind"] == "update_notify" and r["provider"] == "cs-172014"]
    assert updates and {r["node"] for r in updates} == {"pref-17"}
    assert all(r["subject"].startswith("pid:") and r["operator"] for r in updates)
    # each hop records what it received: 既存住基 → CS → 都道府県 → 機構
    assert {r["node"] for r in records if r["kind"] == "update_notify"} == {
        "cs-172014", "pref-17", "kiko"}
    assert [r for r in records if r["kind"] == "intermediate" and r["node"] == "registry"]
    only = cli("provisions", "list", "--json", "--kind", "intermediate", "--node", "registry",
               "--config", str(served.workdir / "gateway.toml"))
    assert {json.loads(line)["kind"] for line in only.stdout.splitlines()} == {"intermediate"}
    # 符号 by 処理通番: each resident's 住民票コード went 既存住基 → CS → 都道府県 → 機構 → ipnw,
    # and no table of the intermediate server's store (the registry store) holds any of them
    assert summary["messages"]["SHORI_TSUBAN_NOTIFY"]["acked"] > 0
    config = load_config(served.workdir / "gateway.toml")
    codes = juminhyo_codes_of(config.jukinet["cs-172014"].store_url)
    assert len(codes) >= residents
    texts = store_texts(config.store.url)
    assert texts
    leaked = sorted(c for c in codes if any(c in t for t in texts))
    assert not leaked, f"{len(leaked)} 住民票コード in the intermediate server's store"


def test_dv_protection_scenario_holds_flagged_queries(served: Daemon, tmp_path: Path) -> None:
    """dv-protection against serve: 符号 and 副本 through the daemon, flagged residents' queries held."""
    proc, summary = simulate(served, "dv-protection", "14", tmp_path / "dv.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["ok"] is True and summary["flagged_auto_answers"] == 0
    assert held(summary)[FUGO_OK]
    sc = load_scenario("dv-protection")
    # the population is whole households of at least 300 residents
    residents = len(build_population(sc.population, seed=sc.seed, as_of=sc.as_of).residents)
    assert summary["messages"]["FUGO_REQUEST"]["issued"] == residents
    assert summary["messages"]["FUKUHON_REGISTER"] == {"accepted": residents}
    assert summary["held_queries"] > 0
    assert summary["messages"]["INFO_QUERY (flagged)"] == {"held": summary["held_queries"]}
    assert summary["messages"]["INFO_QUERY"].get("answered", 0) > 0
    assert "no automatic answer about a flagged person (R7)" in held(summary)
    assert "RESULT: all invariants held" in proc.stdout


def test_bad_peers_scenario_refuses_every_bad_peer(served: Daemon, tmp_path: Path) -> None:
    """bad-peers against serve: wrong certificates, malformed frames, forged/replayed permits get nothing."""
    proc, summary = simulate(served, "bad-peers", "8", tmp_path / "bad.json")
    inv = held(summary)
    assert inv["misbehaving peers get nothing (R1, R2, R3)"], proc.stdout
    assert inv["forged and replayed permits refused (R8)"], proc.stdout
    assert inv[FUGO_OK] and inv[REACHED_KIKO], proc.stdout
    refusals = summary["refusals"]
    for code in ("tls:expired_certificate", "tls:unknown_ca", "tls:no_certificate",
                 "tls:role_not_allowed", "tls:other_prefecture", "bad_magic",
                 "permit_bad_signature", "permit_replayed"):
        assert refusals.get(code, 0) > 0, (code, refusals)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_moving_season_scenario_loses_and_duplicates_nothing(served: Daemon, tmp_path: Path) -> None:
    """moving-season (peak rate, deliberate resends) through serve's chain: R4 at the CS and at 機構."""
    proc, summary = simulate(served, "moving-season", "5", tmp_path / "m.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert held(summary) == {"nothing lost (R4)": True, "nothing duplicated (R4)": True,
                             REACHED_KIKO: True, **dict.fromkeys(MOVES, True)}
    assert summary["messages"]["UPDATE_NOTIFY (duplicate)"]["acked"] > 0
    assert summary["moves"]["shojo_sent"] == 5 and summary["moves"]["shojo_sent (172031)"] == 3


def test_link_outage_scenario_cuts_the_daemons_own_links(served: Daemon, tmp_path: Path) -> None:
    """link-outage, its timetable compressed fivefold: the simulator's link and both of serve's
    internal links are cut and restored, and every update still reaches 機構 exactly once."""
    import tomli_w

    from juki_gateway.workdir import read_toml

    data = read_toml(SCENARIO_DIR / "link-outage.toml")
    data["scenario"]["duration"] = data["scenario"]["duration"] / 5
    data["kizon_juki"]["rate"] = 10.0
    for outage in data["outage"]:
        outage["at"], outage["duration"] = outage["at"] / 5, outage["duration"] / 5
    scenario = tmp_path / "link-outage.toml"
    scenario.write_text(tomli_w.dumps(data))
    proc, summary = simulate(served, str(scenario), None, tmp_path / "lo.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert held(summary) == {"nothing lost (R4)": True, "nothing duplicated (R4)": True,
                             REACHED_KIKO: True, "daemon links restored": True}
    notes = " ".join(summary["notes"])
    for link in ("cs-172014->pref-17", "pref-17->kiko"):
        assert f"daemon link {link} cut at" in notes and f"daemon link {link} restored at" in notes
    assert "kizon-172014->cs-172014 cut at" in notes
    assert summary["messages"].get("UPDATE_NOTIFY (resend)", {}).get("acked", 0) > 0
    assert not (served.workdir / "links-held.json").exists() or \
        json.loads((served.workdir / "links-held.json").read_text()) == {}


def junit_cases(path: Path) -> dict[str, str]:
    """case id → pass/fail/skip from a JUnit XML file (checking its structure on the way)."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    [suite] = list(root)
    cases = suite.findall("testcase")
    assert int(suite.get("tests", "-1")) == len(cases)
    assert int(suite.get("failures", "-1")) == sum(1 for c in cases if c.find("failure") is not None)
    out = {}
    for c in cases:
        assert c.get("classname", "").startswith("conformance.") and float(c.get("time", "x")) >= 0
        status = "fail" if c.find("failure") is not None else "skip" if c.find("skipped") is not None else "pass"
        out[c.get("name", "").split(":")[0]] = status
    return out


def test_conformance_intermediate_passes_against_daemon(served: Daemon, tmp_path: Path) -> None:
    """Every intermediate-server case passes against our daemon, and the JUnit XML is well formed."""
    pki = served.workdir / "pki"
    import tomli_w

    # a flagged person with a 副本, obtained the way the systems do: bango-renkei through serve
    tiny = {"scenario": {"name": "conformance-setup", "description": "5 residents' 符号 and 副本",
                         "seed": 41, "population": 5, "as_of": "2026-04-01", "duration": 1.0},
            "bango_renkei": {"rate": 10.0, "batch": 5}}
    (tmp_path / "setup.toml").write_text(tomli_w.dumps(tiny))
    proc, summary = simulate(served, str(tmp_path / "setup.toml"), None, tmp_path / "setup.json")
    people = build_population(5, seed=41, as_of=dt.date(2026, 4, 1)).residents
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["messages"]["FUKUHON_REGISTER"] == {"accepted": len(people)}
    person = people[0]

    def admin(op: str) -> AdminClient:
        return AdminClient("127.0.0.1", served.ports["admin"], ca=pki / "ca.pem",
                           cert=pki / f"{op}.pem", key=pki / f"{op}.key", server_name="ims-172014",
                           operator=op, timestamp=lambda: NOW.strftime("%Y%m%d%H%M%S"))

    flag = admin("op-alice").call("flags.request-set", {"atena_no": person.atena_no, "scopes": [],
                                                        "reason_code": "01", "review_date": "20271231"})
    admin("op-bob").call("flags.confirm", {"flag_id": flag["flag_id"]})
    junit = tmp_path / "ims.xml"
    proc = cli("conformance", "--role", "intermediate", "--target",
               f"127.0.0.1:{served.ports['ims-172014']}", "--ca", str(pki / "ca.pem"),
               "--cert", str(pki / "ipnw.pem"), "--key", str(pki / "ipnw.key"), "--pki", str(pki),
               "--flagged-fugo", network_fugo(person), "--junit", str(junit))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = junit_cases(junit)
    assert cases["R7-flagged-held"] == "pass" and cases["R8-replayed-permit"] == "pass"
    assert cases["R11-unsigned-frame"] == "pass" and cases["R1-expired"] == "pass"
    assert cases["R11-stale-frame"] == "pass"
    assert set(cases.values()) <= {"pass", "skip"}
    assert [k for k, v in cases.items() if v == "skip"] == ["R2-wrong-organisation"]


@pytest_twisted.ensureDeferred
async def test_conformance_search_cases_pass_against_serves_prefecture(served: Daemon) -> None:
    """serve's prefecture refuses every too-broad search of R3-too-broad (氏名+性別, 生年月日+住所,
    氏名 with a one-character or prefecture-only 住所) and answers R3-narrow's with consistent counts."""
    from twisted.internet import reactor

    pki = served.workdir / "pki"
    target = Target(role="prefecture", host="127.0.0.1", port=served.ports["pref-17"],
                    server_name="pref-17", peer=Identity.from_pki(pki, "cs-172031"), pki=pki)
    results = await Suite(reactor, target).run([c for c in CASES if c.rule == "R3"])
    assert {r.case_id: r.status for r in results} == {
        "R1-accepted-peer": "pass", "R3-too-broad": "pass", "R3-narrow": "pass"}, \
        [r.detail for r in results]


# -- in-process targets: the reference receiver, and the broken ones -----------------------------


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with ports 0."""
    return make_workdir(tmp_path)


async def run_suite(reactor: Any, workdir: Path, role: str, port: int, peer: str,
                    server_name: str, flagged_fugo: str | None = None) -> dict[str, str]:
    """Run the suite in-process; case id → status. A conformance identity (``conf-…``) not yet
    in the working directory's PKI is issued there (as ``certs sign`` would)."""
    pki = workdir / "pki"
    if peer.startswith(CONFORMANCE_PREFIX) and not (pki / f"{peer}.pem").exists():
        ca = CertificateAuthority.load(pki)
        ca.issue(PeerIdentity(peer, "kizon-juki", "172014"), NOW)
    target = Target(role=role, host="127.0.0.1", port=port, server_name=server_name,
                    peer=Identity.from_pki(pki, peer), pki=pki, flagged_fugo=flagged_fugo)
    results = await Suite(reactor, target).run(CASES)
    return {r.case_id: r.status for r in results}


@pytest_twisted.ensureDeferred
async def test_reference_receiver_passes_sequencing_cases(workdir: Path) -> None:
    """A receiver built on the Juki-net sequencer passes every R4 case."""
    from twisted.internet import reactor

    svc = start_jukinet_target(load_config(workdir / "gateway.toml"), reactor, mode="reference")
    await svc.whenListening()
    try:
        cases = await run_suite(reactor, workdir, "municipal-cs", bound(svc, "cs-172014"),
                                "conf-172014", "cs-172014")
    finally:
        await svc.stopService()
    assert {k: v for k, v in cases.items() if k.startswith("R4-")} == {
        "R4-frame-bad-magic": "pass", "R4-frame-unknown-type": "pass",
        "R4-frame-body-length": "pass", "R4-in-order": "pass", "R4-duplicate": "pass",
        "R4-gap": "pass"}


@pytest_twisted.ensureDeferred
async def test_receiver_applying_duplicates_fails_the_duplicate_case(workdir: Path) -> None:
    """A receiver that applies a duplicate twice fails R4-duplicate (and only the R4 numbering cases)."""
    from twisted.internet import reactor

    svc = start_jukinet_target(load_config(workdir / "gateway.toml"), reactor, mode="applies-duplicates")
    await svc.whenListening()
    try:
        cases = await run_suite(reactor, workdir, "municipal-cs", bound(svc, "cs-172014"),
                                "conf-172014", "cs-172014")
    finally:
        await svc.stopService()
    assert cases["R4-duplicate"] == "fail"
    assert cases["R4-in-order"] == "pass"
    assert all(cases[c] == "pass" for c in JUKINET_FRAME_CASES)


@pytest_twisted.ensureDeferred
async def test_duplicate_case_claims_applied_twice_only_when_the_numbers_show_it(
        workdir: Path) -> None:
    """A receiver that keeps its numbering but refuses some records (ERROR 5104): R4-duplicate
    fails naming the refusal, never "applied twice"; against the receiver that does apply
    duplicates, it says "applied twice" and shows the number that proves it."""
    from twisted.internet import reactor

    reports = {}
    for mode in ("refuses-odd-numbers", "applies-duplicates"):
        svc = start_jukinet_target(load_config(workdir / "gateway.toml"), reactor, mode=mode)
        await svc.whenListening()
        try:
            await run_suite(reactor, workdir, "municipal-cs", bound(svc, "cs-172014"),
                            "conf-172014", "cs-172014")  # issues the identity
            pki = workdir / "pki"
            target = Target(role="municipal-cs", host="127.0.0.1", port=bound(svc, "cs-172014"),
                            server_name="cs-172014", peer=Identity.from_pki(pki, "conf-172014"),
                            pki=pki)
            results = await Suite(reactor, target).run(
                [c for c in CASES if c.case_id in ("R4-in-order", "R4-duplicate")])
        finally:
            await svc.stopService()
        reports[mode] = {r.case_id: (r.status, r.detail) for r in results}
    refused = reports["refuses-odd-numbers"]["R4-duplicate"]
    assert refused[0] == "fail" and "ERROR 5104 wrong_sender" in refused[1], refused
    assert "applied twice" not in refused[1] and "applied again" not in refused[1]
    doubled = reports["applies-duplicates"]["R4-duplicate"]
    assert doubled[0] == "fail" and "applied twice" in doubled[1], doubled
    assert "acknowledged as" in doubled[1] or "as a gap expecting" in doubled[1]


@pytest_twisted.ensureDeferred
async def test_ims_answering_a_flagged_person_fails_the_dv_case(workdir: Path) -> None:
    """An intermediate server that answers a flagged person automatically fails R7-flagged-held only."""
    from twisted.internet import reactor

    config = load_config(workdir / "gateway.toml")
    sc = load_scenario("bad-peers")
    person = build_population(5, seed=sc.seed, as_of=sc.as_of).residents[0]
    prepare_store(config.store.url, build_population(5, seed=sc.seed, as_of=sc.as_of), NOW)
    svc = start_answering_ims(config, reactor)
    await svc.whenListening()
    ims = svc.intermediate.service
    ims.import_fukuhon(encode_fukuhon(person.atena_no, fukuhon_items(person)))
    alice = OperatorIdentity("op-alice", frozenset({"flag-operator", "reviewer"}))
    bob = OperatorIdentity("op-bob", frozenset({"flag-operator", "reviewer"}))
    flag = ims.flag_request_set(alice, person.atena_no, [], "01", "20271231")
    ims.flag_confirm(bob, flag.flag_id)
    try:
        cases = await run_suite(reactor, workdir, "intermediate", bound(svc, "ims-172014"), "ipnw",
                                "ims-172014", flagged_fugo=network_fugo(person))
    finally:
        await svc.stopService()
    assert cases["R7-flagged-held"] == "fail"
    assert [k for k, v in cases.items() if v == "fail"] == ["R7-flagged-held"]


def test_capture_then_replay_on_a_fresh_build(tmp_path: Path) -> None:
    """A captured run replays with no difference on a fresh daemon, and the captured one now differs."""
    import shutil

    # both daemons start with the population's 符号 (the offline --prepare), so that the run
    # exchanges the same answers whatever order the replay re-sends its connections in
    sc = load_scenario("bad-peers")
    population = build_population(sc.population, seed=sc.seed, as_of=sc.as_of)
    first = make_workdir(tmp_path / "first", links=True)
    fresh = tmp_path / "fresh"
    shutil.copytree(first / "pki", fresh / "pki")
    shutil.copy(first / "gateway.toml", fresh / "gateway.toml")
    (fresh / "logs").mkdir()
    for root in (first, fresh):
        prepare_store(load_config(root / "gateway.toml").store.url, population, NOW)
    captured = start_daemon(first, timeout=60)
    try:
        cap = tmp_path / "run.jsonl"
        proc = cli("capture", "bad-peers", "--out", str(cap), "--config",
                   str(first / "gateway.toml"), "--duration", "3", *endpoint_args(captured))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        events = [json.loads(line) for line in cap.read_text().splitlines()]
        kinds = {e["event"] for e in events}
        assert {"open", "sent", "received", "refused"} <= kinds
        decoded = [e for e in events if e["event"] == "received" and e.get("records")]
        assert any(r.get("status") for e in decoded for r in e["records"])
        other = start_daemon(fresh, timeout=60)
        try:
            same = cli("replay", str(cap), "--config", str(fresh / "gateway.toml"),
                       *endpoint_args(other))
            assert same.returncode == 0, same.stdout + same.stderr
            assert " 0 differ" in same.stdout
        finally:
            assert other.stop() == 0
        again = cli("replay", str(cap), "--config", str(first / "gateway.toml"),
                    *endpoint_args(captured))
        assert again.returncode == 1 and "permit_replayed" in again.stdout
    finally:
        assert captured.stop() == 0
