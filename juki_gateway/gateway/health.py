"""Operations view of the daemon: ``/health``, maintenance mode, and scrape-time link/outbox gauges.

``/health`` on the metrics listener answers

* **200** ``{"status": "ok", …}`` when the store is reachable and migrated, the CA and the CRL
  are loadable and current, every endpoint is listening and every outbound link is up (or on
  standby: a node on a shared store whose link another instance drives, check ``standby``);
* **500** ``{"status": "failing", "reasons": […]}`` naming each failing check otherwise;
* **503** ``{"status": "maintenance", …}`` while maintenance mode is on (``juki-gateway
  maintenance on``), whatever the checks say, so a load balancer drains the node.

Maintenance mode is a small JSON file in the working directory (so the CLI can switch it with no
admin connection, and it survives a restart). :class:`OpsCollector` adds gauges computed when
Prometheus scrapes: ``juki_gateway_link_up``, ``juki_gateway_outbox_pending``,
``juki_gateway_outbox_oldest_age_seconds`` (the registry store's outbox: the intermediate
server's deliveries; a series per delivery link, 0 when empty) and ``juki_gateway_maintenance``.
The hosted Juki-net nodes report their own outboxes (``juki_gateway_jukinet_outbox_depth`` and
``juki_gateway_jukinet_oldest_unacked_age_seconds`` per node and peer).

The store checks run on the reactor thread: they are one short indexed query against the
configured engine, bounded by the driver's connect timeout, and only run when scraped.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from twisted.web.resource import Resource
from twisted.web.server import Request

MAINTENANCE_FILE = "maintenance.json"


# -- maintenance mode -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorSwitch:
    """An operator's switch recorded in the working directory: when, why and by whom.

    Maintenance mode is one; a held Juki-net link (:mod:`~juki_gateway.gateway.linkcontrol`)
    is another.
    """

    since: str
    reason: str
    operator: str

    @classmethod
    def made(cls, now: dt.datetime, reason: str, operator: str) -> OperatorSwitch:
        """The switch made at ``now``."""
        return cls(since=now.strftime("%Y-%m-%dT%H:%M:%SZ"), reason=reason, operator=operator)

    @classmethod
    def from_json(cls, rec: object) -> OperatorSwitch:
        """The switch as read back from its JSON object (missing items tolerated)."""
        data = rec if isinstance(rec, dict) else {}
        return cls(since=str(data.get("since", "?")), reason=str(data.get("reason", "")),
                   operator=str(data.get("operator", "")))

    def to_json(self) -> dict[str, str]:
        """The JSON object written to the working directory."""
        return {"since": self.since, "reason": self.reason, "operator": self.operator}


#: Maintenance mode as recorded in the working directory.
Maintenance = OperatorSwitch


def write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
    tmp.replace(path)


def maintenance_path(workdir: Path) -> Path:
    """Where the maintenance flag of a working directory lives."""
    return workdir / MAINTENANCE_FILE


def read_maintenance(workdir: Path) -> Maintenance | None:
    """The current maintenance record, or None when the node is in service."""
    path = maintenance_path(workdir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return Maintenance(since="?", reason=f"unreadable {path.name}", operator="?")
    return OperatorSwitch.from_json(data)


def set_maintenance(workdir: Path, on: bool, *, now: dt.datetime, reason: str = "",
                    operator: str = "") -> Maintenance | None:
    """Switch maintenance mode on (writing who/why/when) or off; returns the new state."""
    path = maintenance_path(workdir)
    if not on:
        path.unlink(missing_ok=True)
        return None
    record = OperatorSwitch.made(now, reason, operator)
    write_json_atomic(path, record.to_json())
    return record


# -- checks -----------------------------------------------------------------------------------


def link_established(service: Any) -> bool:
    """Whether a reconnecting link service currently holds an established connection."""
    link_up = getattr(service, "link_up", None)
    if link_up is not None:  # a hosted Juki-net node's link (gateway/jukinet/hosting.py)
        return bool(link_up())
    got: list[Any] = []
    d = service.whenConnected()
    d.addCallbacks(got.append, lambda _f: None)
    if not got:
        d.cancel()
        return False
    return bool(getattr(got[0], "established", False))


def check_pki(ca: Path, crl: Path, now: dt.datetime) -> list[str]:
    """Reasons the CA certificate or the CRL is unusable at ``now`` (empty when fine)."""
    reasons: list[str] = []
    try:
        cert = x509.load_pem_x509_certificate(ca.read_bytes())
        if cert.not_valid_after_utc <= now:
            reasons.append(f"ca: certificate expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M}Z")
        elif cert.not_valid_before_utc > now:
            reasons.append("ca: certificate not yet valid")
    except (OSError, ValueError) as exc:
        reasons.append(f"ca: cannot load {ca}: {exc}")
    try:
        crl_obj = x509.load_pem_x509_crl(crl.read_bytes())
        nxt = crl_obj.next_update_utc
        if nxt is not None and nxt <= now:
            reasons.append(f"crl: stale since {nxt:%Y-%m-%d %H:%M}Z (next update passed)")
    except (OSError, ValueError) as exc:
        reasons.append(f"crl: cannot load {crl}: {exc}")
    return reasons


class StoreProbe:
    """Reads the store's schema revision and outbox state (engine made on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Any = None

    def _get_engine(self) -> Any:
        if self._engine is None:
            from juki_gateway.registry_store.engine import create_store_engine

            self._engine = create_store_engine(self.url, pool_size=1)
        return self._engine

    def check(self) -> list[str]:
        """Reasons the store is unusable (empty when reachable and at the head revision)."""
        from juki_gateway.registry_store.migrate import current_revision, head_revision

        engine = None
        try:
            from juki_gateway.registry_store.engine import sqlite_path

            path = sqlite_path(self.url)
            if path is not None and not path.exists():
                return [f"store: no database at {path} (run 'juki-gateway store migrate')"]
            engine = self._get_engine()
            current = current_revision(engine)
        except Exception as exc:  # any driver error is a health reason, never a crash
            from juki_gateway.registry_store.engine import describe_storage_error, storage_error

            described = describe_storage_error(storage_error(exc) or exc, secrets.token_hex(4))
            return [f"store: cannot connect: {described}"]
        head = head_revision()
        if current != head:
            return [f"store: schema at {current or 'none'}, expected {head} "
                    "(run 'juki-gateway store migrate')"]
        return []

    def outbox(self, now: dt.datetime) -> dict[str, tuple[int, float]]:
        """Per link: pending messages and the age in seconds of the oldest one."""
        from juki_gateway.registry_store.queues import pending_by_link

        if self.check():
            return {}
        out: dict[str, tuple[int, float]] = {}
        with self._get_engine().connect() as conn:
            for link, (count, oldest) in pending_by_link(conn).items():
                if oldest is not None and oldest.tzinfo is None:
                    oldest = oldest.replace(tzinfo=dt.UTC)
                age = (now - oldest).total_seconds() if oldest is not None else 0.0
                out[link] = (count, max(age, 0.0))
        return out

    def close(self) -> None:
        """Dispose of the engine."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The outcome of one health evaluation."""

    status: str  # ok | failing | maintenance
    http_code: int
    reasons: tuple[str, ...]
    checks: dict[str, str]
    maintenance: Maintenance | None

    def to_json(self) -> bytes:
        """The HTTP body."""
        body: dict[str, Any] = {"status": self.status, "reasons": list(self.reasons),
                                "checks": self.checks}
        if self.maintenance is not None:
            body["maintenance"] = {"since": self.maintenance.since,
                                   "reason": self.maintenance.reason,
                                   "operator": self.maintenance.operator}
        return (json.dumps(body, ensure_ascii=False) + "\n").encode()


