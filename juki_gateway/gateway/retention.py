"""The daemon's retention jobs: one per store it holds, scheduled in JST (R9, R5, R6).

:class:`RetentionHost` is a child of the daemon's service tree
(:class:`~juki_gateway.gateway.service.GatewayService`) holding one
:class:`RetentionService` per store:

* ``registry``: the ``[store] url`` store. It runs on the intermediate server's store thread when
  the daemon hosts the intermediate server (the thread every call of the server runs on);
  otherwise on a store thread of its own, on a store that must exist and be migrated already
  (a daemon that does not host the intermediate server never creates or migrates it);
* one per hosted Juki-net node, named by its endpoint: on the node's writer thread, between its
  group commits.

The jobs begin once the daemon has started (:meth:`RetentionHost.begin`, called when every store
is open and every listener bound); each runs at once if a run is due, then daily at
``[retention] hour`` JST. Every run is audited with the anchor key (``pki/audit-anchor.key``)
in the store it purged, and reported on the daemon's ``/metrics``:
``juki_gateway_retention_last_run_timestamp_seconds{store}`` and
``juki_gateway_retention_purged_rows_total{store,table}`` (labels: store and table names only).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Connection, Engine
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from juki_gateway.errors import JukiError
from juki_gateway.gateway.config import GatewayConfig
from juki_gateway.gateway.intermediate.host import IntermediateHost
from juki_gateway.gateway.intermediate.worker import StoreThread
from juki_gateway.gateway.jukinet.hosting import JukinetHost
from juki_gateway.gateway.jukinet.node import JukinetNode
from juki_gateway.registry_store.anchor import KEY_NAME, AuditKey, load_key
from juki_gateway.registry_store.retention import DEFAULT_POLICY, RetentionPolicy
from juki_gateway.registry_store.retention_schedule import (
    RetentionPass,
    next_slot,
    retention_pass,
    seconds_until,
)

log = Logger(namespace="juki_gateway.retention")
T = TypeVar("T")
REGISTRY = "registry"
PREFIX = "juki_gateway_retention"
_EPOCH = dt.datetime(1970, 1, 1)
#: A failed run is tried again this much later (or at the next slot, if that comes first).
RETRY_SECONDS = 3600.0
#: Runs ``work(conn)`` in one transaction on the store's thread; fires after COMMIT.
Transact = Callable[[Callable[[Connection], Any]], Deferred[Any]]


class RetentionMetrics:
    """The retention metrics, in the registry passed in (the daemon's)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry()
        self.last_run = Gauge(
            f"{PREFIX}_last_run_timestamp_seconds",
            "When the store's retention last ran (Unix time; from its audit log at start-up)",
            ["store"], registry=r)
        self.purged = Counter(
            f"{PREFIX}_purged_rows", "Rows purged by retention since start-up, by store and table",
            ["store", "table"], registry=r)

    def observe(self, result: RetentionPass) -> None:
        """Record one pass of a store's job."""
        last = result.last_run
        if last is not None:
            self.last_run.labels(result.store).set((last - _EPOCH).total_seconds())
        if result.report is not None:
            for table, n in result.report.counts.items():
                self.purged.labels(result.store, table).inc(n)


class RetentionService(Service):
    """The retention job of one store: when runs are due is
    :mod:`juki_gateway.registry_store.retention_schedule`'s to say; this is its timer.

    :meth:`begin` starts it once the store is open: a check at once (the start-up run, if one
    is due), then one at every ``hour``:00 JST. ``observe`` hears every pass (metrics); a failed
    pass is logged and tried again an hour later (or at the next slot, if sooner): whether a
    run is due is decided anew each time, so a retry never runs twice what ran.
    """

    def __init__(
        self,
        store: str,
        transact: Transact,
        clock: IReactorTime,
        *,
        hour: int = 3,
        policy: RetentionPolicy = DEFAULT_POLICY,
        key: AuditKey | None = None,
        observe: Callable[[RetentionPass], None] | None = None,
    ) -> None:
        if not 0 <= hour <= 23:
            raise ValueError(f"hour must be 0-23, not {hour}")
        self.store = store
        self._transact = transact
        self._clock = clock
        self.hour = hour
        self.policy = policy
        self.key = key
        self._observe = observe
        self._timer: IDelayedCall | None = None
        self._running: Deferred[Any] | None = None
        self.passes: list[RetentionPass] = []

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock.seconds(), dt.UTC).replace(tzinfo=None)

    def begin(self) -> None:
        """The store is open: check now, then at every slot."""
        if self.running and self._running is None and self._timer is None:
            self._check(self._now())

    def _check(self, slot: dt.datetime) -> None:
        self._timer = None
        # a timer may fire a hair before its slot (float seconds): never decide before it
        now = max(self._now(), slot)
        hour, policy, key, store = self.hour, self.policy, self.key, self.store
        d = maybeDeferred(self._transact, lambda conn: retention_pass(
            conn, store, now, hour=hour, policy=policy, key=key))
        self._running = d
        d.addCallbacks(self._passed, self._failed)
        d.addCallback(self._schedule)

    def _passed(self, result: RetentionPass) -> None:
        self.passes.append(result)
        if result.report is not None:
            counts = ", ".join(f"{k} {v}" for k, v in result.report.counts.items())
            log.info("retention {store}: {scope} run as of {as_of}: purged {counts}", event="retention_run",
                     store=self.store, scope=result.scope,
                     as_of=result.report.as_of.isoformat(), counts=counts)
        if self._observe is not None:
            self._observe(result)

    def _failed(self, failure: Failure) -> bool:
        # the error's class and code only: a driver's message may quote the statement's values
        exc = failure.value
        kind = exc.code if isinstance(exc, JukiError) else type(exc).__name__
        log.error("retention {store}: run failed ({kind}); tried again within the hour", event="retention_failed",
                  store=self.store, kind=kind)
        return True

    def _schedule(self, failed: bool | None) -> None:
        self._running = None
        if not self.running:
            return
        now = self._now()
        slot = next_slot(now, self.hour)
        wait = seconds_until(now, slot)
        if failed and wait > RETRY_SECONDS:
            wait, slot = RETRY_SECONDS, now + dt.timedelta(seconds=RETRY_SECONDS)
        self._timer = self._clock.callLater(wait, self._check, slot)

    def stopService(self) -> Deferred[None]:
        """Cancel the next check; fires once a run in progress has finished."""
        super().stopService()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        running = self._running
        if running is None:
            return succeed(None)
        done: Deferred[None] = Deferred()
        running.addBoth(lambda _: done.callback(None))
        return done


