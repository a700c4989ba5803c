"""Simulators and the conformance suite against a real ``juki-gateway serve`` and broken targets."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

import juki_gateway.simulators.conformance_ims  # noqa: F401  (registers the ims cases)
from juki_gateway.gateway.config import load_config
from juki_gateway.intermediate.client import AdminClient
from juki_gateway.intermediate.service import OperatorIdentity
from juki_gateway.protocols.intermediate.fukuhon import encode_fukuhon
from juki_gateway.simulators.client import Identity
from juki_gateway.simulators.conformance import CASES, Suite, Target
from juki_gateway.simulators.intermediate import fugo_for, fukuhon_items, prepare_store
from juki_gateway.simulators.population import build_population
from juki_gateway.simulators.scenario import load_scenario
from tests.gateway_support import REPO, Daemon, make_workdir, start_daemon

from .fixtures import bound, start_answering_ims, start_jukinet_target

pytestmark = pytest.mark.timeout(180)
NOW = dt.datetime.now(dt.UTC)
JUKINET_FRAME_CASES = {"R1-no-certificate", "R1-unknown-ca", "R1-expired", "R2-wrong-role",
                       "R2-wrong-organisation", "R1-accepted-peer", "R4-frame-bad-magic",
                       "R4-frame-unknown-type", "R4-frame-body-length"}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The juki-gateway command in a subprocess (it runs its own reactor)."""
    return subprocess.run([sys.executable, "-m", "juki_gateway", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon whose store already holds the 符号 of the scenarios' populations."""
    root = make_workdir(tmp_path_factory.mktemp("sim"), links=True)
    config = load_config(root / "gateway.toml")
    for name in ("dv-protection", "bad-peers"):
        sc = load_scenario(name)
        prepare_store(config.store.url, build_population(sc.population, seed=sc.seed,
                                                         as_of=sc.as_of), NOW)
    d = start_daemon(root, timeout=60)
    yield d
    assert d.stop() == 0


def endpoint_args(d: Daemon) -> list[str]:
    """--endpoint NAME=PORT for every port the daemon bound."""
    return [f"--endpoint={n}={p}" for n, p in d.ports.items()]


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


def test_dv_protection_scenario_holds_flagged_queries(served: Daemon, tmp_path: Path) -> None:
    """dv-protection against serve: 副本 registered, flagged residents' queries held, none answered."""
    out = tmp_path / "dv.json"
    proc = cli("simulate", "dv-protection", "--config", str(served.workdir / "gateway.toml"),
               "--duration", "12", "--no-progress", "--json", str(out), *endpoint_args(served))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(out.read_text())
    assert summary["ok"] is True and summary["flagged_auto_answers"] == 0
    assert summary["messages"]["FUKUHON_REGISTER"] == {"accepted": 300}
    assert summary["held_queries"] > 0
    assert summary["messages"]["INFO_QUERY (flagged)"] == {"held": summary["held_queries"]}
    assert summary["messages"]["INFO_QUERY"].get("answered", 0) > 0
    names = {i["name"] for i in summary["invariants"]}
    assert "no automatic answer about a flagged person (R7)" in names
    assert "RESULT: all invariants held" in proc.stdout


def test_bad_peers_scenario_refuses_every_bad_peer(served: Daemon, tmp_path: Path) -> None:
    """bad-peers against serve: wrong certificates, malformed frames, forged/replayed permits get nothing."""
    out = tmp_path / "bad.json"
    proc = cli("simulate", "bad-peers", "--config", str(served.workdir / "gateway.toml"),
               "--duration", "6", "--no-progress", "--json", str(out), *endpoint_args(served))
    summary = json.loads(out.read_text())
    held = {i["name"]: i["held"] for i in summary["invariants"]}
    assert held["misbehaving peers get nothing (R1, R2, R3)"], proc.stdout
    assert held["forged and replayed permits refused (R8)"], proc.stdout
    refusals = summary["refusals"]
    for code in ("tls:expired_certificate", "tls:unknown_ca", "tls:no_certificate",
                 "tls:role_not_allowed", "tls:other_prefecture", "bad_magic",
                 "permit_bad_signature", "permit_replayed"):
        assert refusals.get(code, 0) > 0, (code, refusals)


def test_conformance_intermediate_passes_against_daemon(served: Daemon, tmp_path: Path) -> None:
    """Every intermediate-server case passes against our daemon, and the JUnit XML is well formed."""
    pki = served.workdir / "pki"
    sc = load_scenario("bad-peers")
    person = build_population(sc.population, seed=sc.seed, as_of=sc.as_of).residents[0]

    def admin(op: str) -> AdminClient:
        return AdminClient("127.0.0.1", served.ports["admin"], ca=pki / "ca.pem",
                           cert=pki / f"{op}.pem", key=pki / f"{op}.key", server_name="ims-172014",
                           operator=op, timestamp=lambda: NOW.strftime("%Y%m%d%H%M%S"))

    record = encode_fukuhon(person.atena_no, fukuhon_items(person))
    import base64

    admin("op-alice").call("fukuhon.import", {"data": base64.b64encode(record).decode()})
    flag = admin("op-alice").call("flags.request-set", {"atena_no": person.atena_no, "scopes": [],
                                                        "reason_code": "01", "review_date": "20271231"})
    admin("op-bob").call("flags.confirm", {"flag_id": flag["flag_id"]})
    junit = tmp_path / "ims.xml"
    proc = cli("conformance", "--role", "intermediate", "--target",
               f"127.0.0.1:{served.ports['ims-172014']}", "--ca", str(pki / "ca.pem"),
               "--cert", str(pki / "ipnw.pem"), "--key", str(pki / "ipnw.key"), "--pki", str(pki),
               "--flagged-fugo", fugo_for(person.atena_no), "--junit", str(junit))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = junit_cases(junit)
    assert cases["R7-flagged-held"] == "pass" and cases["R8-replayed-permit"] == "pass"
    assert cases["R11-unsigned-frame"] == "pass" and cases["R1-expired"] == "pass"
    assert set(cases.values()) <= {"pass", "skip"}
    assert [k for k, v in cases.items() if v == "skip"] == ["R2-wrong-organisation"]


def test_conformance_municipal_cs_refusal_and_frame_cases(served: Daemon, tmp_path: Path) -> None:
    """Against our CS endpoint the handshake, role and frame-error cases pass."""
    pki = served.workdir / "pki"
    junit = tmp_path / "cs.xml"
    cli("conformance", "--role", "municipal-cs", "--target",
        f"127.0.0.1:{served.ports['cs-172014']}", "--ca", str(pki / "ca.pem"),
        "--cert", str(pki / "kizon-172014.pem"), "--key", str(pki / "kizon-172014.key"),
        "--pki", str(pki), "--junit", str(junit))
    cases = junit_cases(junit)
    assert {k for k in JUNIT_PASS(cases)} >= JUKINET_FRAME_CASES


def JUNIT_PASS(cases: dict[str, str]) -> set[str]:
    """The ids of the passing cases."""
    return {k for k, v in cases.items() if v == "pass"}


# -- in-process targets: the reference receiver, and the broken ones -----------------------------


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with ports 0."""
    return make_workdir(tmp_path)


async def run_suite(reactor: Any, workdir: Path, role: str, port: int, peer: str,
                    server_name: str, flagged_fugo: str | None = None) -> dict[str, str]:
    """Run the suite in-process; case id → status."""
    pki = workdir / "pki"
    target = Target(role=role, host="127.0.0.1", port=port, server_name=server_name,
                    peer=Identity.from_pki(pki, peer), pki=pki, flagged_fugo=flagged_fugo)
    results = await Suite(reactor, target).run(CASES)
    return {r.case_id: r.status for r in results}


@pytest_twisted.ensureDeferred
async def test_reference_receiver_passes_sequencing_cases(workdir: Path) -> None:
    """A receiver built on the Juki-net sequencer passes every R4 case."""
    from twisted.internet import reactor

    svc = start_jukinet_target(load_config(workdir / "gateway.toml"), reactor, broken=False)
    await svc.whenListening()
    try:
        cases = await run_suite(reactor, workdir, "municipal-cs", bound(svc, "cs-172014"),
                                "kizon-172014", "cs-172014")
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

    svc = start_jukinet_target(load_config(workdir / "gateway.toml"), reactor, broken=True)
    await svc.whenListening()
    try:
        cases = await run_suite(reactor, workdir, "municipal-cs", bound(svc, "cs-172014"),
                                "kizon-172014", "cs-172014")
    finally:
        await svc.stopService()
    assert cases["R4-duplicate"] == "fail"
    assert cases["R4-in-order"] == "pass"
    assert all(cases[c] == "pass" for c in JUKINET_FRAME_CASES)


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
    ims = svc.ims  # type: ignore[attr-defined]
    ims.import_fukuhon(encode_fukuhon(person.atena_no, fukuhon_items(person)))
    alice = OperatorIdentity("op-alice", frozenset({"flag-operator", "reviewer"}))
    bob = OperatorIdentity("op-bob", frozenset({"flag-operator", "reviewer"}))
    flag = ims.flag_request_set(alice, person.atena_no, [], "01", "20271231")
    ims.flag_confirm(bob, flag.flag_id)
    try:
        cases = await run_suite(reactor, workdir, "intermediate", bound(svc, "ims-172014"), "ipnw",
                                "ims-172014", flagged_fugo=fugo_for(person.atena_no))
    finally:
        await svc.stopService()
    assert cases["R7-flagged-held"] == "fail"
    assert [k for k, v in cases.items() if v == "fail"] == ["R7-flagged-held"]


def test_capture_then_replay_on_a_fresh_build(served: Daemon, tmp_path: Path) -> None:
    """A captured run replays with no difference on a fresh daemon, and the served one now differs."""
    import shutil

    cap = tmp_path / "run.jsonl"
    proc = cli("capture", "bad-peers", "--out", str(cap), "--config",
               str(served.workdir / "gateway.toml"), "--duration", "3", *endpoint_args(served))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = [json.loads(line) for line in cap.read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert {"open", "sent", "received", "refused"} <= kinds
    decoded = [e for e in events if e["event"] == "received" and e.get("records")]
    assert any(r.get("status") for e in decoded for r in e["records"])
    # a fresh build: same PKI, empty store with the same 符号
    fresh = tmp_path / "fresh"
    shutil.copytree(served.workdir / "pki", fresh / "pki")
    shutil.copy(served.workdir / "gateway.toml", fresh / "gateway.toml")
    (fresh / "logs").mkdir()
    config = load_config(fresh / "gateway.toml")
    sc = load_scenario("bad-peers")
    prepare_store(config.store.url, build_population(sc.population, seed=sc.seed, as_of=sc.as_of), NOW)
    other = start_daemon(fresh, timeout=60)
    try:
        same = cli("replay", str(cap), "--config", str(fresh / "gateway.toml"), *endpoint_args(other))
        assert same.returncode == 0, same.stdout + same.stderr
        assert " 0 differ" in same.stdout
    finally:
        assert other.stop() == 0
    again = cli("replay", str(cap), "--config", str(served.workdir / "gateway.toml"),
                *endpoint_args(served))
    assert again.returncode == 1 and "permit_replayed" in again.stdout


@pytest.fixture(scope="module")
def jukinet_cs(served: Daemon) -> Iterator[int]:
    """The Juki-net chain (CS → prefecture → 機構) as node processes on the daemon's PKI."""
    from juki_gateway.demo import _start_jukinet, _stop

    procs, cs_port = _start_jukinet(served.workdir / "gateway.toml", served.workdir / "logs")
    yield cs_port
    _stop(procs)


@pytest.mark.parametrize(("scenario", "duration"), [("moving-season", "4"), ("link-outage", "20")])
def test_existing_system_scenarios_lose_and_duplicate_nothing(
    served: Daemon, jukinet_cs: int, tmp_path: Path, scenario: str, duration: str
) -> None:
    """moving-season (peak rate, resends) and link-outage (cut and restored) keep R4 end to end."""
    out = tmp_path / "s.json"
    proc = cli("simulate", scenario, "--config", str(served.workdir / "gateway.toml"),
               "--duration", duration, "--no-progress", "--json", str(out),
               *endpoint_args(served), f"--endpoint=cs-172014={jukinet_cs}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(out.read_text())
    held = {i["name"]: i["held"] for i in summary["invariants"]}
    assert held == {"nothing lost (R4)": True, "nothing duplicated (R4)": True}
    if scenario == "link-outage":
        assert any("cut at" in n for n in summary["notes"])
        assert summary["messages"].get("UPDATE_NOTIFY (resend)", {}).get("acked", 0) > 0
    else:
        assert summary["messages"]["UPDATE_NOTIFY (duplicate)"]["acked"] > 0


def test_conformance_municipal_cs_passes_against_the_jukinet_node(
    served: Daemon, jukinet_cs: int, tmp_path: Path
) -> None:
    """The Juki-net CS node passes the municipal-cs cases, R4 sequencing included."""
    pki = served.workdir / "pki"
    junit = tmp_path / "node.xml"
    proc = cli("conformance", "--role", "municipal-cs", "--target", f"127.0.0.1:{jukinet_cs}",
               "--ca", str(pki / "ca.pem"), "--cert", str(pki / "kizon-172014.pem"),
               "--key", str(pki / "kizon-172014.key"), "--pki", str(pki), "--junit", str(junit))
    cases = junit_cases(junit)
    assert {"R4-in-order", "R4-duplicate", "R4-gap"} <= JUNIT_PASS(cases), proc.stdout
