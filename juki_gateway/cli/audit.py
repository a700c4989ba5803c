"""``juki-gateway audit verify|anchor|list``: check the hash chain and its anchor (R6), anchor
the head with the key kept outside the database, and print audit entries."""

from __future__ import annotations

import argparse
from typing import Any

from juki_gateway.cli.storeopts import (
    add_operator_option,
    add_store_arguments,
    anchor_paths,
    open_store,
    operator_of,
    parse_datetime,
    utc_now,
)
from juki_gateway.errors import JukiError
from juki_gateway.registry_store.anchor import (
    append_checkpoint,
    install_key,
    load_key,
    read_checkpoints,
    retired_keys,
    stage_key,
)
from juki_gateway.registry_store.audit import (
    anchor_head,
    append_audit,
    head_state,
    list_audit,
    verify_chain,
)


class AnchorRefused(JukiError):
    """``audit anchor`` will not re-anchor a head whose MAC shows it was rewritten."""

    code = "audit_anchor_refused"
    wire_code = 9132


def register(subparsers: Any) -> None:
    """Add ``audit`` and its sub-commands."""
    audit = subparsers.add_parser("audit", help="tamper-evident audit log")
    sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = sub.add_parser(
        "verify", help="walk the hash chain, check the head against the anchor key and the "
        "checkpoints; exit 1 at the first problem, else record a checkpoint")
    add_store_arguments(verify)
    verify.add_argument("--no-checkpoint", action="store_true",
                        help="do not append this verified head to the checkpoint file")
    verify.set_defaults(func=_verify)

    anchor = sub.add_parser(
        "anchor", help="anchor the head with the key (an upgraded store, or after --new-key); "
        "the chain must verify first")
    add_store_arguments(anchor)
    anchor.add_argument("--new-key", action="store_true",
                        help="create the key (or retire the current one and create a new one)")
    add_operator_option(anchor)
    anchor.set_defaults(func=_anchor)

    lst = sub.add_parser("list", help="print entries (tab-separated, chain order)")
    add_store_arguments(lst)
    lst.add_argument("--since", type=parse_datetime, metavar="DATE[THH:MM]",
                     help="entries at or after this time (UTC)")
    lst.add_argument("--operator", metavar="ID", help="only this operator's entries")
    lst.add_argument("--subject", metavar="ID", help="only entries about this subject")
    lst.set_defaults(func=_list)


def _verify(args: argparse.Namespace) -> int:
    key_path, cp_path = anchor_paths(args)
    with open_store(args) as engine, engine.begin() as conn:
        keys = [load_key(key_path), *retired_keys(key_path)]
        checkpoints = read_checkpoints(cp_path, keys)
        result = verify_chain(conn, keys=keys, checkpoints=checkpoints)
        found = head_state(conn)
    if not result.ok:
        print(f"audit chain BROKEN ({result.problem}) at entry {result.entry_id}: "
              f"{result.message}")
        print(f"{result.checked} entries before it verified")
        return 1
    print(f"audit chain ok: {result.checked} entries verified, head anchored with key "
          f"{keys[0].key_id}, {len(checkpoints)} checkpoints consistent")
    if found is not None and found[1] is not None and not args.no_checkpoint:
        append_checkpoint(cp_path, found[0], found[1], utc_now())
    return 0


def _anchor(args: argparse.Namespace) -> int:
    key_path, cp_path = anchor_paths(args)
    current = load_key(key_path) if key_path.exists() else None
    if not args.new_key and current is None:
        load_key(key_path)  # raises the one-line "no key: use --new-key" error
    staged = None
    if args.new_key:  # written beside the key first; in use only once the head is anchored
        new, staged = stage_key(key_path)
    else:
        assert current is not None
        new = current
    try:
        with open_store(args) as engine, engine.begin() as conn:
            walked = verify_chain(conn)  # the links only: the head's MAC is what is being set
            if not walked.ok:
                print(f"audit chain BROKEN ({walked.problem}) at entry {walked.entry_id}: "
                      f"{walked.message}: not anchored")
                raise _NotAnchored
            found = head_state(conn)
            if found is not None and found[1] is not None and (
                current is None or not current.check(found[0], found[1])
            ):
                raise AnchorRefused(
                    "the head carries a MAC that the current key does not verify: it may have "
                    "been rewritten; find out why before anchoring it again (docs/security.md)")
            rec = None
            if found is not None:
                anchor_head(conn, new)
                rec = append_audit(conn, now=utc_now(), operator_id=operator_of(args),
                                   terminal_id="cli", subject="audit", action="audit.anchor",
                                   detail={"key_id": new.key_id, "previous_key_id":
                                           current.key_id if current else None}, key=new)
            state = head_state(conn)
    except _NotAnchored:
        if staged is not None:
            staged.unlink(missing_ok=True)
        return 1
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    if staged is not None:
        install_key(key_path, staged)
    if rec is None or state is None or state[1] is None:
        print(f"audit chain empty; key {new.key_id} will anchor its first entry")
        return 0
    append_checkpoint(cp_path, state[0], state[1], utc_now())
    print(f"audit chain anchored with key {new.key_id} at entry {rec.id} "
          f"({walked.checked + 1} entries)")
    return 0


class _NotAnchored(Exception):
    """The chain's links do not verify: nothing is anchored (rolled back)."""


def _list(args: argparse.Namespace) -> int:
    with open_store(args) as engine, engine.begin() as conn:
        listed = 0
        for rec in list_audit(conn, since=args.since, operator_id=args.operator,
                              subject=args.subject):
            listed += 1
            print("\t".join([str(rec.id), rec.occurred_at.isoformat(timespec="seconds") + "Z",
                             rec.operator_id, rec.terminal_id, rec.subject, rec.action,
                             rec.detail]))
    if not listed:
        print("none")
    return 0
