"""Prometheus metrics of the daemon, in a dedicated ``CollectorRegistry``.

Every metric of the daemon is prefixed ``juki_gateway_`` (the hosted Juki-net nodes'
``juki_gateway_jukinet_``, the intermediate server's ``juki_gateway_ims_``, retention's
``juki_gateway_retention_``); labels carry endpoint names, roles, reasons, message types and error
codes only, never a resident identifier. The registry also holds prometheus_client's
``process_*`` and ``python_info`` collectors and ``juki_gateway_build_info{version, python}`` (1).
"""

from __future__ import annotations

import datetime as dt
import platform
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.parser import text_string_to_metric_families
from twisted.web.resource import Resource

PREFIX = "juki_gateway"


class GatewayMetrics:
    """Every metric of the gateway, registered in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open fds …
        PlatformCollector(registry=r)  # python_info
        from juki_gateway import __version__

        self.build_info = Gauge(
            f"{PREFIX}_build_info", "The running juki-gateway's version (always 1)",
            ["version", "python"], registry=r,
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.handshakes = Counter(
            f"{PREFIX}_handshakes", "TLS handshake attempts by endpoint, result and reason",
            ["endpoint", "result", "reason"], registry=r,
        )
        self.handshake_seconds = Histogram(
            f"{PREFIX}_handshake_duration_seconds", "TLS handshake duration",
            ["endpoint"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
        )
        self.active = Gauge(
            f"{PREFIX}_active_connections", "Established connections by endpoint and peer role",
            ["endpoint", "peer_role"], registry=r,
        )
        self.frames_in = Counter(
            f"{PREFIX}_frames_in", "Frames received by endpoint and message type",
            ["endpoint", "msg_type"], registry=r,
        )
        self.frames_out = Counter(
            f"{PREFIX}_frames_out", "Frames sent by endpoint and message type",
            ["endpoint", "msg_type"], registry=r,
        )
        self.frame_errors = Counter(
            f"{PREFIX}_frame_errors", "Frame errors by endpoint and error code",
            ["endpoint", "code"], registry=r,
        )
        self.cert_days = Gauge(
            f"{PREFIX}_certificate_expiry_seconds",
            "Seconds until a certificate expires (base unit seconds, as promtool requires)",
            ["identity"], registry=r,
        )

        # labelled children looked up once (``labels()`` takes a lock and builds a key each time)
        self._handshake_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._active_children: dict[tuple[str, str], Any] = {}

    def record_handshake(self, endpoint: str, status: str, seconds: float) -> None:
        """Count one handshake attempt and observe its duration."""
        children = self._handshake_children.get((endpoint, status))
        if children is None:
            children = (
                self.handshakes.labels(endpoint, "ok" if status == "ok" else "refused", status),
                self.handshake_seconds.labels(endpoint),
            )
            self._handshake_children[(endpoint, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def active_gauge(self, endpoint: str, peer_role: str) -> Any:
        """The active-connections gauge child of one endpoint and peer role."""
        child = self._active_children.get((endpoint, peer_role))
        if child is None:
            child = self._active_children[(endpoint, peer_role)] = self.active.labels(endpoint, peer_role)
        return child

    def update_certificate_expiry(self, certificates: Iterable[Path], now: float) -> None:
        """Set seconds-to-expiry of each certificate the daemon uses (its CA, the certificates
        its endpoints, links and admin listener present), labelled by file stem; a
        certificate that cannot be read is skipped (start-up or /health says why)."""
        moment = dt.datetime.fromtimestamp(now, dt.UTC)
        for pem in sorted(set(certificates)):
            try:
                cert = x509.load_pem_x509_certificate(pem.read_bytes())
            except (OSError, ValueError):
                continue
            seconds = (cert.not_valid_after_utc - moment).total_seconds()
            self.cert_days.labels(pem.stem).set(round(seconds, 1))


def metrics_resource(metrics: GatewayMetrics) -> Resource:
    """A twisted.web root whose ``/metrics`` child serves the exposition format."""
    from prometheus_client.twisted import MetricsResource

    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry=metrics.registry))
    return root


#: A metric sample's key: (sample name, its labels sorted by name).
SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def metric_samples(exposition: str) -> dict[SampleKey, float]:
    """Every sample of a Prometheus text exposition, keyed by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(exposition) for s in fam.samples}


def scrape_metrics(url: str, timeout: float = 5.0) -> dict[SampleKey, float]:
    """GET a ``/metrics`` URL (blocking) and return :func:`metric_samples` of it."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return metric_samples(resp.read().decode())


class MetricsFrameObserver:
    """Moves the frame counters of one endpoint, once per read."""

    def __init__(self, metrics: GatewayMetrics, endpoint: str) -> None:
        self._metrics = metrics
        self._endpoint = endpoint
        # labelled children, looked up once each: a hosted node reports after every ACK it sends
        self._in: dict[int, Any] = {}
        self._out: dict[int, Any] = {}

    def _child(self, cache: dict[int, Any], counter: Any, mt: int) -> Any:
        child = cache.get(mt)
        if child is None:
            from juki_gateway.protocols.session import msg_type_name

            child = cache[mt] = counter.labels(self._endpoint, msg_type_name(mt))
        return child

    def frames(self, received: dict[int, int], sent: dict[int, int], errors: dict[str, int]) -> None:
        m = self._metrics
        for mt, n in received.items():
            self._child(self._in, m.frames_in, mt).inc(n)
        for mt, n in sent.items():
            self._child(self._out, m.frames_out, mt).inc(n)
        for code, n in errors.items():
            m.frame_errors.labels(self._endpoint, code).inc(n)
