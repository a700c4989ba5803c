"""Operators drive a running ``juki-gateway serve`` through the flags/held/provisions CLI."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock

from juki_gateway.cli import main
from juki_gateway.codecs.frame import Frame, FrameDecoder
from juki_gateway.codecs.messages import MessageType
from juki_gateway.gateway.config import load_config
from juki_gateway.gateway.intermediate.service import ImsKeys, IntermediateService
from juki_gateway.gateway.intermediate.session import LENGTHS
from juki_gateway.protocols.intermediate.answer import decode_query_result, open_answer
from juki_gateway.protocols.intermediate.decision import Reason
from juki_gateway.protocols.intermediate.messages import ImsMessageType, QueryStatus
from juki_gateway.registry_store.anchor import load_key
from juki_gateway.registry_store.audit import list_audit, verify_chain
from juki_gateway.registry_store.engine import create_store_engine
from juki_gateway.registry_store.migrate import upgrade

from ..gateway_support import client_context, start_daemon
from .conftest import fukuhon_record
from .helpers import FUKUHON, REQUESTER_KEY, make_list, make_permit
from .mtls import frame_from, free_port, make_workdir, now14, private_key
from .test_service import ATENA, FUGO, query_body

pytestmark = pytest.mark.timeout(120)


class Ipnw:
    """A blocking ipnw peer on the intermediate endpoint: signed frames out, frames back."""

    def __init__(self, pki: Path, port: int) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock = client_context(pki, "ipnw").wrap_socket(raw, server_hostname="ims-172014")
        self.key = private_key(pki, "ipnw")
        self.decoder = FrameDecoder(LENGTHS)
        self.n = 0

    def send(self, msg_type: int, body: bytes, count: int, expect: int) -> list[Frame]:
        """Send one signed frame and read ``expect`` frames back."""
        self.n += 1
        self.sock.sendall(
            frame_from(self.key, "ipnw", msg_type, body, count, self.n, now14())
        )
        got: list[Frame] = []
        while len(got) < expect:
            while (ev := self.decoder.next_event()) is not None:
                assert isinstance(ev, Frame)
                got.append(ev)
            if len(got) < expect:
                self.decoder.receive_data(self.sock.recv(65536))
        return got

    def ask(self, permit_id: str) -> Any:
        """One query; its decoded result."""
        now = dt.datetime.now(dt.UTC)
        permit = make_permit(
            permit_id,
            key=self.key,
            issued=(now - dt.timedelta(minutes=5)).strftime("%Y%m%d%H%M%S"),
            expires=(now + dt.timedelta(minutes=5)).strftime("%Y%m%d%H%M%S"),
        )
        [frame] = self.send(ImsMessageType.INFO_QUERY, query_body(permit), 1, 1)
        return decode_query_result(frame.body)


def cli(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process; (exit code, stdout, stderr)."""
    rc = main([*args[:2], "--config", str(config), *args[2:]])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_flag_and_held_commands_against_a_running_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Set/confirm/clear a flag, review and release a held query, list provisions, audit verifies."""
    path = make_workdir(
        tmp_path / "wd", dt.datetime.now(dt.UTC) - dt.timedelta(days=1), admin_port=free_port()
    )
    config = load_config(path)
    engine = create_store_engine(config.store.url)
    upgrade(config.store.url, engine=engine)
    seed = IntermediateService(engine, ImsKeys.from_pki(config.pki_dir), "ims-172014", Clock())
    seed.start()
    seed.register_fugo(ATENA, FUGO)
    seed.import_fukuhon(fukuhon_record(ATENA))
    seed.offer_permission_list(make_list(1, key=private_key(config.pki_dir, "ipnw")).to_bytes())
    engine.dispose()

    daemon = start_daemon(path.parent)
    try:
        ipnw = Ipnw(config.pki_dir, daemon.ports["ims-172014"])
        assert ipnw.ask("c-1").status is QueryStatus.ANSWERED

        rc, out, err = cli(
            capsys,
            path,
            "flags",
            "request-set",
            ATENA,
            "--reason",
            "01",
            "--review",
            "20991231",
            "--operator",
            "op-alice",
        )
        assert rc == 0, err
        flag_id = json.loads(out)["flag_id"]
        assert ipnw.ask("c-2").reason is Reason.HELD_FLAG  # pending set already blocks

        rc, _, err = cli(capsys, path, "flags", "confirm", flag_id, "--operator", "op-alice")
        assert rc == 1 and "flag_self_confirmation" in err and "Traceback" not in err
        rc, out, _ = cli(capsys, path, "flags", "confirm", flag_id, "--operator", "op-bob")
        assert rc == 0 and json.loads(out)["state"] == "active"
        rc, out, _ = cli(capsys, path, "flags", "list", "--operator", "op-carol")
        assert rc == 0 and [json.loads(line)["flag_id"] for line in out.splitlines()] == [flag_id]

        rc, out, _ = cli(capsys, path, "held", "list", "--operator", "op-bob")
        [held] = [json.loads(line) for line in out.splitlines()]
        rc, out, _ = cli(capsys, path, "held", "show", held["held_id"], "--operator", "op-bob")
        assert json.loads(out)["content"]["jusho"] == FUKUHON["jusho"]
        rc, _, err = cli(capsys, path, "held", "release", held["held_id"], "--operator", "op-carol")
        assert rc == 1 and "not_authorised" in err
        rc, _, _ = cli(capsys, path, "held", "release", held["held_id"], "--operator", "op-bob")
        assert rc == 0
        pong, released = ipnw.send(MessageType.PING, b"", 0, 2)
        assert pong.msg_type == MessageType.PONG
        result = decode_query_result(released.body)
        assert result.status is QueryStatus.RELEASED
        assert open_answer(result, REQUESTER_KEY, "ims-172014")["shimei"] == FUKUHON["shimei"]

        rc, _, _ = cli(capsys, path, "flags", "request-clear", flag_id, "--operator", "op-bob")
        assert rc == 0 and ipnw.ask("c-3").reason is Reason.HELD_FLAG  # clear not yet confirmed
        rc, _, _ = cli(capsys, path, "flags", "confirm", flag_id, "--operator", "op-alice")
        assert rc == 0 and ipnw.ask("c-4").status is QueryStatus.ANSWERED

        rc, out, _ = cli(
            capsys, path, "provisions", "list", "--person", ATENA, "--operator", "op-carol"
        )
        outcomes = [json.loads(line)["outcome"] for line in out.splitlines()]
        assert rc == 0 and outcomes == ["provided", "held", "provided", "held", "provided"]
        rc, out, _ = cli(
            capsys, path, "provisions", "list", "--since", "2099-01-01", "--operator", "op-carol"
        )
        assert rc == 0 and out == ""
        rc, _, err = cli(
            capsys, path, "provisions", "list", "--since", "yesterday", "--operator", "op-carol"
        )
        assert rc == 2 and "admin_request_invalid" in err
        upload = tmp_path / "upload.bin"
        upload.write_bytes(fukuhon_record(ATENA) + fukuhon_record("172014000000999"))
        rc, out, _ = cli(capsys, path, "fukuhon", "import", str(upload), "--operator", "op-alice")
        codes = [json.loads(line)["result_code"] for line in out.splitlines()]
        assert rc == 1 and codes == [0, 6402]
        export = tmp_path / "fukuhon.bin"
        rc, _, _ = cli(capsys, path, "fukuhon", "export", str(export), "--operator", "op-carol")
        assert rc == 0 and export.read_bytes() == fukuhon_record(ATENA)
        assert export.stat().st_mode & 0o777 == 0o600  # 副本 of residents: this account only

        # flagged again, with an accompanying person: a plain export leaves them out, and only a
        # reviewer's request confirmed by another operator brings them back
        rc, out, err = cli(capsys, path, "flags", "request-set", ATENA, "--reason", "01",
                           "--review", "20991231", "--accompanying", "172014000000998",
                           "--operator", "op-alice")
        assert rc == 0 and json.loads(out)["accompanying"] == ["172014000000998"], err
        rc, out, _ = cli(capsys, path, "fukuhon", "export", str(export), "--operator", "op-carol")
        assert rc == 0 and "1 flagged people left out" in out and export.read_bytes() == b""
        rc, out, _ = cli(capsys, path, "fukuhon", "request-export", "--operator", "op-alice")
        request_id = json.loads(out)["request_id"]
        rc, _, err = cli(capsys, path, "fukuhon", "export", str(export), "--include-flagged",
                         request_id, "--operator", "op-alice")
        assert rc == 1 and "fukuhon_export_unconfirmed" in err
        rc, _, err = cli(capsys, path, "fukuhon", "confirm-export", request_id,
                         "--operator", "op-alice")
        assert rc == 1 and "flag_self_confirmation" in err
        rc, _, _ = cli(capsys, path, "fukuhon", "confirm-export", request_id, "--operator", "op-bob")
        assert rc == 0
        rc, _, _ = cli(capsys, path, "fukuhon", "export", str(export), "--include-flagged",
                       request_id, "--operator", "op-alice")
        assert rc == 0 and export.read_bytes() == fukuhon_record(ATENA)
        ipnw.sock.close()
        # the admin port admits operators only: a network peer's certificate gets nothing
        raw = socket.create_connection(("127.0.0.1", config.admin.port), timeout=10)
        with pytest.raises((ssl.SSLError, OSError)):
            with client_context(config.pki_dir, "ipnw").wrap_socket(
                raw, server_hostname="ims-172014"
            ) as tls:
                tls.sendall(b"x")
                assert tls.recv(100) == b""
                raise OSError("closed without data")
    finally:
        assert daemon.stop() == 0
    rc, out, err = cli(capsys, path, "audit", "verify")
    assert rc == 0 and out.startswith("audit chain ok"), out + err
    engine = create_store_engine(config.store.url)
    with engine.connect() as conn:
        assert verify_chain(conn, keys=[load_key(config.pki_dir / "audit-anchor.key")]).ok
        actions = [a.action for a in list_audit(conn)]
    engine.dispose()
    for action in (
        "flags.request-set",
        "flags.confirm",
        "flags.confirm-refused",
        "held.show",
        "held.release",
        "flags.request-clear",
        "provisions.list",
        "fukuhon.export",
        "fukuhon.export-request",
        "fukuhon.export-confirm",
        "fukuhon.export-confirm-refused",
        "fukuhon.export-refused",
    ):
        assert action in actions, action


def test_cli_without_operator_or_daemon_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No operator named, or no daemon listening: one clear error line, no traceback."""
    path = make_workdir(tmp_path / "wd", dt.datetime.now(dt.UTC), admin_port=free_port())
    rc, _, err = cli(capsys, path, "flags", "list")
    assert rc == 2 and "op-alice" in err and "Traceback" not in err
    rc, _, err = cli(capsys, path, "held", "list", "--operator", "op-bob")
    assert rc == 1 and "admin_unreachable" in err