def _in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return work(conn)


class OwnRegistryStore:
    """The registry store of a daemon that does not host the intermediate server: a thread of
    its own, and an engine opened on it at the first run once the store exists and is at the
    current schema (else that run fails, saying so, and the next slot tries again)."""

    def __init__(self, url: str, reactor: Any) -> None:
        self.url = url
        self._thread = StoreThread(reactor, "registry-retention")
        self._engine: Engine | None = None
        self._started = False

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()
        self._started = True

    def transact(self, work: Callable[[Connection], T]) -> Deferred[T]:
        """Run ``work(conn)`` in one transaction on the thread."""
        return self._thread.run(lambda: _in_transaction(self._open(), work))

    def _open(self) -> Engine:
        if self._engine is None:
            from juki_gateway.registry_store.engine import (
                StoreUnavailable,
                create_store_engine,
                sqlite_path,
            )
            from juki_gateway.registry_store.migrate import current_revision, head_revision

            path = sqlite_path(self.url)
            if path is not None and not path.exists():
                raise StoreUnavailable(f"no registry store at {path}")
            engine = create_store_engine(self.url, pool_size=1, checkpoint="autocheckpoint")
            if current_revision(engine) != head_revision():
                engine.dispose()
                raise StoreUnavailable("the registry store is not at the current schema "
                                       "(run 'juki-gateway store migrate')")
            self._engine = engine
        return self._engine

    def stop(self) -> Deferred[None]:
        """Close the engine on the thread, then stop the thread."""
        if not self._started:  # start-up failed before
            return succeed(None)
        self._started = False

        def close() -> None:
            if self._engine is not None:
                self._engine.dispose()

        d = self._thread.run(close)
        d.addBoth(lambda _: self._thread.stop())
        return d


class RetentionHost(MultiService):
    """The retention jobs of one daemon (see the module docstring); no I/O until started."""

    name = "retention"

    def __init__(self, config: GatewayConfig, reactor: Any, registry: CollectorRegistry,
                 intermediate: IntermediateHost, jukinet: JukinetHost) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.metrics = RetentionMetrics(registry)
        self.jobs: dict[str, RetentionService] = {}
        self._own: OwnRegistryStore | None = None
        settings = config.retention
        if not settings.enabled:
            return
        if intermediate.endpoint is not None:
            self._add(REGISTRY, _intermediate_transact(intermediate))
        else:
            self._own = OwnRegistryStore(config.store.url, reactor)
            self._add(REGISTRY, self._own.transact)
        for name, node in jukinet.nodes.items():
            self._add(name, _node_transact(node))

    def _add(self, store: str, transact: Transact) -> None:
        s = self.config.retention
        job = RetentionService(store, transact, self.reactor, hour=s.hour, policy=s.policy,
                               observe=self.metrics.observe)
        job.setName(f"retention:{store}")
        job.setServiceParent(self)
        self.jobs[store] = job

    def startService(self) -> None:
        """Load the anchor key (start-up file I/O; a key others can read is refused), start the
        own store thread if there is one; the jobs wait for :meth:`begin`."""
        path = self.config.pki_dir / KEY_NAME
        key: AuditKey | None = None
        if self.jobs:
            if path.exists():
                key = load_key(path)
            else:
                log.warn("no audit anchor key at {path}: retention runs are audited unanchored", event="audit_anchor_missing",
                         path=str(path))
        for job in self.jobs.values():
            job.key = key
        if self._own is not None:
            self._own.start()
        super().startService()

    def begin(self) -> None:
        """Every store is open: each job checks whether a run is due, then waits for its hour."""
        for job in self.jobs.values():
            job.begin()

    def stopService(self) -> Deferred[Any]:
        """Stop the jobs (a run in progress finishes), then the own store thread."""
        d: Deferred[Any] = super().stopService() or succeed(None)
        own = self._own
        if own is not None:
            d.addBoth(lambda _: own.stop())
        return d


def _intermediate_transact(host: IntermediateHost) -> Transact:
    """Runs on the intermediate server's store thread, with its engine."""
    def transact(work: Callable[[Connection], Any]) -> Deferred[Any]:
        return host.run(lambda: _in_transaction(host.service.engine, work))

    return transact


def _node_transact(node: JukinetNode) -> Transact:
    """Runs on the node's writer thread (between its group commits), one transaction."""
    def transact(work: Callable[[Connection], Any]) -> Deferred[Any]:
        store = node.storage.store
        if store is None:
            raise RuntimeError(f"{node.node_id}: the store is not open")
        return store.transact(work)

    return transact
