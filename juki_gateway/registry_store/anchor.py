"""The audit chain's anchor outside the database: an HMAC key and signed checkpoints (R6).

The hash chain of :mod:`.audit` shows any change *inside* the chain, but its single
``audit_chain_head`` row is just a row: someone who can write the database could rewrite it to
cut the newest entries, or append an entry of their own and move the head past it. The anchor
closes that (docs/security.md, "Audit anchor"):

* **The key** is 32 random bytes, hex-encoded in ``pki/audit-anchor.key`` (mode 0600, refused
  when the group or others can read it), outside the database. Every writer of the chain holds
  it; ``audit_chain_head.head_mac`` is ``key_id:HMAC-SHA256(key, head)`` over the head's anchor
  hash, newest entry id and hash, and entry count (:func:`head_message`). Without the key the
  head cannot be moved to a state of one's choosing.
* **Checkpoints** are the head state and its MAC appended as one JSON line to
  ``pki/audit-checkpoints.jsonl`` by every successful ``audit verify`` (and ``audit anchor``).
  A database rolled back to an older head (an old head row with its genuine MAC, replayed
  after deleting the newest entries) is caught by the checkpoints written since.

A retired key (``audit anchor --new-key``) is kept as ``audit-anchor.key.retired-<key_id>`` so
that older checkpoints still verify. Blocking file I/O: CLI and start-up only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from juki_gateway.errors import JukiError

KEY_NAME = "audit-anchor.key"
CHECKPOINTS_NAME = "audit-checkpoints.jsonl"
KEY_BYTES = 32
_MAC_DOMAIN = b"JKGW audit head v1\x00"
_ID_DOMAIN = b"JKGW audit key id v1\x00"


class AnchorKeyError(JukiError):
    """The audit anchor key is missing, malformed or readable by others."""

    code = "audit_key_unusable"
    wire_code = 9130


@dataclass(frozen=True, slots=True)
class HeadState:
    """What the anchor MAC covers: the chain's anchor, its newest entry and its length."""

    anchor_hash: str
    last_id: int
    last_hash: str
    entry_count: int


def head_message(head: HeadState) -> bytes:
    """The bytes MACed for a head: a domain tag, then the four fields NUL-separated (ASCII)."""
    return _MAC_DOMAIN + "\x00".join(
        (head.anchor_hash, str(head.last_id), head.last_hash, str(head.entry_count))
    ).encode("ascii")


@dataclass(frozen=True, slots=True)
class AuditKey:
    """An anchor key; ``key_id`` names it in MACs without revealing it."""

    secret: bytes

    @property
    def key_id(self) -> str:
        """The first 16 hex digits of SHA-256(domain ‖ key)."""
        return hashlib.sha256(_ID_DOMAIN + self.secret).hexdigest()[:16]

    def mac(self, head: HeadState) -> str:
        """``key_id:hex(HMAC-SHA256(key, head_message(head)))``."""
        return f"{self.key_id}:{hmac.new(self.secret, head_message(head), 'sha256').hexdigest()}"

    def check(self, head: HeadState, mac: str) -> bool:
        """Whether ``mac`` is this key's MAC of ``head`` (constant-time compare)."""
        return hmac.compare_digest(self.mac(head), mac)

    @staticmethod
    def generate() -> AuditKey:
        """A fresh random key."""
        return AuditKey(os.urandom(KEY_BYTES))


def mac_key_id(mac: str | None) -> str | None:
    """The key id a stored MAC names (None for none)."""
    return mac.split(":", 1)[0] if mac else None


