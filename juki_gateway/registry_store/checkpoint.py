"""Background WAL checkpointer for SQLite stores: keeps checkpoints off the commit path.

With SQLite's default ``wal_autocheckpoint`` the connection that commits runs the checkpoint
itself, right after its COMMIT and before the call returns: every group-commit batch then pays
for copying its pages from the WAL into the database file (random writes and an fsync of the
database) on top of its own WAL write and fsync, and the acks of the batch wait for both.

:func:`~juki_gateway.registry_store.engine.create_store_engine` therefore switches the automatic
checkpoint off on every connection (``wal_autocheckpoint=0``) and gives each SQLite file engine a
:class:`WalCheckpointer`: its own thread and its own connection, woken after every commit, that

* runs a ``PASSIVE`` checkpoint when it wakes and at least ``passive_frames`` committed frames
  are not yet copied (read from the WAL-index header in the ``-shm`` file, see
  :func:`pending_frames`; SQLite's own default is 1000), so that a stream of small commits does
  not pay a checkpoint (two fsyncs) each. It never waits for a lock and never blocks a writer:
  it copies every frame committed so far, and once all are copied the next writer
  restarts the WAL from its beginning (the file, cut back to ``journal_size_limit``, stops
  growing). Commits that arrive while it copies are taken by the next round, so under a steady
  stream of group-commit batches each checkpoint overlaps the next batch's work;
* runs a ``RESTART`` checkpoint when the WAL holds more than ``restart_bytes``. Under a steady
  stream of batches PASSIVE checkpoints never let the WAL restart: the next batch has begun
  (and holds a snapshot in the WAL) before the checkpoint of the previous one ends. So the
  checkpointer closes a gate that writers of the same engine pass before ``BEGIN`` (see
  :meth:`WalCheckpointer.writer_gate`), waits for the transaction in progress, copies what is
  left and resets the WAL; the next writer starts at the beginning of the file again. The file
  is kept at up to ``journal_size_limit`` (= ``restart_bytes``) so that its blocks are reused;
* runs a final ``TRUNCATE`` checkpoint (the file is cut to zero) when stopped (``engine.dispose()`` or garbage collection
  of the engine), so a cleanly closed store leaves no WAL behind.

Durability does not depend on it: a commit is durable once its WAL frames are fsynced
(``synchronous=FULL``); the checkpoint only moves committed pages into the main file. A crash
with a long WAL costs recovery time at the next open, never data.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import threading
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_PASSIVE_FRAMES = 1000
DEFAULT_RESTART_BYTES = 256 * 1024 * 1024
GATE_TIMEOUT_SECONDS = 30.0  # a writer never waits longer than this for a RESTART
IDLE_POLL_SECONDS = 1.0


# The WAL-index header at the start of the -shm file (SQLite file format, "WAL-Index Format"):
# two copies of a 48-byte header whose mxFrame (last valid frame) is the u32 at offset 16, then
# the checkpoint info whose nBackfill (frames already copied) is the u32 at offset 96; both in
# native byte order.
_MX_FRAME = struct.Struct("=I")
_SHM_HEADER_BYTES = 100


def pending_frames(shm_path: Path) -> int | None:
    """Frames committed to the WAL but not yet copied into the database file, read without
    locks from the ``-shm`` file (a hint: may be a little stale); None if it cannot be read."""
    try:
        with open(shm_path, "rb") as f:
            head = f.read(_SHM_HEADER_BYTES)
    except OSError:
        return None
    if len(head) < _SHM_HEADER_BYTES:
        return None
    (mx_frame,) = _MX_FRAME.unpack_from(head, 16)
    (backfilled,) = _MX_FRAME.unpack_from(head, 96)
    return max(0, int(mx_frame) - int(backfilled))


class WalCheckpointer:
    """A thread that checkpoints one SQLite file's WAL in the background (see module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        passive_frames: int = DEFAULT_PASSIVE_FRAMES,
        restart_bytes: int = DEFAULT_RESTART_BYTES,
        busy_timeout_ms: int = 10_000,
    ) -> None:
        if restart_bytes <= 0:
            raise ValueError("restart_bytes must be positive")
        self.path = path
        self.wal_path = Path(f"{path}-wal")
        self.restart_bytes = restart_bytes
        self.passive_frames = passive_frames
        self.shm_path = Path(f"{path}-shm")
        self._gate = threading.Event()
        self._gate.set()
        self._busy_timeout_ms = busy_timeout_ms
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.passive_runs = 0
        self.restart_runs = 0
        self.truncate_runs = 0
        self.errors = 0
        self.max_wal_seen = 0
        self._page_bytes = 0

    def start(self) -> None:
        """Start the thread unless it runs (a checkpointer stopped by :meth:`stop` restarts)."""
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(
                target=self._run, name=f"wal-checkpoint:{self.path.name}", daemon=True)
            self._thread.start()

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def notify(self) -> None:
        """Something was committed: look at the WAL soon (cheap; called after every commit)."""
        self._wake.set()

    def request_stop(self) -> None:
        """Ask the thread to finish (final checkpoint) without waiting for it."""
        self._stopping = True
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after a final TRUNCATE checkpoint and wait for it; :meth:`start`
        may start it again (an engine stays usable after ``dispose()``)."""
        self.request_stop()
        thread = self._thread
        if thread is None:
            with self._lock:
                self._stopping = False
            return
        if thread is threading.current_thread():
            return
        thread.join(timeout)
        with self._lock:
            if not thread.is_alive():
                self._thread = None
                self._stopping = False

    def writer_gate(self) -> None:
        """Called by a writer before BEGIN: waits (bounded) while a RESTART checkpoint runs."""
        if not self._gate.is_set():
            self._gate.wait(GATE_TIMEOUT_SECONDS)

    def wal_size(self) -> int:
        """The WAL file's size in bytes (0 when there is none)."""
        try:
            return os.stat(self.wal_path).st_size
        except FileNotFoundError:
            return 0

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            while not self._stopping:
                self._wake.wait(IDLE_POLL_SECONDS)
                self._wake.clear()
                if self._stopping:
                    break
                self._checkpoint_if_due(conn)
            self._checkpoint(conn, "TRUNCATE")
        except Exception:
            self._gate.set()
            self.errors += 1
            log.exception("WAL checkpointer of %s stopped on an error", self.path)
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint_if_due(self, conn: sqlite3.Connection) -> None:
        self.max_wal_seen = max(self.max_wal_seen, self.wal_size())
        pending = pending_frames(self.shm_path)
        if pending is not None and pending < self.passive_frames:
            return
        _busy, log_frames, _done = self._checkpoint(conn, "PASSIVE")
        if log_frames * self._page_size(conn) > self.restart_bytes:
            self._gate.clear()
            try:
                self._checkpoint(conn, "RESTART")
            finally:
                self._gate.set()

    def _page_size(self, conn: sqlite3.Connection) -> int:
        if not self._page_bytes:
            self._page_bytes = int(conn.execute("PRAGMA page_size").fetchone()[0])
        return self._page_bytes

    def _checkpoint(self, conn: sqlite3.Connection, mode: str) -> tuple[int, int, int]:
        try:
            row = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.OperationalError as exc:  # locked beyond the busy timeout: try later
            self.errors += 1
            log.warning("WAL %s checkpoint of %s failed: %s", mode, self.path, exc)
            return (1, -1, -1)
        if mode == "PASSIVE":
            self.passive_runs += 1
        elif mode == "RESTART":
            self.restart_runs += 1
        else:
            self.truncate_runs += 1
        return (int(row[0]), int(row[1]), int(row[2]))
