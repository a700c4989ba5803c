"""A Juki-net node's store access: its engine, its two threads, and what it reads at start-up.

The store runs on ONE writer thread, so batches commit in the order they were submitted (the
sequencers rely on it); reads for the consistency check run on a second, read-only thread.
:meth:`NodeStore.open` creates the engine, migrates the schema, and reads back what the node
resumes from: each link's unacknowledged outbox, each sender's last applied 更新順番号 and (at
a CS) the 住民票コード pool. Every write of the node then goes through :attr:`committer` (group
commit, at most ``commit_records`` records per transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from juki_gateway.errors import JukiError
from juki_gateway.protocols.jukinet.sequencing import OutRecord
from juki_gateway.registry_store import jukinet as st
from juki_gateway.registry_store.asyncstore import AsyncStore, GroupCommitter

if TYPE_CHECKING:
    from juki_gateway.gateway.jukinet.node import NodeConfig



class SharedStoreUnsupported(JukiError):
    """Several instances can share only a PostgreSQL store (SQLite has one writer per file)."""

    code = "shared_store_unsupported"


@dataclass(frozen=True)
class Resume:
    """What a node resumes from: per link (by peer) the last acknowledged number and the unacked
    records, per sender the last applied number, and the CS's unused 住民票コード."""

    outboxes: Mapping[str, tuple[int, list[OutRecord]]]
    applied: Mapping[str, int]
    pool: list[str]


class NodeStore:
    """The store of one node (see the module docstring)."""

    def __init__(self, cfg: NodeConfig, reactor: Any) -> None:
        self.cfg = cfg
        self.reactor = reactor
        self.engine: Any = None
        self.store: AsyncStore | None = None
        self.committer: GroupCommitter | None = None
        self._writer: ThreadPool | None = None
        self._reader: ThreadPool | None = None

    def open(self, links: Mapping[str, str], *, with_pool: bool) -> Deferred[Resume]:
        """Start the threads, open and migrate the store, read what the node resumes from
        (``links``: peer → link name); fires once the committer is ready."""
        self._writer = ThreadPool(1, 1, name=f"{self.cfg.node_id}-store")
        self._reader = ThreadPool(1, 1, name=f"{self.cfg.node_id}-reader")
        self._writer.start()
        self._reader.start()
        d = deferToThreadPool(self.reactor, self._writer, self._open, links, with_pool)
        return d.addCallback(self._ready)

    def _open(self, links: Mapping[str, str], with_pool: bool) -> Resume:
        from juki_gateway.registry_store import migrate
        from juki_gateway.registry_store.engine import create_store_engine

        cfg = self.cfg
        if cfg.store_url.startswith("sqlite"):
            self.engine = create_store_engine(
                cfg.store_url, checkpoint=cfg.sqlite_checkpoint)  # type: ignore[arg-type]
        else:
            self.engine = create_store_engine(cfg.store_url)
        if cfg.shared_store and self.engine.dialect.name != "postgresql":
            raise SharedStoreUnsupported(
                f"{cfg.node_id}: shared_store needs PostgreSQL, not {self.engine.dialect.name}")
        migrate.upgrade(cfg.store_url, engine=self.engine)  # one at a time per process
        with self.engine.begin() as conn:
            outboxes = {peer: st.load_outbox(conn, name) for peer, name in links.items()}
            applied = st.applied_heads(conn, cfg.node_id)
            pool = st.pool_codes(conn) if with_pool else []
        return Resume(outboxes, applied, pool)

    def _ready(self, resume: Resume) -> Resume:
        assert self._writer is not None
        self.store = AsyncStore(self.engine, self.reactor, self._writer)
        self.committer = GroupCommitter(self.store, self.reactor, max_batch=64,
                                        max_delay=self.cfg.commit_delay,
                                        max_weight=self.cfg.commit_records)
        return resume

    def read(self, fn: Callable[[], Any]) -> Deferred[Any]:
        """Run a blocking read on the reader thread."""
        assert self._reader is not None
        return deferToThreadPool(self.reactor, self._reader, fn)

    def flush(self) -> Deferred[None] | None:
        """Commit what is queued (None when the store never opened)."""
        return self.committer.flush() if self.committer is not None else None

    def stop(self) -> None:
        """Stop the threads (after :meth:`flush`) and close the engine."""
        for pool in (self._writer, self._reader):
            if pool is not None:
                pool.stop()
        if self.engine is not None:
            self.engine.dispose()