def test_every_admin_request_is_answered_and_audited(tmp_path: Path) -> None:
    """A request with hostile arguments gets an answer (admin_action_failed, an incident id, no
    traceback) on a connection that keeps working, a refused one gets its code, and both are in
    the audit log as ACTION-failed and ACTION-refused."""
    from juki_gateway.cli.admin_client import AdminClient, RemoteActionFailed

    path = make_workdir(tmp_path / "wd", dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
                        admin_port=free_port())
    config = load_config(path)
    daemon = start_daemon(path.parent)

    def client(op: str) -> AdminClient:
        return AdminClient("127.0.0.1", config.admin.port, ca=config.ca, crl=config.crl,
                           cert=config.pki_dir / f"{op}.pem", key=config.pki_dir / f"{op}.key",
                           server_name="ims-172014", operator=op,
                           timestamp=lambda: "20261126120000")

    try:
        alice, carol = client("op-alice"), client("op-carol")
        with pytest.raises(RemoteActionFailed) as failed:
            alice.call("flags.request-set", {"atena_no": ["not", "a", "number"], "scopes": 7})
        assert failed.value.code == "admin_action_failed" and "incident" in failed.value.message
        assert "Traceback" not in failed.value.message
        with pytest.raises(RemoteActionFailed) as refused:
            carol.call("flags.request-set", {"atena_no": ATENA, "scopes": [],
                                              "reason_code": "01", "review_date": "20271231"})
        assert refused.value.code == "not_authorised"
        assert alice.call("flags.list", {}) == []  # the daemon still answers
    finally:
        assert daemon.stop() == 0
    engine = create_store_engine(config.store.url)
    with engine.connect() as conn:
        entries = [(a.operator_id, a.action) for a in list_audit(conn)]
        assert verify_chain(conn, keys=[load_key(config.pki_dir / "audit-anchor.key")]).ok
    engine.dispose()
    assert ("op-alice", "flags.request-set-failed") in entries
    assert ("op-carol", "flags.request-set-refused") in entries