def load_key(path: Path) -> AuditKey:
    """Read a key file; refuse one the group or others can read, or one that is not 64 hex."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AnchorKeyError(
            f"no audit anchor key at {path}: run 'juki-gateway audit anchor --new-key' "
            "(or 'juki-gateway init') to create one"
        ) from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise AnchorKeyError(
            f"the audit anchor key {path} is readable by others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}): chmod 600 it"
        )
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != KEY_BYTES:
        raise AnchorKeyError(f"{path} is not an audit anchor key (64 hexadecimal digits)")
    return AuditKey(secret)


def write_key(path: Path, key: AuditKey) -> None:
    """Write ``key`` to a new file (0600); an existing file is never overwritten."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (key.secret.hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_key(path: Path) -> bool:
    """Create a key at ``path`` unless one exists; True when it was created."""
    if path.exists():
        return False
    write_key(path, AuditKey.generate())
    return True


def retired_keys(path: Path) -> list[AuditKey]:
    """The retired keys kept beside ``path`` (``<name>.retired-<key_id>``)."""
    return [load_key(p) for p in sorted(path.parent.glob(f"{path.name}.retired-*"))]


def stage_key(path: Path) -> tuple[AuditKey, Path]:
    """A new key written beside ``path`` as ``<name>.new`` (0600), not yet in use: the caller
    anchors the head with it, then :func:`install_key` (or deletes the staged file if that
    failed), so a failed anchoring never leaves the head MACed by a key that is not on disk."""
    staged = path.with_name(f"{path.name}.new")
    staged.unlink(missing_ok=True)
    key = AuditKey.generate()
    write_key(staged, key)
    return key, staged


def install_key(path: Path, staged: Path) -> AuditKey | None:
    """Make the staged key current: the key at ``path`` (if any) is kept as
    ``<name>.retired-<key_id>``; returns the retired key."""
    old = load_key(path) if path.exists() else None
    if old is not None:
        os.replace(path, path.with_name(f"{path.name}.retired-{old.key_id}"))
    os.replace(staged, path)
    return old


def rotate_key(path: Path) -> tuple[AuditKey | None, AuditKey]:
    """Retire the key at ``path`` (if any) and put a new one in its place; returns (old, new)."""
    new, staged = stage_key(path)
    return install_key(path, staged), new


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A head state seen at ``at``, with its MAC (one line of the checkpoint file)."""

    at: str
    head: HeadState
    mac: str
    line: int


def append_checkpoint(path: Path, head: HeadState, mac: str, now: dt.datetime) -> None:
    """Append one checkpoint line (0600, ``O_APPEND``: one write per line, safe with others)."""
    record = {"at": now.isoformat(timespec="seconds"), "anchor_hash": head.anchor_hash,
              "last_id": head.last_id, "last_hash": head.last_hash,
              "entry_count": head.entry_count, "mac": mac}
    data = (json.dumps(record, sort_keys=True) + "\n").encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointError(JukiError):
    """A checkpoint line is malformed or its MAC does not verify with any known key."""

    code = "audit_checkpoint_forged"
    wire_code = 9131


def read_checkpoints(path: Path, keys: Iterable[AuditKey]) -> list[Checkpoint]:
    """Every checkpoint of ``path`` (none when it does not exist), each MAC-checked.

    Raises :class:`CheckpointError` naming the first line that is not a checkpoint signed by
    one of ``keys`` (the current key and the retired ones).
    """
    by_id = {k.key_id: k for k in keys}
    if not path.exists():
        return []
    out: list[Checkpoint] = []
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                rec = json.loads(raw)
                head = HeadState(str(rec["anchor_hash"]), int(rec["last_id"]),
                                 str(rec["last_hash"]), int(rec["entry_count"]))
                mac = str(rec["mac"])
                at = str(rec["at"])
            except (ValueError, KeyError, TypeError):
                raise CheckpointError(f"{path} line {n} is not a checkpoint") from None
            key = by_id.get(mac_key_id(mac) or "")
            if key is None:
                raise CheckpointError(f"{path} line {n} is signed by unknown key "
                                      f"{mac_key_id(mac)!r}")
            if not key.check(head, mac):
                raise CheckpointError(f"{path} line {n} has a MAC that does not verify: "
                                      "the checkpoint was forged or changed")
            out.append(Checkpoint(at, head, mac, n))
    return out
