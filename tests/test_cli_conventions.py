"""The command line's conventions: one ``--operator`` default, four exit codes (documented in
``--help`` and the README), usage errors for missing arguments, "none" for empty listings."""

from __future__ import annotations

import argparse
import getpass
import subprocess
import sys
from pathlib import Path

import pytest

from juki_gateway.cli import build_parser, main
from juki_gateway.cli.storeopts import OPERATOR_ENV
from juki_gateway.gateway.linkcontrol import read_held
from tests.gateway_support import REPO, make_workdir
from tests.test_cli_help import walk

#: ``audit list --operator`` filters by operator; it is not who acts
FILTERS = {"juki-gateway audit list"}


def test_every_operator_option_follows_one_convention() -> None:
    """Every ``--operator`` that says who acts defaults the same way and says so."""
    found = []
    for path, action in walk(build_parser(), "juki-gateway"):
        if "--operator" in action.option_strings and path not in FILTERS:
            found.append(path)
            assert action.default is None, path
            assert action.help is not None and f"${OPERATOR_ENV}" in action.help \
                and "login name" in action.help, (path, action.help)
    # the switches, the store, retention, the audit anchor and the intermediate's commands
    for path in ("juki-gateway link", "juki-gateway maintenance", "juki-gateway retention run",
                 "juki-gateway audit anchor", "juki-gateway store restore",
                 "juki-gateway flags list", "juki-gateway held release"):
        assert path in found, path


def test_operator_comes_from_the_option_then_the_environment_then_the_login(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``link hold`` records who held the link: --operator, else $JUKI_GATEWAY_OPERATOR, else the
    login name."""
    wd = make_workdir(tmp_path / "wd", links=True)
    cfg = ["--config", str(wd / "gateway.toml")]
    link = "cs-172014->pref-17"
    monkeypatch.delenv(OPERATOR_ENV, raising=False)
    assert main(["link", "hold", link, *cfg]) == 0
    assert read_held(wd)[link].operator == getpass.getuser()
    monkeypatch.setenv(OPERATOR_ENV, "op-from-env")
    assert main(["link", "hold", link, *cfg]) == 0
    assert read_held(wd)[link].operator == "op-from-env"
    assert main(["link", "hold", link, "--operator", "op-given", *cfg]) == 0
    assert read_held(wd)[link].operator == "op-given"


def test_exit_codes_are_documented_in_help_and_readme() -> None:
    """``juki-gateway --help`` and the README list the same exit codes."""
    text = build_parser().format_help()
    readme = (REPO / "README.md").read_text()
    for code in ("success", "runtime error", "usage error", "130", "143", "SIGTERM"):
        assert code in text, code
        assert code in readme, code
    assert "JUKI_GATEWAY_OPERATOR" in text and "JUKI_GATEWAY_OPERATOR" in readme


def test_link_hold_without_a_name_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``link hold`` with no NAME: exit 2 naming the links, not "no link named None"."""
    wd = make_workdir(tmp_path / "wd", links=True)
    assert main(["link", "hold", "--config", str(wd / "gateway.toml")]) == 2
    err = capsys.readouterr().err
    assert "needs the NAME of a link" in err and "cs-172014->pref-17" in err and "None" not in err


def test_runtime_and_usage_errors_exit_1_and_2(tmp_path: Path) -> None:
    """A runtime failure exits 1, a usage error 2 (in a real process, one line, no traceback)."""
    wd = make_workdir(tmp_path / "wd")
    missing = subprocess.run([sys.executable, "-m", "juki_gateway", "certs", "revoke", "nobody",
                              "--config", str(wd / "gateway.toml")], capture_output=True,
                             text=True, timeout=60, cwd=REPO)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr, missing.stderr
    usage = subprocess.run([sys.executable, "-m", "juki_gateway", "certs", "list", "--config",
                            str(tmp_path / "nowhere.toml")], capture_output=True, text=True,
                           timeout=60, cwd=REPO)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1, usage.stderr


def test_empty_listings_say_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No links, no handshakes, no certificates: each listing prints "none"."""
    wd = make_workdir(tmp_path / "wd")  # no links
    cfg = ["--config", str(wd / "gateway.toml")]
    capsys.readouterr()
    assert main(["link", "status", *cfg]) == 0
    assert capsys.readouterr().out.strip() == "none"
    assert main(["handshakes", *cfg]) == 0
    assert capsys.readouterr().out.strip() == "none"
    for pem in (wd / "pki").glob("*"):  # an empty CA index
        if pem.name == "index.json":
            pem.write_text("{}\n")
    assert main(["certs", "list", *cfg]) == 0
    assert capsys.readouterr().out.strip() == "none"


def test_simulate_against_a_stopped_daemon_says_so_in_one_line(tmp_path: Path) -> None:
    """No daemon running: one line naming the problem and the command that starts it, exit 1."""
    wd = make_workdir(tmp_path / "wd")
    # ports 0 in the file: point every endpoint at a closed port
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]
    s.close()
    eps = [f"--endpoint={n}={closed}" for n in ("cs-172014", "pref-17", "kiko", "ims-172014",
                                                 "admin", "metrics")]
    proc = subprocess.run([sys.executable, "-m", "juki_gateway", "simulate", "quickstart",
                           "--config", str(wd / "gateway.toml"), "--no-progress", *eps],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "daemon_not_running" in lines[0], proc.stderr
    assert "juki-gateway serve --config" in lines[0]


def test_walk_sees_the_filters(tmp_path: Path) -> None:
    """The filter exception is real: ``audit list --operator`` exists and filters."""
    paths = {p for p, a in walk(build_parser(), "juki-gateway") if "--operator" in a.option_strings}
    assert FILTERS <= paths
    assert isinstance(build_parser(), argparse.ArgumentParser)


def test_simulate_asks_every_daemon_of_a_split_and_no_proxy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`simulate`'s check asks each daemon's /health directly (a proxy in the environment is
    not used): any HTTP answer, 500 included, means running; one daemon silent is named; a
    daemon whose metrics port is unknown (0) is not asked."""
    import http.server
    import socket
    import threading

    from juki_gateway.cli.simulate import DaemonNotRunning, require_daemon

    class Unhealthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Unhealthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    # a proxy that does not exist: used, it would make every daemon look silent
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed}")
    up = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    down = f"http://127.0.0.1:{closed}/metrics"
    try:
        require_daemon([up, "http://127.0.0.1:0/metrics"], tmp_path)
        with pytest.raises(DaemonNotRunning, match=f"not every daemon .*:{closed}/health"):
            require_daemon([up, down], tmp_path)
        with pytest.raises(DaemonNotRunning, match="no daemon is running"):
            require_daemon([down], tmp_path)
    finally:
        server.shutdown()
        server.server_close()