def test_the_admin_cli_refuses_a_daemon_whose_certificate_is_revoked(tmp_path: Path) -> None:
    """The operator's client checks the daemon's certificate against the CRL: once the
    intermediate endpoint's certificate is revoked, an admin call fails as unreachable instead of
    handing the operator's request to it."""
    from juki_gateway.certs.pki import CertificateAuthority
    from juki_gateway.cli.admin_client import AdminClient, AdminUnreachable

    path = make_workdir(tmp_path / "wd", dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
                        admin_port=free_port())
    config = load_config(path)
    daemon = start_daemon(path.parent)
    client = AdminClient("127.0.0.1", config.admin.port, ca=config.ca, crl=config.crl,
                         cert=config.pki_dir / "op-alice.pem", key=config.pki_dir / "op-alice.key",
                         server_name="ims-172014", operator="op-alice",
                         timestamp=lambda: "20261126120000")
    try:
        assert client.call("flags.list", {}) == []
        CertificateAuthority.load(config.pki_dir).revoke("ims-172014", dt.datetime.now(dt.UTC))
        revoked = AdminClient("127.0.0.1", config.admin.port, ca=config.ca, crl=config.crl,
                              cert=config.pki_dir / "op-alice.pem",
                              key=config.pki_dir / "op-alice.key", server_name="ims-172014",
                              operator="op-alice", timestamp=lambda: "20261126120000")
        with pytest.raises(AdminUnreachable, match="revoked"):
            revoked.call("flags.list", {})
    finally:
        assert daemon.stop() == 0
