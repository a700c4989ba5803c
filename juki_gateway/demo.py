"""``make demo``: the whole system end to end, on a fresh clone, in about two minutes.

1. the codec at work: residents with 外字 (髙橋 﨑子, 𠮷田 太郎) encoded, explained field by
   field, framed, fed to the sans-IO decoder one byte at a time and decoded back;
2. a working directory ``juki-data/demo`` (dev CA, certificates, gateway.toml on free loopback
   ports) unless one exists;
3. ``juki-gateway serve`` started as the one daemon: the four mTLS endpoints, with the Juki-net
   chain (municipal CS → prefecture → 機構) hosted inside it over its own loopback links;
4. ``juki-gateway simulate quickstart`` against it: 符号 obtained through the intermediate server,
   resident events through the CS (checked all the way to 機構), 副本 registration, information
   queries, DV-flagged residents, with a progress bar and the run summary;
5. where the logs, metrics, health and audit trail are; then everything is stopped.

The exit status is the simulation's: 0 when every invariant held.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from juki_gateway.cli.codec_cmd import cmd_explain
from juki_gateway.codecs.frame import encode_frame
from juki_gateway.codecs.messages import MessageType, encode_error
from juki_gateway.codecs.record import get_codec
from juki_gateway.codecs.samples import sample_honnin_kakunin, sample_soufusaki
from juki_gateway.protocols.channel import Broken, FrameChannel, Received

DEMO_DIR = Path(os.environ.get("JUKI_DEMO_DIR", "juki-data/demo"))
SCENARIO = "quickstart"
#: Shortens the simulation (seconds); the tests use it, `make demo` does not.
DURATION_ENV = "JUKI_DEMO_DURATION"


GAIJI_KEYS = ("gaiji", "substitute", "seion")


def _show(title: str, rec: dict[str, object]) -> None:
    print(f"  {title}")
    for key, value in rec.items():
        if key in ("kanji_name", "address") or any(k in key for k in GAIJI_KEYS):
            print(f"    {key:32} {json.dumps(value, ensure_ascii=False)}")


def codec_section() -> int:
    """Step 1: the fixed-length codecs with 外字 (what the codec issue's demo showed)."""
    print("1. fixed-length codecs with 外字\n")
    resident = sample_honnin_kakunin(1)  # 𠮷田 太郎, moved in from 千代田区
    honnin = get_codec("honnin-kakunin")
    data = honnin.encode(resident)
    print(f"1a. 本人確認情報 of {resident['kanji_name']}: {len(data)} bytes; explained:\n")
    out = io.StringIO()
    cmd_explain(argparse.Namespace(layout="honnin-kakunin", profile="jukinet", file=None), io.BytesIO(data), out)
    print(out.getvalue())

    send = sample_soufusaki(0)  # 髙橋 﨑子
    print(f"1b. 送付先情報 for {send['kanji_name']} (derived items computed by the encoder):")
    for profile in ("jukinet", "intermediate"):
        codec = get_codec("soufusaki", profile)
        _show(f"profile {profile}:", codec.decode(codec.encode(send)))

    body = get_codec("soufusaki").encode(send) + get_codec("soufusaki").encode(sample_soufusaki(1))
    ts = "20260401093000"
    frame = encode_frame(MessageType.ACK, "kiko", "cs-172014", seq=2, timestamp=ts)
    frame += encode_frame(0x0999, "kiko", "cs-172014", b"??", timestamp=ts)  # not in the catalogue
    frame += encode_frame(MessageType.NACK, "kiko", "cs-172014", encode_error(2203, "bad_check_digit",
                          "住民票コード 24727059609: check digit 9, expected 8"), record_count=1, seq=3, timestamp=ts)
    print(f"\n1c. Two soufusaki records ({len(body)} bytes) decoded back from the wire:")
    for rec in get_codec("soufusaki").decode_many(body):
        _show(f"{rec['kanji_name']}:", {k: rec[k] for k in ("gaiji_flag", "kanji_name_gaiji_count",
                                                            "substitute_name", "substitute_name_positions",
                                                            "gaiji_pattern")})

    print("\n1d. Frames (ACK, an unknown type, NACK) fed one byte at a time to the sans-IO decoder:")
    # cs-172014's channel from kiko: every connection reads its frames through one of these
    channel = FrameChannel(local="cs-172014", peer="kiko", timestamp=lambda: ts)
    for b in frame:
        channel.receive_data(bytes([b]))
        while (event := channel.next_event()) is not None:
            if isinstance(event, Broken):
                print(f"    broken [{event.error.code}]: {event.error.message}")
                return 1
            header = event.frame.header if isinstance(event, Received) else event.header
            kind = "frame" if isinstance(event, Received) else f"rejected [{event.error.code}]"
            print(f"    {kind}: type 0x{header.msg_type:04X} {header.sender} -> "
                  f"{header.receiver} seq {header.seq}")
    return 0


def _ports_free(base: int) -> bool:
    for port in (*range(base + 1, base + 5), base + 10, base + 20):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemon listens
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _free_base() -> int:
    for base in range(17100, 30000, 100):
        if _ports_free(base):
            return base
    raise SystemExit("demo: no free block of loopback ports found")


def _workdir() -> Path:
    from juki_gateway.gateway.initdir import init_workdir
    from juki_gateway.workdir import read_toml

    config = DEMO_DIR / "gateway.toml"
    if config.exists():
        base = int(read_toml(config)["metrics"]["port"]) - 20
        if _ports_free(base):
            print(f"\n2. working directory {DEMO_DIR} (kept; ports {base + 1}…{base + 20})")
            return config
        print(f"2. ports of {DEMO_DIR} are busy: re-creating it on free ports")
    base = _free_base()
    init_workdir(DEMO_DIR, dt.datetime.now(dt.UTC), port_base=base, force=True)
    for old in (DEMO_DIR / "registry.sqlite3", *DEMO_DIR.glob("jukinet-*.sqlite3*"),
                DEMO_DIR / "links-held.json"):
        old.unlink(missing_ok=True)
    print(f"\n2. working directory {DEMO_DIR} created: dev CA, certificates, gateway.toml "
          f"(endpoints on 127.0.0.1:{base + 1}…{base + 4}, admin {base + 10}, metrics {base + 20})")
    return config


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "juki_gateway", *args]