class HealthChecker:
    """Evaluates the daemon's health from its service tree (see the module docstring)."""

    def __init__(self, service: Any, seconds: Callable[[], float], store: StoreProbe) -> None:
        self.service = service
        self.seconds = seconds
        self.store = store

    def now(self) -> dt.datetime:
        """The injected clock as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.seconds(), dt.UTC)

    def evaluate(self) -> HealthReport:
        """Run every check; the maintenance flag decides 503 before the checks do."""
        cfg = self.service.config
        checks: dict[str, str] = {}
        reasons: list[str] = []

        store = self.store.check()
        checks["store"] = "ok" if not store else "failing"
        reasons += store
        pki = check_pki(cfg.ca, cfg.crl, self.now())
        checks["pki"] = "ok" if not pki else "failing"
        reasons += pki
        for name, listener in self.service.listeners.items():
            up = listener.listening is not None
            checks[f"endpoint:{name}"] = "ok" if up else "failing"
            if not up:
                reasons.append(f"endpoint {name}: not listening")
        for name, node in getattr(getattr(self.service, "jukinet", None), "nodes", {}).items():
            up = node.committer is not None
            checks[f"jukinet:{name}"] = "ok" if up else "failing"
            if not up:
                reasons.append(f"jukinet {name}: store not open")
        for name, link in self.service.links.items():
            up = link_established(link)
            held = getattr(link, "held", False)
            if not up and not held and getattr(link, "standby", lambda: False)():
                checks[f"link:{name}"] = "standby"  # another instance drives it: healthy
                continue
            checks[f"link:{name}"] = "ok" if up else "failing"
            if not up:
                reasons.append(f"link {name}: " + ("held by operator" if held else "down"))
        maint = read_maintenance(cfg.workdir)
        if maint is not None:
            return HealthReport("maintenance", 503, tuple(reasons), checks, maint)
        if reasons:
            return HealthReport("failing", 500, tuple(reasons), checks, None)
        return HealthReport("ok", 200, (), checks, None)


class HealthResource(Resource):
    """``GET /health``: the :class:`HealthReport` as JSON with its status code."""

    isLeaf = True

    def __init__(self, checker: HealthChecker) -> None:
        super().__init__()
        self.checker = checker

    def render_GET(self, request: Request) -> bytes:
        report = self.checker.evaluate()
        request.setResponseCode(report.http_code)
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return report.to_json()


class OpsCollector(Collector):
    """Scrape-time gauges: link state, outbox backlog and age, maintenance mode."""

    def __init__(self, checker: HealthChecker) -> None:
        self.checker = checker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        svc = self.checker.service
        up = GaugeMetricFamily("juki_gateway_link_up",
                               "1 when the outbound link holds an established connection",
                               labels=["link"])
        standby = GaugeMetricFamily(
            "juki_gateway_link_standby",
            "1 when another instance of the node (shared store) drives the link: this one waits",
            labels=["link"])
        for name, link in svc.links.items():
            up.add_metric([name], 1.0 if link_established(link) else 0.0)
            standby.add_metric([name], 1.0 if getattr(link, "standby", lambda: False)() else 0.0)
        yield up
        yield standby
        pending = GaugeMetricFamily(
            "juki_gateway_outbox_pending",
            "Messages waiting in the registry store's outbox by link (the intermediate "
            "server's deliveries)", labels=["link"])
        age = GaugeMetricFamily("juki_gateway_outbox_oldest_age_seconds",
                                "Age of the oldest pending registry-store outbox message by link",
                                labels=["link"])
        try:
            backlog = self.checker.store.outbox(self.checker.now())
        except Exception:  # a scrape never fails because the store does; /health says why
            backlog = {}
        # every link the daemon delivers on has a series, 0 while its outbox is empty
        ims = getattr(svc, "intermediate", None)
        for link in getattr(ims, "outbox_links", ()):
            backlog.setdefault(link, (0, 0.0))
        for link, (count, oldest) in sorted(backlog.items()):
            pending.add_metric([link], float(count))
            age.add_metric([link], oldest)
        yield pending
        yield age
        maint = GaugeMetricFamily("juki_gateway_maintenance",
                                  "1 while maintenance mode is on")
        maint.add_metric([], 1.0 if read_maintenance(svc.config.workdir) else 0.0)
        yield maint


def install_health(service: Any, root: Resource, seconds: Callable[[], float]) -> HealthChecker:
    """Mount ``/health`` on the metrics site and register the ops gauges; returns the checker."""
    checker = HealthChecker(service, seconds, StoreProbe(service.config.store.url))
    root.putChild(b"health", HealthResource(checker))
    service.metrics.registry.register(OpsCollector(checker))
    return checker
