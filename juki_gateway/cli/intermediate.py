"""``juki-gateway flags|held|provisions|fukuhon``: the intermediate server's operator commands.

Each command talks to the running daemon's admin port over mutual TLS with an operator
certificate: ``--operator NAME`` (``pki/NAME.pem``/``.key`` of the working directory; default
``$JUKI_GATEWAY_OPERATOR``, else the login name: the one ``--operator`` convention of every
sub-command) or explicit ``--operator-cert``/``--operator-key``. The daemon checks
the operator's role and writes an audit entry for every action. Lists print one JSON object per
line; ``show`` prints one indented JSON object.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from juki_gateway.cli.storeopts import OPERATOR_ENV, add_operator_option, operator_of
from juki_gateway.errors import UsageError
from juki_gateway.registry_store.provisions import KINDS
from juki_gateway.workdir import add_config_argument, config_path_from, write_private


def _common(p: argparse.ArgumentParser) -> None:
    add_config_argument(p)
    add_operator_option(p, "operator whose pki/ID.pem and .key to use")
    p.add_argument("--operator-cert", type=Path, metavar="PEM",
                   help="an operator certificate outside the working directory's pki/")
    p.add_argument("--operator-key", type=Path, metavar="KEY", help="its private key")


def register(sub: Any) -> None:
    """Add the flags, held, provisions and fukuhon sub-commands."""
    flags = sub.add_parser("flags", help="auto-response-block (DV) flags, two-person rule")
    fs = flags.add_subparsers(dest="flags_command", metavar="ACTION", required=True)
    p = fs.add_parser("request-set", help="request a flag (blocks at once)")
    _common(p)
    p.add_argument("atena_no", help="団体内統合宛名番号 (15 digits)")
    p.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="項番:ITEM",
        help="limit to a 項番 and/or item (* for any); repeatable; default all items",
    )
    p.add_argument("--reason", required=True, metavar="CODE", help="reason code (2-4 digits)")
    p.add_argument("--review", required=True, metavar="YYYYMMDD", help="review date")
    p.add_argument("--accompanying", action="append", default=[], metavar="ATENA_NO",
                   help="併せて支援を求める者 (15 digits): a household member the same flag covers; "
                        "repeatable")
    p.set_defaults(func=_run, action="flags.request-set")
    for name, helptext in (
        ("request-clear", "request a clear (effective when confirmed)"),
        ("confirm", "confirm another operator's pending request"),
        ("show", "show one flag"),
    ):
        p = fs.add_parser(name, help=helptext)
        _common(p)
        p.add_argument("flag_id", help="the flag's id (flags list shows them)")
        p.set_defaults(func=_run, action=f"flags.{name}")
    p = fs.add_parser("list", help="blocking flags (--all: cleared ones too)")
    _common(p)
    p.add_argument("--all", action="store_true", help="cleared flags too")
    p.set_defaults(func=_run, action="flags.list")

    held = sub.add_parser("held", help="queries held for manual response")
    hs = held.add_subparsers(dest="held_command", metavar="ACTION", required=True)
    p = hs.add_parser("list", help="waiting held queries (--all: decided ones too)")
    _common(p)
    p.add_argument("--all", action="store_true", help="decided queries too")
    p.set_defaults(func=_run, action="held.list")
    for name, helptext in (
        ("show", "the content that would be sent"),
        ("release", "send it, sealed and signed"),
        ("refuse", "refuse it (不開示): the requester gets no data"),
    ):
        p = hs.add_parser(name, help=helptext)
        _common(p)
        p.add_argument("held_id", help="the held query's id (held list shows them)")
        p.set_defaults(func=_run, action=f"held.{name}")

    prov = sub.add_parser("provisions", help="provision records (情報提供等記録)")
    ps = prov.add_subparsers(dest="provisions_command", metavar="ACTION", required=True)
    p = ps.add_parser(
        "list", help="--json: every store of the working directory, read directly; "
        "else the intermediate server's records through the admin port, newest first")
    _common(p)
    p.add_argument("--json", action="store_true",
                   help="list every kind from every store of the working directory (one JSON "
                   "object per record, subjects pseudonymised); no daemon or operator needed")
    p.add_argument("--kind", choices=KINDS, help="with --json: only this kind")
    p.add_argument("--node", metavar="NAME",
                   help="with --json: only the store of this node ('registry' for the "
                   "intermediate server's)")
    p.add_argument("--person", metavar="ATENA_NO", help="only records about this person")
    p.add_argument("--since", metavar="ISO-DATE", help="only records at or after this date")
    p.set_defaults(func=_provisions, action="provisions.list")

    fuku = sub.add_parser("fukuhon", help="副本 import (format-checked) and export")
    us = fuku.add_subparsers(dest="fukuhon_command", metavar="ACTION", required=True)
    p = us.add_parser("import", help="import fixed-length 副本 records from FILE")
    _common(p)
    p.add_argument("file", type=Path, help="the 副本 records to import")
    p.set_defaults(func=_run, action="fukuhon.import")
    p = us.add_parser("export", help="write every 副本 record to FILE, flagged people left out")
    _common(p)
    p.add_argument("file", type=Path, help="where to write them (readable by this account only)")
    p.add_argument("--include-flagged", metavar="REQUEST_ID", dest="request_id",
                   help="include flagged people (reviewer), with your export request confirmed "
                   "by a second operator (request-export, confirm-export)")
    p.set_defaults(func=_run, action="fukuhon.export")
    p = us.add_parser("request-export",
                      help="ask to export flagged people too (reviewer); prints REQUEST_ID")
    _common(p)
    p.set_defaults(func=_run, action="fukuhon.export-request")
    p = us.add_parser("confirm-export", help="confirm another reviewer's export request")
    _common(p)
    p.add_argument("request_id", help="the id request-export printed")
    p.set_defaults(func=_run, action="fukuhon.export-confirm")


def _provisions(args: argparse.Namespace) -> int:
    if not args.json:
        if args.kind or args.node:
            raise UsageError("--kind and --node go with --json")
        return _run(args)
    from juki_gateway.cli.storeopts import open_store, parse_datetime
    from juki_gateway.gateway.config import load_config
    from juki_gateway.gateway.jsonlog import Pseudonymizer, load_or_create_key
    from juki_gateway.registry_store.provisions import iter_provisions

    if args.person:
        raise UsageError("--person goes with the admin-port listing, not --json")
    try:
        since = parse_datetime(args.since) if args.since else None
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--since: {exc}") from None
    config = load_config(config_path_from(args))
    stores = {"registry": config.store.url,
              **{name: s.store_url for name, s in config.jukinet.items()}}
    if args.node is not None and args.node not in stores:
        raise UsageError(f"no store for node {args.node!r}: one of {', '.join(sorted(stores))}")
    masker = Pseudonymizer(load_or_create_key(config.pki_dir))
    count = 0
    for node, url in stores.items():
        if args.node is not None and node != args.node:
            continue
        with open_store(argparse.Namespace(db=url, config=None)) as engine, \
                engine.connect() as conn:
            for row in iter_provisions(conn, kind=args.kind, since=since):
                subject = row["subject"]
                print(json.dumps({
                    "kind": row["kind"], "node": node, "provider": row["provider"],
                    "recipient": row["recipient"],
                    "subject": subject if subject == "-" else masker.pseudonym(subject),
                    "items": row["items"], "outcome": row["outcome"],
                    "operator": row["operator_id"], "terminal": row["terminal_id"],
                    "detail": row["detail"], "at": row["occurred_at"].isoformat() + "Z",
                }, ensure_ascii=False, sort_keys=True))
                count += 1
    print(f"{count} provision records" if count else "none", file=sys.stderr)
    return 0


def _client(args: argparse.Namespace) -> Any:
    from juki_gateway.cli.admin_client import AdminClient
    from juki_gateway.gateway.config import load_config

    config = load_config(config_path_from(args))
    ep = config.intermediate_endpoint()
    if ep is None:
        raise UsageError(f"{config.path} has no intermediate endpoint")
    if args.operator_cert is not None or args.operator_key is not None:
        if args.operator_cert is None or args.operator_key is None:
            raise UsageError("--operator-cert and --operator-key go together")
        name, cert, key = args.operator, args.operator_cert, args.operator_key
    else:
        name = operator_of(args)
        cert, key = config.pki_dir / f"{name}.pem", config.pki_dir / f"{name}.key"
        if not cert.exists() or not key.exists():
            have = sorted(p.stem for p in config.pki_dir.glob("op-*.pem"))
            raise UsageError(
                f"no operator certificate {cert}: say which operator with --operator ID (one of "
                f"{', '.join(have) or 'none'}) or ${OPERATOR_ENV}, or --operator-cert/--operator-key"
            )
    if config.admin.port == 0:
        raise UsageError(f"{config.path}: [admin] port is 0; the CLI needs a fixed admin port")
    return AdminClient(
        config.admin.host,
        config.admin.port,
        ca=config.ca,
        crl=config.crl,
        cert=cert,
        key=key,
        server_name=ep.name,
        operator=name or cert.stem,
        timestamp=lambda: dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S"),
    )


def _run(args: argparse.Namespace) -> int:
    action: str = args.action
    call: dict[str, Any] = {}
    for name in ("atena_no", "flag_id", "held_id", "person", "since", "request_id"):
        if getattr(args, name, None):
            call[name] = getattr(args, name)
    if getattr(args, "all", False):
        call["all"] = True
    if action == "flags.request-set":
        call.update(scopes=args.scope, reason_code=args.reason, review_date=args.review,
                    accompanying=args.accompanying)
    if action == "fukuhon.export" and args.request_id:
        call["include_flagged"] = True
    if action == "fukuhon.import":
        try:
            call["data"] = base64.b64encode(args.file.read_bytes()).decode("ascii")
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    result = _client(args).call(action, call)
    if action == "fukuhon.export":
        data = base64.b64decode(result["data"])
        write_private(args.file, data)  # 副本 of residents: this account only
        left_out = result["flagged_left_out"]
        print(f"exported {result['records']} records ({len(data)} bytes) to {args.file}"
              + (f"; {left_out} flagged people left out" if left_out else ""))
        return 0
    if isinstance(result, dict) and result.get("warning"):
        print(f"warning: {result['warning']}", file=sys.stderr)
    if isinstance(result, list):
        for row in result:
            print(json.dumps(row, ensure_ascii=False, sort_keys=True))
        if not result:  # stdout stays JSON lines (none of them), for scripts
            print("none", file=sys.stderr)
        if action == "fukuhon.import":
            bad = [r for r in result if r["result_code"]]
            print(f"imported {len(result) - len(bad)} of {len(result)} records", file=sys.stderr)
            return 1 if bad else 0
        return 0
    if isinstance(result, dict):
        print(json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True))
    else:
        print(result)
    return 0