def _wait_for(proc: subprocess.Popen[bytes], marker: str, timeout: float) -> list[str]:
    """Lines of ``proc``'s stdout up to the one starting with ``marker``."""
    assert proc.stdout is not None
    lines: list[str] = []
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise SystemExit(f"demo: a process did not start (waiting for {marker!r}): {lines}")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if not ready:
            continue
        buf += os.read(proc.stdout.fileno(), 4096)
        *done, rest = buf.split(b"\n")
        buf = rest
        for raw in done:
            line = raw.decode(errors="replace")
            lines.append(line)
            if line.startswith(marker):
                return lines


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _health(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return f"{resp.status} {json.loads(resp.read())['status']}"
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {json.loads(exc.read()).get('reasons')}"
    except OSError as exc:
        return f"unreachable ({exc})"


def main() -> int:
    """Run the demo (see the module docstring)."""
    from juki_gateway.workdir import private_umask

    private_umask()  # the demo's files hold (synthetic) resident data: this account only
    print("juki-gateway demo\n")
    codec_section()
    config_path = _workdir()
    workdir = config_path.parent
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    from juki_gateway.simulators.scenario import load_scenario

    sc = load_scenario(SCENARIO)

    procs: list[subprocess.Popen[bytes]] = []
    try:
        serve = subprocess.Popen(_cli("serve", "--config", str(config_path)),
                                 stdout=subprocess.PIPE,
                                 stderr=(logs / "serve.stderr.jsonl").open("ab"))
        procs.append(serve)
        lines = _wait_for(serve, "metrics: ", 90)
        metrics_url = lines[-1].split(" ", 1)[1].strip()
        print("\n3. daemon started: " + "; ".join(line for line in lines if line.startswith("listening")))
        print("   Juki-net chain hosted by the daemon: cs-172014 → pref-17 → kiko over mTLS links\n")
        summary_json = workdir / f"{SCENARIO}-summary.json"
        print(f"4. juki-gateway simulate {SCENARIO} (about {sc.duration:.0f} s):")
        extra = [f"--duration={os.environ[DURATION_ENV]}"] if os.environ.get(DURATION_ENV) else []
        sim = subprocess.run(_cli("simulate", SCENARIO, "--config", str(config_path),
                                  "--json", str(summary_json),
                                  *extra),
                             timeout=sc.duration + 240)
        health_url = metrics_url.replace("/metrics", "/health")
        print(f"""
5. where to look:
   summary (JSON)     {summary_json}
   daemon log         {logs / 'gateway.jsonl'}  (JSON lines, resident identifiers pseudonymised)
   handshake log      {logs / 'handshakes.jsonl'}  (juki-gateway handshakes --config {config_path})
   Juki-net stores    {workdir}/jukinet-*.sqlite3  (one per hosted node)
   links              juki-gateway link status --config {config_path}  (hold|release NAME)
   metrics            {metrics_url}  (Prometheus; alert rules and dashboard: juki-gateway ops export DIR)
   health             {health_url}  → {_health(health_url)}
   audit trail        juki-gateway audit list --config {config_path}  (verify: audit verify)
   held queries       juki-gateway held list --operator op-alice --config {config_path}
""")
        return sim.returncode
    finally:
        _stop(procs)
        print("daemon stopped")


if __name__ == "__main__":
    sys.exit(main())
